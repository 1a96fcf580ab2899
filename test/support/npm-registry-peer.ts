import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A local peer speaking the npm registry's read protocol (the parts `npm install <name>` uses): the
 * package document at `GET /<name>` (versions, dist-tags, each version's `dist.tarball`, `shasum`
 * and `integrity`) and the tarball itself, made with the real `npm pack`. Not a mock of a library:
 * real npm installs from it over HTTP. It also answers `GET /hello` with a fixed text, for curl.
 * Every request is counted by path, so a test can tell it was (or was not) reached.
 */
export interface NpmRegistryPeer {
  url: string;
  host: string;
  port: number;
  /** The package it serves and the text its index.js exports. */
  packageName: string;
  packageText: string;
  /** Requests received, by path. */
  hits: Map<string, number>;
  stop(): Promise<void>;
}

export async function startNpmRegistryPeer(opts: { host?: string; packageName?: string } = {}): Promise<NpmRegistryPeer> {
  const host = opts.host ?? '127.0.0.1';
  const packageName = opts.packageName ?? 'autovibe-tiny-peer-pkg';
  const packageText = `hello from ${packageName}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-npm-peer-'));
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'package.json'), JSON.stringify({ name: packageName, version: '1.0.0', main: 'index.js', license: 'MIT' }));
  fs.writeFileSync(path.join(src, 'index.js'), `module.exports = ${JSON.stringify(packageText)};\n`);
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', dir], {
    cwd: src,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });
  const tarball = fs.readFileSync(path.join(dir, stdout.trim().split('\n').pop()!));
  const shasum = crypto.createHash('sha1').update(tarball).digest('hex');
  const integrity = `sha512-${crypto.createHash('sha512').update(tarball).digest('base64')}`;
  const tarballPath = `/${packageName}/-/${packageName}-1.0.0.tgz`;
  const hits = new Map<string, number>();
  let base = '';

  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0]!;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    if (p === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('hello from the registry\n');
    }
    if (p === `/${packageName}`) {
      const doc = {
        _id: packageName,
        name: packageName,
        'dist-tags': { latest: '1.0.0' },
        versions: {
          '1.0.0': {
            name: packageName,
            version: '1.0.0',
            main: 'index.js',
            license: 'MIT',
            _id: `${packageName}@1.0.0`,
            dist: { tarball: `${base}${tarballPath}`, shasum, integrity },
          },
        },
        time: { created: '2026-12-01T00:00:00.000Z', modified: '2026-12-01T00:00:00.000Z', '1.0.0': '2026-12-01T00:00:00.000Z' },
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(doc));
    }
    if (p === tarballPath) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tarball.length });
      return res.end(tarball);
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'Not found' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  base = `http://${host}:${port}`;
  return {
    url: base,
    host,
    port,
    packageName,
    packageText,
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        fs.rmSync(dir, { recursive: true, force: true });
      }),
  };
}
