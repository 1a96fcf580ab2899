import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadConfig } from '../config/index.js';
import { startPlatform, type Platform } from './platform.js';
import { startPostgres } from './services/postgres.js';
import { ensureTemporalBinary, startTemporalDevServer } from './services/temporal.js';
import { installAgentClis, toolsDir } from '../test/support/llm/agent-clis.js';
import { startScriptedEndpoint, writeFileScript } from '../test/support/llm/endpoint.js';

/**
 * Records workflow histories for the replay test (test/workflows/replay.test.ts). Run it after an
 * intended, compatible workflow change: `npm run record-histories`. Each scenario's history is
 * written to test/workflows/histories/<scenario>.json.
 */
const OUT = path.resolve('test/workflows/histories');

async function call(p: Platform, method: string, url: string, body?: unknown): Promise<any> {
  const res = await fetch(`${p.apiUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${p.adminKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = await res.json();
  if (res.status >= 400 && res.status !== 409) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function until(p: Platform, url: string, done: (b: any) => boolean): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const b = await call(p, 'GET', url);
    if (done(b)) return b;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out on ${url}`);
}

const machineEnded = (b: any) => ['completed', 'failed', 'terminated', 'refused'].includes(b.status);

/** `npm run record-histories -- snapshot` records only the scenarios named so; the others stay as recorded. */
const ONLY = process.argv.slice(2);

async function writeHistories(address: string, recorded: Array<[string, string]>): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  const cli = await ensureTemporalBinary();
  for (const [name, workflowId] of recorded) {
    // The CLI writes the history in the proto3 JSON form that historyFromJSON reads back.
    const json = execFileSync(cli, ['workflow', 'show', '--address', address, '-w', workflowId, '--output', 'json'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    fs.writeFileSync(path.join(OUT, `${name}.json`), json);
    console.log(`recorded ${name} (${JSON.parse(json).events.length} events)`);
  }
}

/** A machine's checkpoint snapshot lifecycle, then one run each of the scheduled backup and prune. */
async function recordSnapshotScenarios(p: Platform, queue: string, recorded: Array<[string, string]>): Promise<void> {
  const project = await call(p, 'POST', '/v1/projects', { name: 'snapshot histories' });
  await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
  const m = await call(p, 'POST', '/v1/machines', { projectId: project.id, type: 'shell', command: 'echo s > s.txt', checkpointId: project.rootCheckpointId });
  const ended = await until(p, `/v1/machines/${m.id}`, machineEnded);
  await until(p, `/v1/checkpoints/${ended.checkpoints[0]}`, (b) => b.snapshot?.status === 'replicated');
  recorded.push(['snapshot-lifecycle', `snapshot-${ended.checkpoints[0]}`]);
  await p.temporal.workflow.execute('snapshotBackup', { workflowId: 'snapshot-backup-recorded', taskQueue: queue, args: [{}] });
  recorded.push(['snapshot-backup', 'snapshot-backup-recorded']);
  await p.temporal.workflow.execute('snapshotPrune', { workflowId: 'snapshot-prune-recorded', taskQueue: queue, args: [{ graceMs: 0 }] });
  recorded.push(['snapshot-prune', 'snapshot-prune-recorded']);
}

async function main() {
  const pg = await startPostgres();
  const temporal = await startTemporalDevServer({ uiPort: null });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-record-'));
  const llm = await startScriptedEndpoint();
  const config = loadConfig({
    AUTOVIBE_TOOLS_DIR: toolsDir(),
    ANTHROPIC_API_KEY: 'recording',
    ANTHROPIC_BASE_URL: llm.url,
    AUTOVIBE_HOME: home,
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporal.address,
    PORT: '0',
    LOG_LEVEL: 'warn',
    AUTOVIBE_HEARTBEAT_TIMEOUT_S: '5',
  });
  const p = await startPlatform({ config });
  const recorded: Array<[string, string]> = [];
  try {
    if (ONLY.length) {
      await recordSnapshotScenarios(p, config.taskQueue, recorded);
      await writeHistories(temporal.address, recorded.filter(([name]) => ONLY.some((o) => name.startsWith(o))));
      return;
    }
    const project = await call(p, 'POST', '/v1/projects', { name: 'histories' });
    await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
    const spawn = (body: object) => call(p, 'POST', '/v1/machines', { projectId: project.id, type: 'shell', ...body });

    const completed = await spawn({ command: 'echo done > done.txt' });
    await until(p, `/v1/machines/${completed.id}`, machineEnded);
    recorded.push(['machine-completed', completed.id]);

    const failed = await spawn({ command: 'echo partial > p.txt; exit 2' });
    await until(p, `/v1/machines/${failed.id}`, machineEnded);
    recorded.push(['machine-failed', failed.id]);

    const terminated = await spawn({ command: 'while true; do date >> t.txt; sleep 0.2; done' });
    await until(p, `/v1/machines/${terminated.id}`, (b) => b.status === 'running');
    await call(p, 'POST', `/v1/machines/${terminated.id}/checkpoint`);
    await until(p, `/v1/machines/${terminated.id}`, (b) => b.checkpoints.length === 1);
    await call(p, 'POST', `/v1/machines/${terminated.id}/terminate`);
    await until(p, `/v1/machines/${terminated.id}`, machineEnded);
    recorded.push(['machine-terminated-with-manual-checkpoint', terminated.id]);

    const refused = await spawn({ command: 'true', limits: { money: '5.00' } });
    await until(p, `/v1/machines/${refused.error?.details?.machineId ?? refused.id}`, machineEnded);
    recorded.push(['machine-refused', refused.error.details.machineId]);

    await installAgentClis();
    llm.setScript(writeFileScript('claude', { path: '/workspace/notes.txt', content: 'recorded\n' }));
    const agent = await spawn({ type: 'claude-code', prompt: 'Write notes.txt' });
    await until(p, `/v1/machines/${agent.id}`, machineEnded);
    recorded.push(['machine-claude-code-completed', agent.id]);

    const first = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, { title: 'first', command: 'echo 1 > 1.txt' });
    const second = await call(p, 'POST', `/v1/projects/${project.id}/objectives`, { title: 'second', command: 'echo 2 > 2.txt', dependsOn: [first.id] });
    await until(p, `/v1/objectives/${second.id}`, (b) => b.status === 'completed');
    recorded.push(['objective-first', first.id], ['objective-second-with-dependency', second.id]);

    await recordSnapshotScenarios(p, config.taskQueue, recorded);
    await writeHistories(temporal.address, recorded);
  } finally {
    await p.stop();
    await temporal.stop();
    await llm.stop();
    await pg.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
