/**
 * stripe-mock (Stripe's own API mock, built by scripts/ensure-stripe-mock) on loopback, behind a
 * recording pass-through proxy. stripe-mock is stateless: it answers every call from canned
 * fixtures and keeps no list of what was charged, so the proxy records each request (method,
 * path, Idempotency-Key) to show how many distinct charges were asked for, and can hold a
 * request in flight so a test can kill the caller mid-charge.
 *
 * Its bundled PaymentIntent fixture has status `requires_payment_method` (a decline, in
 * Stripe's terms). `paymentIntentStatus: 'succeeded'` starts it with the same bundled fixtures,
 * that one field changed, so a charge succeeds.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { describeExit, sleep, spawnServiceProcess } from './process.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const STRIPE_MOCK_VERSION = 'v0.197.0';

export interface RecordedRequest {
  method: string;
  path: string;
  idempotencyKey: string | null;
  body: string;
}

export interface StripeMock {
  /** The API base to give the platform (STRIPE_API_BASE): the recording proxy. */
  url: string;
  requests(): RecordedRequest[];
  /** Holds the next `count` requests whose path starts with `prefix` for `ms` before forwarding. */
  hold(prefix: string, ms: number, count?: number): void;
  /** Fault injection: answers the next `count` such requests with a Stripe `api_error` 500 instead of forwarding. */
  failNext(prefix: string, count: number): void;
  stop(): Promise<void>;
}

async function ensureBinary(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(path.join(REPO_ROOT, 'scripts', 'ensure-stripe-mock'), [], { cwd: REPO_ROOT, encoding: 'utf8' }, (err, stdout) => {
      if (err) reject(new Error(`scripts/ensure-stripe-mock failed: ${err.message}`));
      else resolve(stdout.trim().split('\n').pop()!);
    });
    child.stderr?.pipe(process.stderr, { end: false });
  });
}

function patchedFixtures(status: string): string {
  const modCache = execFileSync('go', ['env', 'GOMODCACHE'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
  }).trim();
  const source = path.join(modCache, `github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION}`, 'embedded/openapi/fixtures3.json');
  const fixtures = JSON.parse(fs.readFileSync(source, 'utf8'));
  Object.assign(fixtures.resources.payment_intent, { status, last_payment_error: null });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stripe-mock-')), 'fixtures.json');
  fs.writeFileSync(file, JSON.stringify(fixtures));
  return file;
}

export async function startStripeMock(opts: { paymentIntentStatus?: string } = {}): Promise<StripeMock> {
  const binary = await ensureBinary();
  const port = await freePort();
  // Without an explicit HTTPS address it would also bind the fixed default port 12112.
  const args = ['-http-addr', `127.0.0.1:${port}`, '-https-addr', `127.0.0.1:${await freePort()}`];
  const fixtures = opts.paymentIntentStatus ? patchedFixtures(opts.paymentIntentStatus) : null;
  if (fixtures) args.push('-fixtures', fixtures);
  const proc = spawnServiceProcess({
    name: 'stripe-mock',
    command: binary,
    args,
    killAfterMs: 3000,
    ...(fixtures ? { scratchPaths: [path.dirname(fixtures)] } : {}),
  });
  const target = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (proc.hasExited()) throw new Error(`stripe-mock ${describeExit(await proc.exited)}:\n${proc.recentOutput()}`);
    const up = await fetch(`${target}/v1/customers/cus_probe`, { headers: { authorization: 'Bearer sk_test_probe' } }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > until) {
      await proc.stop();
      throw new Error(`stripe-mock not ready on ${target}:\n${proc.recentOutput()}`);
    }
    await sleep(100);
  }

  const recorded: RecordedRequest[] = [];
  const holds: Array<{ prefix: string; ms: number; count: number }> = [];
  const failures: Array<{ prefix: string; count: number }> = [];
  const proxy = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const url = req.url ?? '/';
      recorded.push({
        method: req.method ?? 'GET',
        path: url.split('?')[0]!,
        idempotencyKey: (req.headers['idempotency-key'] as string) ?? null,
        body: body.toString('utf8'),
      });
      const failure = failures.find((f) => f.count > 0 && url.startsWith(f.prefix));
      if (failure) {
        failure.count--;
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'api_error', message: 'injected by the test proxy' } }));
        return;
      }
      const hold = holds.find((h) => h.count > 0 && url.startsWith(h.prefix));
      if (hold) {
        hold.count--;
        await sleep(hold.ms);
      }
      const headers = { ...req.headers };
      delete headers.host;
      const upstream = http.request(`${target}${url}`, { method: req.method, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(e));
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyPort = (proxy.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    requests: () => [...recorded],
    hold: (prefix, ms, count = 1) => void holds.push({ prefix, ms, count }),
    failNext: (prefix, count) => void failures.push({ prefix, count }),
    stop: async () => {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await proc.stop();
    },
  };
}
