import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDatabase } from '../../scripts/services/postgres.js';
import { listBackups, readManifest, verifyBackup } from '../../store/backups.js';
import { backupScheduleId } from '../../workers/schedules.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * The disaster-recovery drill: a platform with real work (a machine's checkpoint with a binary
 * file and a snapshot, costs in the ledger, an audit chain) is backed up by its Temporal Schedule;
 * then the primary data is destroyed — the database dropped, the project repositories, both
 * snapshot regions and the primary backups deleted — and `npm run restore` brings it back from
 * the backup replica. The platform started again on the restored data serves the checkpoint
 * byte-identical, the same ledger totals, an intact audit chain, and runs new machines from the
 * restored checkpoint.
 */
describe('disaster-recovery drill (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(300_000);
  const adminKey = `av_dr_${crypto.randomBytes(16).toString('hex')}`;
  const backupRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-dr-backups-'));
  const env = {
    AUTOVIBE_ADMIN_KEY: adminKey,
    AUTOVIBE_BACKUP_DIR: path.join(backupRoot, 'primary'),
    AUTOVIBE_BACKUP_REPLICA_DIR: path.join(backupRoot, 'replica'),
  };
  let first: TestPlatform | undefined;
  let second: TestPlatform | undefined;

  after(async () => {
    await first?.stop().catch(() => {});
    await second?.stop();
    fs.rmSync(backupRoot, { recursive: true, force: true });
  });

  const file = async (p: TestPlatform, checkpointId: string, name: string) => {
    const res = await fetch(`${p.apiUrl}/v1/checkpoints/${checkpointId}/files/${name}`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200, `${name}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };

  it('restores everything committed from the replica after the primary data is destroyed', async () => {
    first = await startTestPlatform({ label: 'dr', env });
    const p = first;
    const projectId = await projectWithBudget(p, '5.00', 'total');
    const made = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: "head -c 4096 /dev/urandom > blob.bin && printf 'caf\\303\\251\\n' > notes.txt",
    });
    assert.equal(made.status, 202, JSON.stringify(made.body));
    const machine = await waitForMachine(p, made.body.id);
    assert.equal(machine.status, 'completed', JSON.stringify(machine));
    const checkpointId: string = machine.checkpoints[0];
    const snapshotted = await waitFor(async () => {
      const { body } = await p.api('GET', `/v1/checkpoints/${checkpointId}`);
      return body.snapshot?.status === 'replicated' ? body : null;
    }, 'the checkpoint snapshot');
    const before = {
      blob: await file(p, checkpointId, 'blob.bin'),
      notes: await file(p, checkpointId, 'notes.txt'),
      costs: (await p.api('GET', `/v1/projects/${projectId}/costs`)).body,
      budgets: (await p.api('GET', `/v1/projects/${projectId}/budgets`)).body,
      checkpoint: snapshotted,
      audit: (await p.api('GET', `/v1/audit?projectId=${projectId}&limit=500`)).body.items.map((a: any) => a.hash),
    };
    assert.ok(before.blob.length === 4096);
    assert.equal((await p.api('GET', '/v1/audit/verify')).body.intact, true);

    // The scheduled backup, triggered now, as the Schedule would at its hour.
    const schedule = p.temporal.schedule.getHandle(backupScheduleId(p.config));
    await schedule.trigger();
    const [backup] = await waitFor(async () => {
      const found = await listBackups(env.AUTOVIBE_BACKUP_REPLICA_DIR);
      return found.length ? found : null;
    }, 'a replicated backup');
    const manifest = await verifyBackup(env.AUTOVIBE_BACKUP_REPLICA_DIR, backup!.id);
    assert.ok(
      manifest.repositories.some((r) => r.name === `${projectId}.git` && r.file),
      'the project repository is bundled',
    );
    assert.ok(manifest.chunks.files > 0, 'snapshot chunks are copied');
    assert.ok(manifest.tables.find((t) => t.name === 'projects')!.rows >= 1);
    // The run ended with retention and its audit record.
    const [action] = (await schedule.describe()).info.recentActions;
    const result = await p.temporal.workflow.getHandle(action!.action.workflow.workflowId).result();
    assert.equal(result.id, backup!.id);
    assert.equal(result.replicated, true);

    // Disaster: the primary data is gone.
    const { home, databaseUrl, config } = p;
    await p.halt();
    first = undefined;
    const dbName = new URL(databaseUrl!).pathname.slice(1);
    await createDatabase(process.env.TEST_DATABASE_URL!, dbName);
    for (const dir of [config.projectsDir, config.snapshotRegions.primary, config.snapshotRegions.replica, env.AUTOVIBE_BACKUP_DIR]) {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    // A corrupt file in the replica is refused before anything is written.
    const table = manifest.tables.find((t) => t.rows > 0)!;
    const tablePath = path.join(env.AUTOVIBE_BACKUP_REPLICA_DIR, backup!.id, table.file);
    const good = fs.readFileSync(tablePath);
    fs.writeFileSync(tablePath, Buffer.concat([good, Buffer.from('x')]));
    const restoreEnv = { ...process.env, ...env, AUTOVIBE_HOME: home, DATABASE_URL: databaseUrl!, LOG_LEVEL: 'warn' };
    const refused = await run('npx', ['tsx', 'scripts/restore.ts'], { cwd: ROOT, env: restoreEnv }).then(
      () => null,
      (e: { stderr: string }) => e.stderr,
    );
    assert.match(refused ?? '', /corrupt/, 'a corrupt backup file fails the restore');
    assert.ok(!fs.existsSync(config.projectsDir), 'nothing was restored from a corrupt backup');
    fs.writeFileSync(tablePath, good);

    // Recovery: `npm run restore` from the replica.
    const restored = await run('npx', ['tsx', 'scripts/restore.ts', '--from', 'replica'], { cwd: ROOT, env: restoreEnv });
    assert.match(restored.stdout, new RegExp(`restored ${backup!.id}`));
    // The recovery time the README's recovery plan quotes.
    console.log(`      ${restored.stdout.trim()}`);
    assert.equal((await readManifest(env.AUTOVIBE_BACKUP_REPLICA_DIR, backup!.id)).id, backup!.id);

    second = await startTestPlatform({ label: 'dr2', env: { ...env, AUTOVIBE_HOME: home, DATABASE_URL: databaseUrl! } });
    const q = second;
    assert.deepEqual(await file(q, checkpointId, 'blob.bin'), before.blob, 'checkpoint files are byte-identical');
    assert.deepEqual(await file(q, checkpointId, 'notes.txt'), before.notes);
    assert.deepEqual((await q.api('GET', `/v1/projects/${projectId}/costs`)).body, before.costs, 'ledger totals are equal');
    assert.deepEqual((await q.api('GET', `/v1/projects/${projectId}/budgets`)).body, before.budgets);
    const after = (await q.api('GET', `/v1/checkpoints/${checkpointId}`)).body;
    assert.deepEqual(after.files, before.checkpoint.files);
    assert.equal(after.snapshot.status, 'replicated');
    const audit = (await q.api('GET', `/v1/audit?projectId=${projectId}&limit=500`)).body.items.map((a: any) => a.hash);
    assert.deepEqual(audit.slice(0, before.audit.length), before.audit, 'the audit records are the same records');
    assert.equal((await q.api('GET', '/v1/audit/verify')).body.intact, true, 'the audit chain verifies');

    // The restored platform goes on: a machine from the restored checkpoint reads its files and is charged.
    const next = await q.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      command: 'sha256sum blob.bin > sum.txt && cat notes.txt >> sum.txt',
      checkpointId,
    });
    assert.equal(next.status, 202, JSON.stringify(next.body));
    const done = await waitForMachine(q, next.body.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    const sum = (await file(q, done.checkpoints[0], 'sum.txt')).toString();
    assert.ok(sum.startsWith(crypto.createHash('sha256').update(before.blob).digest('hex')), sum);
    assert.ok(sum.endsWith('café\n'), sum);
    const costsAfter = (await q.api('GET', `/v1/projects/${projectId}/costs`)).body;
    assert.notDeepEqual(costsAfter, before.costs, 'the new machine is charged on top of the restored ledger');
  });
});
