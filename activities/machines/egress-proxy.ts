import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import nodePath from 'node:path';
import { addressProblem } from '../../domain/webhooks.js';

/**
 * A machine's way out to the network, when its policy grants one: an HTTP proxy on a unix socket
 * bound into that one machine's sandbox (0600 in a 0700 directory of the machine's own, like the
 * metering proxy), reached from inside through the sandbox forwarder on 127.0.0.1. It serves
 * CONNECT (https and anything else tunnelled) and absolute-URI plain http requests.
 *
 * Each connection is decided twice: first by host name and port against the machine's policy
 * (`decide`), then the proxy resolves the name itself and connects only to an address that is not
 * loopback, link-local (the metadata service among them), private, or one of this host's own
 * addresses — unless the deployment allows that `ip:port` explicitly (AUTOVIBE_NETWORK_ALLOW_PRIVATE);
 * cloud metadata addresses are refused whatever the allowance. Every connection, let through or
 * refused, is reported once when it closes, with its bytes each way and its duration.
 */
export interface EgressRecord {
  /** `connect`: a CONNECT tunnel; `http`: one plain-http request forwarded. */
  kind: 'connect' | 'http';
  host: string;
  port: number;
  decision: 'allowed' | 'refused';
  /** Why it was refused. */
  reason?: string;
  /** The address connected to (allowed) or refused by address. */
  address?: string;
  /** Bytes from the machine to the host, and back (tunnel bytes; for plain http, the request and response as sent). */
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  startedAt: string;
  /** Plain http: the method and the upstream's status. */
  method?: string;
  status?: number;
}

export interface EgressProxyOptions {
  socketPath: string;
  /** Who may connect: the uid/gid the sandbox's processes act as on the host (default: this process's). */
  socketOwner?: { uid: number; gid: number };
  /** Why the machine may not reach `host:port` by its policy, or null when it may. */
  decide(host: string, port: number): string | null;
  /** `ip:port` entries reachable although private (never a metadata address). */
  allowPrivate: readonly string[];
  /** Called once per connection, when it closed. */
  onConnection(record: EgressRecord): void;
  /** Name resolution (tests may replace it); dns.lookup by default. */
  lookup?: (host: string) => Promise<Array<{ address: string; family: number }>>;
}

export interface EgressProxy {
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 30_000;
const HOST_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Hop-by-hop and proxy headers: never forwarded upstream. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

/** Every address of this host's own interfaces (a machine reaches none of them). */
function hostAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) out.add(a.address.toLowerCase());
  return out;
}

/** `ip:port` as the allowance lists it (IPv6 without brackets). */
const endpoint = (address: string, port: number) => `${address.toLowerCase()}:${port}`;

/** Why the machine may not connect to `address:port`, or null. */
export function addressRefusal(address: string, port: number, allowPrivate: readonly string[]): string | null {
  const metadata = addressProblem(address, true);
  if (metadata) return metadata;
  const allowed = allowPrivate.includes(endpoint(address, port));
  if (allowed) return null;
  const problem = addressProblem(address, false);
  if (problem) return problem;
  if (hostAddresses().has(address.toLowerCase())) return `${address} is an address of the worker host`;
  return null;
}

/** host and port of a CONNECT target (`name:443`, `[v6]:443`), or null. */
function parseTarget(target: string): { host: string; port: number } | null {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(target) ?? /^([^:[\]]+):(\d{1,5})$/.exec(target);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!.toLowerCase().replace(/\.$/, ''), port };
}

