import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real `git http-backend` (smart HTTP, fetch and push) behind a small node HTTP server on
 * loopback that demands HTTP Basic auth with one user name and token: a wrong or missing one is
 * a 401 with `WWW-Authenticate`, as hosted git services answer. It keeps the Authorization
 * headers it saw, so a test can tell the credentials came over the wire.
 */
export interface HttpGitServer {
  /** http://127.0.0.1:<port>/<name>.git (no credentials in it). */
  url(name: string): string;
  /** Makes `<name>.git` with one commit on `main` holding `files`; returns the commit. */
  addRepo(name: string, files: Record<string, string>): string;
  /** Adds a commit with `files` on top of `branch` of `<name>.git` (a clone, commit, push); returns the new commit. */
  commitTo(name: string, branch: string, files: Record<string, string>, message?: string): string;
  /** Makes `branch` of `<name>.git` a history of its own: one commit with `files` and no parent. */
  orphan(name: string, branch: string, files: Record<string, string>): string;
  /** Runs git in the bare repository `<name>.git` (e.g. rev-parse refs/heads/x). */
  git(name: string, args: string[]): string;
  /** Every Authorization header received, in order. */
  authorizations: string[];
  stop(): Promise<void>;
}

const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
const git = (args: string[], cwd?: string) => execFileSync('git', args, { cwd, env, stdio: 'pipe' }).toString().trim();

export async function startHttpGitServer(credentials: { username: string; token: string }): Promise<HttpGitServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-http-'));
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.token}`).toString('base64')}`;
  const authorizations: string[] = [];
  const server = http.createServer((req, res) => {
    const auth = req.headers.authorization;
    if (auth) authorizations.push(auth);
    if (auth !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"', 'Content-Type': 'text/plain' }).end('bad credentials\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const child = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: base,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: credentials.username,
        REMOTE_ADDR: '127.0.0.1',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    // CGI: headers (with an optional Status) up to a blank line, then the body.
    let head = Buffer.alloc(0);
    let started = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (started) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      started = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const [k, v] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    child.on('close', () => {
      if (!started) res.writeHead(500).end();
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const bare = (name: string) => path.join(base, `${name}.git`);
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}.git`,
    authorizations,
    addRepo(name, files) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-work-'));
      git(['init', '--quiet', '-b', 'main', work]);
      for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(work, file), content);
      git(['add', '-A'], work);
      git(['commit', '--quiet', '-m', 'initial'], work);
      git(['clone', '--quiet', '--bare', work, bare(name)]);
      fs.rmSync(work, { recursive: true, force: true });
      return git(['--git-dir', bare(name), 'rev-parse', 'refs/heads/main']);
    },
    commitTo(name, branch, files, message = 'remote change') {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-work-'));
      git(['clone', '--quiet', '--branch', branch, bare(name), work]);
      for (const [file, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
        fs.writeFileSync(path.join(work, file), content);
      }
      git(['add', '-A'], work);
      git(['commit', '--quiet', '-m', message], work);
      git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], work);
      const commit = git(['rev-parse', 'HEAD'], work);
      fs.rmSync(work, { recursive: true, force: true });
      return commit;
    },
    orphan(name, branch, files) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-work-'));
      git(['init', '--quiet', '-b', branch, work]);
      for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(work, file), content);
      git(['add', '-A'], work);
      git(['commit', '--quiet', '-m', 'a history of its own'], work);
      git(['push', '--quiet', bare(name), `HEAD:refs/heads/${branch}`], work);
      const commit = git(['rev-parse', 'HEAD'], work);
      fs.rmSync(work, { recursive: true, force: true });
      return commit;
    },
    git: (name, args) => git(['--git-dir', bare(name), ...args]),
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
