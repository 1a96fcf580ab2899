import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createApp } from '../../api/app.js';
import { loadConfig } from '../../config/index.js';
import { createUserWithKey } from '../../store/auth.js';
import { createDb } from '../../store/db.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

interface Ev {
  seq: number;
  kind: string;
  projectId: string | null;
  subjectId: string;
  data: Record<string, any>;
}

/** Reads Server-Sent Events until `until` says stop (or the stream ends); returns what it got. */
async function readSse(url: string, key: string, headers: Record<string, string>, until: (got: Ev[]) => boolean): Promise<Ev[]> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', ...headers }, signal: abort.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const got: Ev[] = [];
  let buffer = '';
  try {
    while (!until(got)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (!id || !data) continue;
        const e = JSON.parse(data) as Ev;
        assert.equal(e.seq, Number(id));
        got.push(e);
      }
    }
  } finally {
    abort.abort();
    await reader.cancel().catch(() => undefined);
  }
  return got;
}

describe('e2e: watching work (logs, events, long-polling) on the real platform', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let projectA: string;
  let projectB: string;

  /** Every event the admin key sees for `projectId` after `after`, through the JSON pages. */
  async function eventsOf(projectId: string | null, after: number, key?: string): Promise<Ev[]> {
    const out: Ev[] = [];
    let cursor = String(after);
    for (;;) {
      const res = await p.api('GET', `/v1/events?${projectId ? `projectId=${projectId}&` : ''}cursor=${cursor}&limit=500`, undefined, key ? { key } : {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      out.push(...res.body.items);
      if (!res.body.items.length) return out;
      cursor = res.body.nextCursor;
    }
  }
  const lastSeq = async (projectId: string) => (await eventsOf(projectId, 0)).at(-1)?.seq ?? 0;
  const setBudget = async (projectId: string, amount: string) =>
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount, currency: 'USD', period: 'daily' })).status, 200);
  const startMachine = async (projectId: string, command: string) => {
    const m = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command, cache: false, limits: { money: '0.05', minutes: 2 } });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    return m.body.id as string;
  };

  before(async () => {
    p = await startTestPlatform({ label: 'watching' });
    projectA = await projectWithBudget(p, '10.00');
    projectB = await projectWithBudget(p, '10.00');
  });
  after(async () => {
    await p?.stop();
  });

  it('follows a machine\u2019s output live, then reads it whole from the database alone (no worker disk)', async () => {
    const id = await startMachine(projectA, 'for i in 1 2 3 4 5 6; do echo line-$i; sleep 1; done; echo oops >&2');
    const res = await fetch(`${p.apiUrl}/v1/machines/${id}/logs?follow=true`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let followed = '';
    let statusAtFirstLine: string | null = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      followed += decoder.decode(value, { stream: true });
      if (statusAtFirstLine === null && followed.includes('line-1\n')) statusAtFirstLine = (await p.api('GET', `/v1/machines/${id}`)).body.status;
    }
    // The first line arrived while the machine still ran; the stream ended when it ended.
    assert.ok(statusAtFirstLine && ['provisioning', 'running', 'pending'].includes(statusAtFirstLine), `status at the first line: ${statusAtFirstLine}`);
    assert.equal((await p.api('GET', `/v1/machines/${id}`)).body.status, 'completed');
    assert.equal(followed, 'line-1\nline-2\nline-3\nline-4\nline-5\nline-6\noops\n');

    const whole = await fetch(`${p.apiUrl}/v1/machines/${id}/logs`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(await whole.text(), followed);
    const seq = whole.headers.get('x-log-seq');
    assert.match(seq ?? '', /^\d+$/);
    assert.equal((await p.api('GET', `/v1/machines/${id}/logs?stream=stderr`)).body, 'oops\n');
    assert.equal((await p.api('GET', `/v1/machines/${id}/logs?stream=stdout`)).body, 'line-1\nline-2\nline-3\nline-4\nline-5\nline-6\n');
    assert.equal((await p.api('GET', `/v1/machines/${id}/logs?after=${seq}`)).body, '');
    assert.equal((await p.api('GET', `/v1/machines/${id}/logs?stream=nope`)).status, 422);

    // Another api process on another "host": its own empty home, only the database in common;
    // and the worker's local log files are gone.
    fs.rmSync(path.join(p.home, 'logs'), { recursive: true, force: true });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-api-only-'));
    const config = loadConfig({ AUTOVIBE_HOME: home, DATABASE_URL: p.databaseUrl!, TEMPORAL_ADDRESS: p.temporalAddress, PORT: '0', LOG_LEVEL: 'warn' });
    const db = await createDb({ databaseUrl: p.databaseUrl! });
    const server: Server = await new Promise((resolve) => {
      const s = createApp({ db, temporal: p.temporal, config, log: p.log }).listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const port = (server.address() as { port: number }).port;
      const elsewhere = await fetch(`http://127.0.0.1:${port}/v1/machines/${id}/logs`, { headers: { authorization: `Bearer ${p.adminKey}` } });
      assert.equal(elsewhere.status, 200);
      assert.equal(await elsewhere.text(), followed);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await db.destroy();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('tells of each new checkpoint once (checkpoint.created), to keys that may read checkpoints', async () => {
    const from = await lastSeq(projectA);
    const id = await startMachine(projectA, 'echo tree > tree.txt');
    const m = await waitForMachine(p, id);
    const created = (await eventsOf(projectA, from)).filter((e) => e.kind === 'checkpoint.created');
    assert.deepEqual(
      created.map((e) => [e.subjectId, e.data.machineId, e.data.parentId, e.data.kind]),
      m.checkpoints.map((c: string) => [c, id, m.parentCheckpointId, 'final']),
    );
    const only = await p.api('GET', `/v1/events?projectId=${projectA}&kinds=checkpoint.*&cursor=${from}`);
    assert.deepEqual(
      only.body.items.map((e: Ev) => e.kind),
      created.map(() => 'checkpoint.created'),
    );
  });

  it('long-polls status endpoints: answers when a waited status is reached, or at the timeout with X-Wait-Timed-Out', async () => {
    const id = await startMachine(projectA, 'sleep 3; echo done');
    const waited = await fetch(`${p.apiUrl}/v1/machines/${id}?waitFor=completed,failed&timeout=60`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(waited.status, 200);
    assert.equal(((await waited.json()) as { status: string }).status, 'completed');
    assert.equal(waited.headers.get('x-wait-timed-out'), null);

    const timedOut = await fetch(`${p.apiUrl}/v1/machines/${id}?waitFor=failed&timeout=1`, { headers: { authorization: `Bearer ${p.adminKey}` } });
    assert.equal(timedOut.status, 200);
    assert.equal(timedOut.headers.get('x-wait-timed-out'), 'true');
    assert.equal(((await timedOut.json()) as { status: string }).status, 'completed');

    assert.equal((await p.api('GET', `/v1/machines/${id}?waitFor=done`)).status, 422);
    assert.equal((await p.api('GET', `/v1/machines/${id}?waitFor=completed&timeout=61`)).status, 422);

    const pipeline = await p.api('POST', '/v1/pipelines', { projectId: projectA, steps: [{ id: 's', type: 'shell', command: 'sleep 2' }] });
    assert.equal(pipeline.status, 202, JSON.stringify(pipeline.body));
    const done = await p.api('GET', `/v1/pipelines/${pipeline.body.id}?waitFor=completed,failed,cancelled&timeout=60`);
    assert.equal(done.body.status, 'completed');

    const objective = await p.api('POST', `/v1/projects/${projectA}/objectives`, { title: 'waited', command: 'true' });
    assert.equal(objective.status, 201, JSON.stringify(objective.body));
    const reached = await p.api('GET', `/v1/objectives/${objective.body.id}?waitFor=completed,failed&timeout=60`);
    assert.equal(reached.body.status, 'completed');

    assert.equal((await p.api('PUT', `/v1/projects/${projectA}/payment-methods`, [{ kind: 'manual', timeoutSeconds: 300 }])).status, 200);
    const topup = await p.api('POST', `/v1/projects/${projectA}/topups`, { amount: '1.00', currency: 'USD' });
    assert.equal(topup.status, 202, JSON.stringify(topup.body));
    const payment = await p.api('GET', `/v1/payments/${topup.body.paymentId}?waitFor=manual_required&timeout=60`);
    assert.equal(payment.body.status, 'manual_required');
  });

  it('streams events over SSE; reconnecting with Last-Event-ID gets every missed event exactly once, in order', async () => {
    const start = await lastSeq(projectA);
    await setBudget(projectA, '11.00');
    await setBudget(projectA, '12.00');
    await setBudget(projectA, '13.00');
    const first = await readSse(`${p.apiUrl}/v1/events?projectId=${projectA}&cursor=${start}`, p.adminKey, {}, (got) => got.length >= 3);
    assert.deepEqual(
      first.slice(0, 3).map((e) => [e.kind, e.data.limit]),
      [
        ['budget.set', '11.00'],
        ['budget.set', '12.00'],
        ['budget.set', '13.00'],
      ],
    );
    const lastId = first.at(-1)!.seq;

    // While the client is away: more budget changes, and a machine's whole life.
    await setBudget(projectA, '14.00');
    const id = await startMachine(projectA, 'true');
    await waitForMachine(p, id);
    await setBudget(projectA, '15.00');
    const missed = await eventsOf(projectA, lastId);
    assert.ok(missed.length >= 4, `only ${missed.length} events while away`);
    const until = missed.at(-1)!.seq;

    const second = await readSse(`${p.apiUrl}/v1/events?projectId=${projectA}`, p.adminKey, { 'last-event-id': String(lastId) }, (got) =>
      got.some((e) => e.seq >= until),
    );
    assert.deepEqual(
      second.map((e) => e.seq),
      missed.map((e) => e.seq),
    );
    const statuses = second.filter((e) => e.kind === 'machine.status' && e.subjectId === id).map((e) => e.data.status);
    assert.equal(statuses[0], 'pending');
    assert.equal(statuses.at(-1), 'completed');
    // Both sessions together: the feed from the start, each event once, in order.
    const all = [...first, ...second].map((e) => e.seq);
    assert.deepEqual(
      all,
      (await eventsOf(projectA, start)).filter((e) => e.seq <= until).map((e) => e.seq),
    );
    assert.ok(all.every((s, i) => i === 0 || s > all[i - 1]!));
  });

  it('scopes events: a project-bound key gets only its projects\u2019 events, never deployment-level ones', async () => {
    const viewer = (await createUserWithKey(p.db, 'viewer-of-a', 'viewer', [projectA])).key;
    const from = (await eventsOf(null, 0)).at(-1)!.seq;
    await setBudget(projectB, '21.00');
    const center = await p.api('POST', '/v1/cost-centers', { name: 'cc-watch', kind: 'development', department: 'dept-watch' });
    assert.equal(center.status, 201, JSON.stringify(center.body));
    assert.equal((await p.api('PUT', `/v1/cost-centers/${center.body.id}/budget`, { amount: '50.00', currency: 'USD', period: 'monthly' })).status, 200);
    await setBudget(projectA, '22.00');

    const admin = await eventsOf(null, from);
    assert.ok(
      admin.some((e) => e.projectId === null && e.kind === 'budget.set'),
      'the admin key sees the deployment-level budget',
    );
    assert.ok(admin.some((e) => e.projectId === projectB));
    const own = await eventsOf(null, from, viewer);
    assert.deepEqual(
      own.map((e) => e.seq),
      admin.filter((e) => e.projectId === projectA).map((e) => e.seq),
    );
    assert.equal((await p.api('GET', `/v1/events?projectId=${projectB}`, undefined, { key: viewer })).status, 404);
    const live = await readSse(`${p.apiUrl}/v1/events?cursor=${from}`, viewer, {}, (got) => got.some((e) => e.data.limit === '22.00'));
    assert.ok(live.length >= 1 && live.every((e) => e.projectId === projectA));
    assert.equal((await p.api('GET', '/v1/events?kinds=budget.set,machine.*', undefined, { key: viewer })).status, 200);
    assert.equal((await p.api('GET', '/v1/events?kinds=no%20such', undefined, { key: viewer })).status, 422);
  });

  it('serves the same feed over WebSocket, with the key in ?access_token= and a resume cursor', async () => {
    const start = await lastSeq(projectA);
    await setBudget(projectA, '31.00');
    await setBudget(projectA, '32.00');
    const expected = await eventsOf(projectA, start);
    const url = `${p.apiUrl.replace(/^http/, 'ws')}/v1/events/ws?projectId=${projectA}&cursor=${start}&access_token=${p.adminKey}`;
    const got: Ev[] = await new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const events: Ev[] = [];
      ws.on('message', (m) => {
        events.push(JSON.parse(m.toString()));
        if (events.length >= expected.length) {
          ws.close();
          resolve(events);
        }
      });
      ws.on('error', reject);
    });
    assert.deepEqual(
      got.map((e) => e.seq),
      expected.map((e) => e.seq),
    );
    const refused: number = await new Promise((resolve) => {
      const ws = new WebSocket(`${p.apiUrl.replace(/^http/, 'ws')}/v1/events/ws`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 401);
    assert.equal((await p.api('GET', '/v1/events/ws')).status, 426);
  });
});

describe('e2e: the event stream on embedded PGlite (polled, no LISTEN connection)', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'watching-embedded', embedded: true, worker: false });
  });
  after(async () => {
    await p?.stop();
  });

  it('pushes budget events to a live SSE subscriber', async () => {
    const project = await projectWithBudget(p, '10.00');
    const from = (await p.api('GET', `/v1/events?projectId=${project}&cursor=0&limit=500`)).body.items.at(-1).seq as number;
    const live = readSse(`${p.apiUrl}/v1/events?projectId=${project}&cursor=${from}`, p.adminKey, {}, (got) => got.length >= 2);
    assert.equal((await p.api('PUT', `/v1/projects/${project}/budget`, { amount: '11.00', currency: 'USD', period: 'daily' })).status, 200);
    assert.equal((await p.api('PUT', `/v1/projects/${project}/budget`, { amount: '12.00', currency: 'USD', period: 'daily' })).status, 200);
    assert.deepEqual(
      (await live).map((e) => e.data.limit),
      ['11.00', '12.00'],
    );
  });

  it('answers a polling client its own change at once (the page does not wait for the next poll of the feed)', async () => {
    const project = await projectWithBudget(p, '10.00');
    for (const amount of ['21.00', '22.00', '23.00']) {
      const from = (await p.api('GET', `/v1/events?projectId=${project}&cursor=0&limit=500`)).body.items.at(-1).seq as number;
      assert.equal((await p.api('PUT', `/v1/projects/${project}/budget`, { amount, currency: 'USD', period: 'daily' })).status, 200);
      const page = (await p.api('GET', `/v1/events?projectId=${project}&cursor=${from}&limit=500`)).body;
      assert.deepEqual(
        page.items.map((e: Ev) => e.data.limit),
        [amount],
      );
    }
  });
});
