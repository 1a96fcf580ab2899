import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A real `git daemon` on loopback serving bare repositories made for a test (git:// URLs). */
export interface GitServer {
  /** git://127.0.0.1:<port>/<name>.git */
  url(name: string): string;
  /** Makes `<name>.git` with one commit holding `files` (name → content). */
  addRepo(name: string, files: Record<string, string | Buffer>): void;
  stop(): Promise<void>;
}

const git = (args: string[], cwd?: string) =>
  execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    stdio: 'pipe',
  });

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function untilListening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`git daemon exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('git daemon did not start listening');
}

export async function startGitServer(): Promise<GitServer> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-daemon-'));
  const port = await freePort();
  const child = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], {
    stdio: 'ignore',
  });
  await untilListening(port, child);
  return {
    url: (name) => `git://127.0.0.1:${port}/${name}.git`,
    addRepo(name, files) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-git-work-'));
      git(['init', '--quiet', '-b', 'main', work]);
      for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(work, file), content);
      git(['add', '-A'], work);
      git(['commit', '--quiet', '-m', 'initial'], work);
      git(['clone', '--quiet', '--bare', work, path.join(base, `${name}.git`)]);
      fs.rmSync(work, { recursive: true, force: true });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

/** A TCP server on loopback that accepts connections and never answers: a clone from it hangs. */
export async function startSilentServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `git://127.0.0.1:${port}/${crypto.randomUUID()}.git`,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
