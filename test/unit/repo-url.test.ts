import assert from 'node:assert/strict';
import { checkRepoUrl, DEFAULT_REPO_URL_SCHEMES, redactUrlCredentials } from '../../domain/repo-url.js';

describe('repoUrl checks', function () {
  const ok = (url: string, scheme: string, allowed = DEFAULT_REPO_URL_SCHEMES) => assert.deepEqual(checkRepoUrl(url, allowed), { ok: true, scheme }, url);
  const refused = (url: string, reason: RegExp, allowed = DEFAULT_REPO_URL_SCHEMES) => {
    const r = checkRepoUrl(url, allowed);
    assert.equal(r.ok, false, url);
    assert.match((r as { reason: string }).reason, reason, url);
  };

  it('accepts remote URLs of the allowed schemes', function () {
    ok('https://github.com/org/repo.git', 'https');
    ok('git://127.0.0.1:9418/repo.git', 'git');
    ok('ssh://git@example.com/org/repo.git', 'ssh');
    ok('git+ssh://example.com:2222/repo', 'ssh');
    ok('git@github.com:org/repo.git', 'ssh');
    ok('example.com:repo.git', 'ssh');
    ok('http://example.com/repo.git', 'http', ['http']);
  });

  it('refuses local paths, file:// and transport helpers', function () {
    for (const url of ['/srv/projects/project-1.git', './repo', '../x', 'repo', '~/repo', '.', '/nonexistent/repo']) refused(url, /not a local path/);
    refused('file:///srv/projects/project-1.git', /file:\/\/ URLs are not allowed/);
    refused('FILE:///etc', /file:\/\//);
    refused('ext::sh -c touch% /tmp/x', /spaces|transport/);
    refused('ext::true', /transport helpers/);
    refused('fd::3', /transport helpers/);
    refused('-uhelp', /must not start with "-"/);
    refused('https://example.com/a\nb', /control characters/);
    refused('ftp://example.com/repo', /scheme ftp is not allowed/);
    refused('http://example.com/repo', /scheme http is not allowed; allowed: https, ssh, git/);
    refused('git@github.com:org/repo.git', /scheme ssh is not allowed/, ['https']);
  });

  it('refuses credentials in the URL, telling to use a credentials reference', function () {
    for (const url of [
      'https://user:secret@example.com/r.git',
      'https://ghp_token@example.com/r.git',
      'ssh://git:pw@example.com/r',
      'git:pw@example.com:r.git',
      'http://a:b@h/r',
    ]) {
      refused(url, /credentials reference/, ['https', 'ssh', 'git', 'http']);
    }
  });

  it('redacts credentials from text that quotes a URL', function () {
    assert.equal(redactUrlCredentials("fatal: unable to access 'https://u:p@h/r.git/': x"), "fatal: unable to access 'https://***@h/r.git/': x");
  });
});
