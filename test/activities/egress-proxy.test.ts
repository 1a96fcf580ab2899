import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { addressProblem } from '../../domain/webhooks.js';
import { addressRefusal, startEgressProxy, type EgressProxy, type EgressRecord } from '../../activities/machines/egress-proxy.js';

/**
 * The egress proxy on its own, over its real unix socket, with a real upstream server on loopback:
 * the cases the end-to-end test (test/e2e/network.test.ts) does not reach from a sandbox.
 */
describe('egress proxy (unix socket, real upstream)', () => {
  let dir: string;
  let upstream: http.Server;
  let port: number;
  let proxy: EgressProxy;
  let records: EgressRecord[];
  /** Names the test resolves itself: `rebound.test` points at loopback, `upstream.test` is the allowed upstream. */
  const names: Record<string, string> = { 'rebound.test': '127.0.0.1', 'upstream.test': '127.0.0.1' };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-egress-'));
    upstream = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () =>
        res.end(`upstream saw ${req.method} ${req.url} host=${req.headers.host} proxy=${req.headers['proxy-connection'] ?? '-'} body=${body}`),
      );
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    port = (upstream.address() as { port: number }).port;
    records = [];
    proxy = await startEgressProxy({
      socketPath: path.join(dir, 'run', 'egress.sock'),
      decide: (host, p) =>
        host === 'upstream.test' || host === 'rebound.test' || host === '127.0.0.1' || host === 'slow.test' ? null : `${host}:${p} not allowed`,
      allowPrivate: [`127.0.0.1:${port}`],
      onConnection: (r) => records.push(r),
      lookup: async (host) => {
        if (names[host]) return [{ address: names[host]!, family: 4 }];
        if (net.isIP(host)) return [{ address: host, family: net.isIP(host) }];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    });
  });
  after(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    await new Promise((r) => upstream?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const addressProblemOf = (a: string) => addressProblem(a, false);
  const socketPath = () => path.join(dir, 'run', 'egress.sock');

  /** A plain-http request through the proxy (absolute URI). */
  function viaProxy(url: string, body?: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: socketPath(), method: body ? 'POST' : 'GET', path: url, headers: { 'proxy-connection': 'keep-alive' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A CONNECT through the proxy: its status line, and the socket when it was established. */
  function connect(target: string): Promise<{ status: number; socket: net.Socket; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: socketPath(), method: 'CONNECT', path: target });
      req.on('connect', (res, socket, head) => {
        let text = head.toString();
        if (res.statusCode !== 200) socket.on('data', (c) => (text += c));
        socket.on('end', () => resolve({ status: res.statusCode!, socket, text }));
        if (res.statusCode === 200) resolve({ status: 200, socket, text });
      });
      req.on('error', reject);
      req.end();
    });
  }

  const waitRecords = async (n: number) => {
    for (let i = 0; i < 100 && records.length < n; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(records.length >= n, `expected ${n} records, got ${JSON.stringify(records)}`);
  };

  it('makes its socket private: 0600 in a 0700 directory', () => {
    assert.equal(fs.statSync(socketPath()).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(socketPath())).mode & 0o777, 0o700);
  });

  it('forwards an allowed plain-http request with its body and Host, without proxy headers, and reports its bytes', async () => {
    records = [];
    const r = await viaProxy(`http://upstream.test:${port}/path?q=1`, 'payload');
    assert.equal(r.status, 200);
    assert.equal(r.text, `upstream saw POST /path?q=1 host=upstream.test:${port} proxy=- body=payload`);
    await waitRecords(1);
    const [rec] = records;
    assert.equal(rec!.kind, 'http');
    assert.equal(rec!.decision, 'allowed');
    assert.equal(rec!.host, 'upstream.test');
    assert.equal(rec!.address, '127.0.0.1');
    assert.equal(rec!.status, 200);
    assert.ok(rec!.bytesUp > 'payload'.length && rec!.bytesDown > r.text.length, JSON.stringify(rec));
  });

  it('tunnels an allowed CONNECT and counts the bytes each way when it closes', async () => {
    records = [];
    const { status, socket } = await connect(`upstream.test:${port}`);
    assert.equal(status, 200);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (c) => (text += c));
      socket.on('end', () => resolve(text));
      socket.write(`GET /tunnelled HTTP/1.1\r\nhost: upstream.test\r\nconnection: close\r\n\r\n`);
    });
    assert.match(answer, /upstream saw GET \/tunnelled/);
    await waitRecords(1);
    assert.equal(records[0]!.kind, 'connect');
    assert.equal(records[0]!.decision, 'allowed');
    assert.ok(records[0]!.bytesUp > 40 && records[0]!.bytesDown >= answer.length, JSON.stringify(records[0]));
  });

  it('refuses by policy before resolving, and by address after: a name rebound to loopback, a port outside the allowance', async () => {
    records = [];
    const offList = await viaProxy('http://other.test/');
    assert.equal(offList.status, 403);
    assert.match(offList.text, /other\.test:80 not allowed/);
    const rebound = await connect('rebound.test:443');
    assert.equal(rebound.status, 403);
    assert.match(rebound.text, /rebound\.test resolves to 127\.0\.0\.1 is a loopback, link-local or private address/);
    const otherPort = await viaProxy(`http://127.0.0.1:${port + 1 === 65536 ? 1 : port + 1}/`);
    assert.equal(otherPort.status, 403);
    await waitRecords(3);
    assert.deepEqual(
      records.map((r) => [r.decision, r.kind, r.host]),
      [
        ['refused', 'http', 'other.test'],
        ['refused', 'connect', 'rebound.test'],
        ['refused', 'http', '127.0.0.1'],
      ],
    );
    assert.ok(records.every((r) => r.bytesUp === 0 && r.bytesDown === 0));
  });

  it('refuses metadata addresses whatever the allowance (also IPv4-mapped), private ranges, and the host’s own addresses', () => {
    assert.match(addressRefusal('169.254.169.254', 80, ['169.254.169.254:80'])!, /cloud metadata/);
    assert.match(addressRefusal('::ffff:169.254.169.254', 80, [])!, /cloud metadata/);
    assert.match(addressRefusal('fe80::1', 443, [])!, /link-local or private/);
    assert.match(addressRefusal('10.1.2.3', 443, [])!, /private/);
    assert.match(addressRefusal('::1', 443, [])!, /loopback/);
    assert.equal(addressRefusal('10.1.2.3', 443, ['10.1.2.3:443']), null);
    assert.equal(addressRefusal('93.184.215.14', 443, []), null);
    // Every address of this host is refused, the public ones as the worker host's own.
    for (const a of Object.values(os.networkInterfaces()).flat()) {
      const reason = addressRefusal(a!.address, 443, []);
      assert.ok(reason, `${a!.address} must be refused`);
      if (!addressProblemOf(a!.address)) assert.match(reason, /address of the worker host/);
    }
  });

  it('answers 400 to a request that is not for a proxy, and to a CONNECT without host:port', async () => {
    const relative = await viaProxy('/just/a/path');
    assert.equal(relative.status, 400);
    assert.match(relative.text, /absolute http:\/\/ URLs, or CONNECT/);
    const https = await viaProxy('https://upstream.test/');
    assert.equal(https.status, 400);
    const bad = await connect('no-port');
    assert.equal(bad.status, 400);
  });

  it('ends open tunnels at close and still reports each of them', async () => {
    const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-egress-'));
    const seen: EgressRecord[] = [];
    const p2 = await startEgressProxy({
      socketPath: path.join(dir2, 'egress.sock'),
      decide: () => null,
      allowPrivate: [`127.0.0.1:${port}`],
      onConnection: (r) => seen.push(r),
    });
    const req = http.request({ socketPath: path.join(dir2, 'egress.sock'), method: 'CONNECT', path: `127.0.0.1:${port}` });
    const socket = await new Promise<net.Socket>((resolve) => {
      req.on('connect', (_res, s) => resolve(s));
      req.end();
    });
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await new Promise((r) => socket.once('data', r));
    await p2.close();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.decision, 'allowed');
    assert.ok(seen[0]!.bytesDown > 0);
    assert.equal(fs.existsSync(path.join(dir2, 'egress.sock')), false);
    fs.rmSync(dir2, { recursive: true, force: true });
  });
});
