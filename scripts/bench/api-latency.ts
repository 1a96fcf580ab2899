/**
 * API latency at a fixed 500 requests/s on read endpoints, against a bare express app doing the
 * same database reads, side by side in one run.
 *
 * Platform: GET /v1/projects/:id and GET /v1/machines?projectId=&limit=5 with a real API key (a
 * viewer key bound to the project: key look-up, access check, rate limiter, request metrics,
 * response presentation). Bare: an express app in the same process, on the same knex pool and
 * database, calling the same store functions the route handlers call and answering the same JSON,
 * with no key, no access check, no rate limit and no metrics. Its answers are checked equal to
 * the platform's before anything is measured. A third side, static, is the same bare express app
 * answering the platform's captured body (the same bytes) without reading anything: what express
 * and the HTTP stack alone cost at this rate on this host.
 *
 * autocannon runs as a separate process (so its work is not on the servers' event loop) at a fixed
 * overall rate; static, bare and platform take turns per endpoint. The host's load average is
 * noted around each side (the machine may be shared). autocannon is closed-loop per
 * connection: with 50 connections and latencies far below 100 ms it keeps the rate.
 */
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { presentMachines, presentProject } from '../../api/present.js';
import { budgetStatus, findBudget } from '../../store/budgets.js';
import type { Db } from '../../store/db.js';
import { pageMachines } from '../../store/machines.js';
import { getProject } from '../../store/projects.js';
import { startBenchPlatform, type BenchPlatform } from './bench-platform.js';
import { sleep, type BenchOptions, type BenchOutput, type Row } from './common.js';

const AUTOCANNON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', '.bin', 'autocannon');
const RATE = 500;
const CONNECTIONS = 50;
const MACHINES = 5;
const TARGET_RATIO = 2;

interface Cannon {
  p50: number;
  p99: number;
  mean: number;
  max: number;
  requests: number;
  perSecond: number;
  non2xx: number;
  errors: number;
}

/** One autocannon run (its own process) at RATE requests/s; latencies in ms. */
function cannon(url: string, seconds: number, headers: Record<string, string>): Promise<Cannon> {
  const args = [
    '-j',
    '-R',
    String(RATE),
    '-c',
    String(CONNECTIONS),
    '-d',
    String(seconds),
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile(AUTOCANNON, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`autocannon ${url}: ${err.message} ${stderr.slice(-500)}`));
      const r = JSON.parse(stdout);
      resolve({
        p50: r.latency.p50,
        p99: r.latency.p99,
        mean: r.latency.average,
        max: r.latency.max,
        requests: r.requests.total,
        perSecond: r.requests.average,
        non2xx: r.non2xx,
        errors: r.errors + r.timeouts,
      });
    });
  });
}

/**
 * What the two route handlers read and answer, without anything around them; and under
 * `/static/<n>` a body captured from the platform answered as it is (express alone, no reads).
 */
function bareApp(db: Db, statics: string[]): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/static/:n', (req, res) => {
    res.type('application/json').send(statics[Number(req.params.n)]);
  });
  app.get('/projects/:id', async (req, res) => {
    const project = await getProject(db, req.params.id);
    if (!project) return void res.status(404).end();
    const b = await findBudget(db, 'project', project.id);
    res.json(presentProject(project, b ? await budgetStatus(db, b, new Date()) : null));
  });
  app.get('/machines', async (req, res) => {
    const limit = Number(req.query.limit ?? 50);
    const rows = await pageMachines(db, { limit: limit + 1, projectId: String(req.query.projectId) });
    res.json({
      items: await presentMachines(
        db,
        rows.slice(0, limit).map((r) => r.item),
      ),
    });
  });
  return app;
}