function validHost(host: string): boolean {
  return net.isIP(host) !== 0 || HOST_NAME.test(host);
}

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  fs.mkdirSync(nodePath.dirname(opts.socketPath), { recursive: true, mode: 0o700 });
  fs.chmodSync(nodePath.dirname(opts.socketPath), 0o700);
  fs.rmSync(opts.socketPath, { force: true });
  const lookup = opts.lookup ?? ((host: string) => dns.promises.lookup(host, { all: true, verbatim: true }));
  /** Tunnels and forwarded requests still open: ended (and reported) by close(). */
  const open = new Set<{ destroy(): void; done: Promise<void> }>();

  /** The policy's and the address's verdict: the address to connect to, or why not. */
  async function admit(host: string, port: number): Promise<{ ok: true; address: string } | { ok: false; reason: string; address?: string }> {
    if (!validHost(host)) return { ok: false, reason: `"${host.slice(0, 100)}" is not a host name` };
    const byPolicy = opts.decide(host, port);
    if (byPolicy) return { ok: false, reason: byPolicy };
    let addresses: Array<{ address: string; family: number }>;
    try {
      addresses = await lookup(host);
    } catch (err) {
      return { ok: false, reason: `${host} does not resolve: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    let first: { reason: string; address: string } | null = null;
    for (const a of addresses) {
      const reason = addressRefusal(a.address, port, opts.allowPrivate);
      if (!reason) return { ok: true, address: a.address };
      first ??= { reason: `${host} resolves to ${reason}`, address: a.address };
    }
    return first ? { ok: false, ...first } : { ok: false, reason: `${host} has no address` };
  }

  function report(r: EgressRecord): void {
    try {
      opts.onConnection(r);
    } catch {
      // reporting never breaks the machine's connection handling
    }
  }

  const server = http.createServer((req, res) => {
    const started = Date.now();
    const startedAt = new Date(started).toISOString();
    const method = req.method ?? 'GET';
    let url: URL | null = null;
    try {
      url = new URL(req.url ?? '');
    } catch {
      url = null;
    }
    if (!url || url.protocol !== 'http:') {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('AutoVibe egress proxy: send absolute http:// URLs, or CONNECT host:port for https and anything else\n');
      return;
    }
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const port = url.port ? Number(url.port) : 80;
    const refuse = (reason: string, address?: string) => {
      const body = `AutoVibe refused ${host}:${port}: ${reason}\n`;
      res.writeHead(403, { 'content-type': 'text/plain', 'x-autovibe-refused': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 300), connection: 'close' });
      res.end(body);
      req.resume();
      report({
        kind: 'http',
        host,
        port,
        decision: 'refused',
        reason,
        ...(address ? { address } : {}),
        bytesUp: 0,
        bytesDown: 0,
        durationMs: Date.now() - started,
        startedAt,
        method,
      });
    };
    void admit(host, port).then((verdict) => {
      if (!verdict.ok) return refuse(verdict.reason, verdict.address);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_HEADERS.has(k) && v !== undefined) headers[k] = v;
      let socket: net.Socket | null = null;
      let status: number | undefined;
      let finished = false;
      let resolveDone!: () => void;
      const entry = { destroy: () => upstream.destroy(), done: new Promise<void>((r) => (resolveDone = r)) };
      const finish = (error?: string) => {
        if (finished) return;
        finished = true;
        open.delete(entry);
        report({
          kind: 'http',
          host,
          port,
          decision: 'allowed',
          address: verdict.address,
          bytesUp: socket?.bytesWritten ?? 0,
          bytesDown: socket?.bytesRead ?? 0,
          durationMs: Date.now() - started,
          startedAt,
          method,
          ...(status !== undefined ? { status } : {}),
          ...(error ? { reason: error } : {}),
        });
        resolveDone();
      };
      const upstream = http.request({
        host: verdict.address,
        port,
        method,
        path: `${url!.pathname}${url!.search}`,
        headers: { ...headers, host: url!.host },
        setHost: false,
        agent: false,
        timeout: CONNECT_TIMEOUT_MS,
      });
      open.add(entry);
      upstream.on('socket', (s) => (socket = s));
      upstream.on('timeout', () => upstream.destroy(new Error('upstream timed out')));
      upstream.on('response', (up) => {
        status = up.statusCode;
        const out: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (!HOP_HEADERS.has(k) && v !== undefined) out[k] = v;
        res.writeHead(up.statusCode ?? 502, out);
        up.pipe(res);
        up.on('end', () => finish());
        up.on('error', (err) => finish(err.message));
      });
      upstream.on('error', (err) => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`AutoVibe egress proxy: ${host}:${port}: ${err.message}\n`);
        } else res.destroy();
        finish(err.message);
      });
      res.on('close', () => {
        if (!finished) upstream.destroy();
        finish();
      });
      req.pipe(upstream);
    });
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const started = Date.now();
    const startedAt = new Date(started).toISOString();
    const target = parseTarget(req.url ?? '');
    client.on('error', () => client.destroy());
    if (!target) {
      client.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nCONNECT needs host:port\n');
      return;
    }
    const { host, port } = target;
    void admit(host, port).then((verdict) => {
      if (!verdict.ok) {
        const body = `AutoVibe refused ${host}:${port}: ${verdict.reason}\n`;
        client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        report({
          kind: 'connect',
          host,
          port,
          decision: 'refused',
          reason: verdict.reason,
          ...(verdict.address ? { address: verdict.address } : {}),
          bytesUp: 0,
          bytesDown: 0,
          durationMs: Date.now() - started,
          startedAt,
        });
        return;
      }
      const upstream = net.connect({ host: verdict.address, port, timeout: CONNECT_TIMEOUT_MS });
      let connected = false;
      let error: string | undefined;
      let resolveDone!: () => void;
      const entry = { destroy: () => (upstream.destroy(), client.destroy()), done: new Promise<void>((r) => (resolveDone = r)) };
      open.add(entry);
      upstream.once('connect', () => {
        connected = true;
        upstream.setTimeout(0);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('timeout', () => upstream.destroy(new Error('connect timed out')));
      upstream.on('error', (err) => {
        error = err.message;
        if (!connected) client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${host}:${port}: ${err.message}\n`);
        else client.destroy();
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => {
        client.destroy();
        open.delete(entry);
        report({
          kind: 'connect',
          host,
          port,
          decision: 'allowed',
          address: verdict.address,
          bytesUp: upstream.bytesWritten,
          bytesDown: upstream.bytesRead,
          durationMs: Date.now() - started,
          startedAt,
          ...(error ? { reason: error } : {}),
        });
        resolveDone();
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  fs.chmodSync(opts.socketPath, 0o600);
  if (opts.socketOwner) {
    fs.chownSync(nodePath.dirname(opts.socketPath), opts.socketOwner.uid, opts.socketOwner.gid);
    fs.chownSync(opts.socketPath, opts.socketOwner.uid, opts.socketOwner.gid);
  }
  return {
    async close() {
      const pending = [...open];
      for (const c of pending) c.destroy();
      server.closeAllConnections();
      await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), ...pending.map((c) => c.done)]);
      fs.rmSync(opts.socketPath, { force: true });
    },
  };
}
