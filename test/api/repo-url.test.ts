import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startGitServer, startSilentServer, type GitServer } from '../support/git-server.js';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

/** Row counts a refused project creation must leave as they were. */
async function counts(p: TestPlatform) {
  const out: Record<string, number> = {};
  for (const t of ['projects', 'checkpoints', 'audit_log', 'idempotent_requests']) out[t] = Number((await p.db(t).count({ n: '*' }))[0]!.n);
  return out;
}

/** Pids of processes whose command line names `text`. */
function processesNaming(text: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('api: repoUrl (remote clones only, bounded, no credentials)', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  let server: GitServer;

  before(async () => {
    server = await startGitServer();
    server.addRepo('small', { 'README.md': '# small\n' });
    // Random bytes do not compress: the pack is as large as the file.
    server.addRepo('big', { 'blob.bin': crypto.randomBytes(3 * 1024 * 1024) });
    p = await startTestPlatform({ label: 'repo-url', worker: false, env: { AUTOVIBE_CLONE_MAX_MB: '1', AUTOVIBE_CLONE_TIMEOUT_S: '3' } });
  });
  after(async () => {
    await p?.stop();
    await server?.stop();
  });

  const projectDirs = () => (fs.existsSync(p.config.projectsDir) ? fs.readdirSync(p.config.projectsDir).sort() : []);

  async function refused(repoUrl: string, message: RegExp) {
    const before = await counts(p);
    const dirs = projectDirs();
    const r = await p.api('POST', '/v1/projects', { name: 'clone', repoUrl }, { headers: { 'idempotency-key': crypto.randomUUID() } });
    assert.equal(r.status, 422, `${repoUrl}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.details.field, 'repoUrl');
    assert.match(r.body.error.message, message);
    const after = await counts(p);
    // The refusal itself is kept for the Idempotency-Key (one row); nothing else is written.
    assert.deepEqual({ ...after, idempotent_requests: after.idempotent_requests! - 1 }, before);
    assert.deepEqual(projectDirs(), dirs, 'nothing left behind on disk');
    return r.body;
  }

  it('clones a remote repository over git:// on loopback; its README is in the root checkpoint', async () => {
    const r = await p.api('POST', '/v1/projects', { name: 'small', repoUrl: server.url('small') });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.repoUrl, server.url('small'));
    const file = await p.api('GET', `/v1/checkpoints/${r.body.rootCheckpointId}/files/README.md`);
    assert.equal(file.status, 200);
    assert.equal(file.body, '# small\n');
  });

  it("refuses local paths, file:// URLs and other projects' repositories", async () => {
    const other = (await p.api('POST', '/v1/projects', { name: 'other' })).body.id;
    const otherRepo = path.join(p.config.projectsDir, `${other}.git`);
    assert.ok(fs.existsSync(otherRepo));
    await refused(otherRepo, /not a local path/);
    await refused(`file://${otherRepo}`, /file:\/\/ URLs are not allowed/);
    await refused('../../etc', /not a local path/);
    await refused('ext::sh -c id', /spaces|transport/);
    await refused('ftp://127.0.0.1/x.git', /scheme ftp is not allowed; allowed: https, ssh, git/);
  });

  it('refuses a URL with credentials without ever showing them', async () => {
    const secret = `s3cr3t-${crypto.randomUUID()}`;
    for (const url of [`https://user:${secret}@127.0.0.1/r.git`, `https://${secret}@127.0.0.1/r.git`, `ssh://git:${secret}@127.0.0.1/r.git`]) {
      const body = await refused(url, /credentials reference/);
      assert.ok(!JSON.stringify(body).includes(secret), 'the secret is not echoed');
    }
    const audit = await p.db('audit_log').select('details');
    assert.ok(!JSON.stringify(audit).includes(secret), 'the secret is not in the audit log');
    const stored = await p.db('idempotent_requests').select('body', 'path');
    assert.ok(!JSON.stringify(stored).includes(secret), 'the secret is not in stored responses');
  });

  it('refuses a clone over the size limit with a clear 422 and removes what it fetched', async () => {
    await refused(server.url('big'), /could not be cloned: it is larger than the limit of 1 MiB/);
  });

  it('refuses a clone that takes longer than the timeout and removes what it fetched', async () => {
    const silent = await startSilentServer();
    try {
      await refused(silent.url, /could not be cloned: it took longer than 3 s/);
      assert.deepEqual(processesNaming(silent.url), [], 'every git process of the clone ended');
    } finally {
      await silent.stop();
    }
  });

  it('refuses a repository the server does not have with 422', async () => {
    await refused(server.url('missing'), /could not be cloned/);
  });
});