export async function apiLatency(opts: BenchOptions): Promise<BenchOutput> {
  const seconds = opts.quick ? 5 : 20;
  let bench: BenchPlatform | undefined;
  let server: ReturnType<express.Express['listen']> | undefined;
  try {
    // The per-key limiter stays in the path; its limit is raised above the benchmark's rate.
    bench = await startBenchPlatform(opts, { label: 'api-latency', env: { AUTOVIBE_RATE_LIMIT: '1000000' } });
    const { api, projectId, platform } = bench;

    opts.log(`seeding ${MACHINES} completed machines`);
    const ids: string[] = [];
    for (let i = 0; i < MACHINES; i++) {
      const res = await api('POST', '/v1/machines', { projectId, type: 'shell', command: `echo ${i} > n.txt`, limits: { money: '0.01' } });
      if (res.status !== 202) throw new Error(`POST /v1/machines: ${res.status} ${JSON.stringify(res.body)}`);
      ids.push(res.body.id);
    }
    for (const id of ids) {
      for (let waited = 0; ; waited += 100) {
        const m = await api('GET', `/v1/machines/${id}`);
        if (['completed', 'failed', 'terminated', 'refused'].includes(m.body.status)) break;
        if (waited > 120_000) throw new Error(`machine ${id} still ${m.body.status}`);
        await sleep(100);
      }
    }
    const key = await api('POST', '/v1/keys', { name: 'bench reader', role: 'viewer', projectIds: [projectId] });
    if (key.status !== 201) throw new Error(`POST /v1/keys: ${key.status} ${JSON.stringify(key.body)}`);
    const auth = { authorization: `Bearer ${key.body.key}` };

    const statics: string[] = [];
    server = bareApp(platform.db, statics).listen(0, '127.0.0.1');
    await new Promise((resolve) => server!.once('listening', resolve));
    const bareUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const endpoints = [
      {
        label: 'GET /v1/projects/:id',
        platform: `${platform.apiUrl}/v1/projects/${projectId}`,
        bare: `${bareUrl}/projects/${projectId}`,
        static: `${bareUrl}/static/0`,
      },
      {
        label: `GET /v1/machines?projectId=&limit=${MACHINES}`,
        platform: `${platform.apiUrl}/v1/machines?projectId=${projectId}&limit=${MACHINES}`,
        bare: `${bareUrl}/machines?projectId=${projectId}&limit=${MACHINES}`,
        static: `${bareUrl}/static/1`,
      },
    ];
    // The same reads: the same answers (the platform's list also carries a paging cursor). The
    // static side answers the platform's own body, byte for byte.
    for (const e of endpoints) {
      const [pText, b] = await Promise.all([fetch(e.platform, { headers: auth }).then((r) => r.text()), fetch(e.bare).then((r) => r.json())]);
      statics.push(pText);
      const { nextCursor: _cursor, ...pBody } = JSON.parse(pText) as Record<string, unknown>;
      if (JSON.stringify(pBody) !== JSON.stringify(b))
        throw new Error(`${e.label}: the bare app answers differently:\n${JSON.stringify(pBody)}\n${JSON.stringify(b)}`);
    }

    type Side = 'platform' | 'bare' | 'static';
    const SIDES: Array<{ side: Side; name: string }> = [
      { side: 'static', name: 'bare express, same JSON without reads' },
      { side: 'bare', name: 'bare express, same reads' },
      { side: 'platform', name: 'platform' },
    ];
    const rows: Row[] = [];
    const results: Record<string, Record<Side, Cannon & { cpuMicrosPerRequest: number; load1: [number, number] }>> = {};
    const ratios: number[] = [];
    const unsustained: string[] = [];
    for (const e of endpoints) {
      opts.log(`${e.label}: warm-up, then static, bare and platform ${seconds} s each at ${RATE} req/s`);
      for (const { side } of SIDES) await cannon(e[side], 2, side === 'platform' ? auth : {});
      const measured = {} as Record<Side, Cannon & { cpuMicrosPerRequest: number; load1: [number, number] }>;
      for (const { side } of SIDES) {
        // All servers run in this process: its CPU time per answered request is the cost of each,
        // a figure that holds when the host is too busy to keep the rate. The load average (the
        // host is shared) is noted before and after each side.
        const loadBefore = os.loadavg()[0]!;
        const cpu = process.cpuUsage();
        const r = await cannon(e[side], seconds, side === 'platform' ? auth : {});
        const used = process.cpuUsage(cpu);
        if (r.non2xx || r.errors) throw new Error(`${e.label} (${side}): ${r.non2xx} non-2xx answers, ${r.errors} errors/timeouts`);
        measured[side] = { ...r, cpuMicrosPerRequest: (used.user + used.system) / r.requests, load1: [loadBefore, os.loadavg()[0]!] };
      }
      results[e.label] = measured;
      if (Math.min(...SIDES.map(({ side }) => measured[side].perSecond)) < RATE * 0.95) unsustained.push(e.label);
      const ratio = measured.platform.p99 / measured.bare.p99;
      ratios.push(ratio);
      for (const { side, name } of SIDES) {
        const m = measured[side];
        rows.push(
          { label: `${e.label}: ${name}: p50`, unit: 'ms', value: m.p50, decimals: 2 },
          { label: `${e.label}: ${name}: p99`, unit: 'ms', value: m.p99, decimals: 2 },
          { label: `${e.label}: ${name}: achieved rate`, unit: 'req/s', value: m.perSecond, decimals: 0 },
          { label: `${e.label}: ${name}: server CPU per request`, unit: 'µs', value: m.cpuMicrosPerRequest, decimals: 0 },
          { label: `${e.label}: ${name}: host load average (1 min) at start`, unit: '', value: m.load1[0], decimals: 1 },
          { label: `${e.label}: ${name}: host load average (1 min) at end`, unit: '', value: m.load1[1], decimals: 1 },
        );
      }
      rows.push(
        { label: `${e.label}: p99 platform / bare same reads (target ≤ ${TARGET_RATIO})`, unit: '×', value: ratio, decimals: 2 },
        {
          label: `${e.label}: CPU per request platform / bare same reads`,
          unit: '×',
          value: measured.platform.cpuMicrosPerRequest / measured.bare.cpuMicrosPerRequest,
          decimals: 2,
        },
      );
    }
    const worst = Math.max(...ratios);
    return {
      rows,
      notes: [
        `api-latency: ${RATE} req/s (autocannon -R, ${CONNECTIONS} connections, ${seconds} s per side, its own process); ` +
          `${MACHINES} completed machines in the project; viewer key bound to the project; bare = same store calls on the same knex pool, no auth/limits/metrics; ` +
          `static = bare express answering the platform's own body (same size) with no reads (the floor of express on this host). ` +
          (unsustained.length
            ? `NOT A MEASUREMENT AT ${RATE} req/s: this host did not sustain the rate for ${unsustained.join(', ')} (both sides queue, so the p99 ratio says little; see CPU per request).`
            : `Worst p99 ratio ${worst.toFixed(2)}× — ${worst <= TARGET_RATIO ? 'within' : 'MISSES'} the ${TARGET_RATIO}× target.`),
      ],
      details: { rate: RATE, connections: CONNECTIONS, seconds, machines: MACHINES, results },
    };
  } finally {
    // Requests autocannon gave up on may still be running: let them finish before the pool closes.
    await sleep(2000);
    server?.close();
    await bench?.stop();
  }
}
