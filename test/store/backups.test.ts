import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendAudit, verifyAuditChain } from '../../store/audit.js';
import { createBackup, listBackups, pruneBackups, replicateBackup, restoreBackup, verifyBackup } from '../../store/backups.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { initProjectRepo } from '../../store/git.js';
import { downloadBackup, listS3Backups, s3BackupTarget, uploadBackup } from '../../store/backup-s3.js';
import { startMoto } from '../../scripts/services/moto.js';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';

/** Every row of every table as PostgreSQL's text of the row, by table. */
async function contents(db: Db): Promise<Record<string, string[]>> {
  const tables = (
    await db.raw(
      `select table_name as t from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not like 'knex%'`,
    )
  ).rows as Array<{ t: string }>;
  const out: Record<string, string[]> = {};
  for (const { t } of tables) out[t] = ((await db.raw(`select x::text as r from "${t}" x`)).rows as Array<{ r: string }>).map((r) => r.r).sort();
  return out;
}

/**
 * Backups of the embedded database (PGlite, the `npm start` default): the restore is exact for
 * every type (bytea, bigint past 2^53, jsonb, microsecond timestamps), sequences continue, the
 * audit chain verifies, a repository comes back with its refs, and a corrupt copy is refused.
 */
describe('store/backups on embedded PGlite', function () {
  this.timeout(120_000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-backups-'));
  const paths = (name: string) => ({ projectsDir: path.join(tmp, name, 'projects'), snapshotsDir: path.join(tmp, name, 'snapshots') });
  let source: Db;
  let target: Db;

  after(async () => {
    await source?.destroy();
    await target?.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('restores a database, repositories and chunks exactly, from the replica', async () => {
    source = await createDb({ home: path.join(tmp, 'a') });
    await migrateLatest(source);
    for (let i = 0; i < 5; i++) {
      await appendAudit(source, {
        actor: 'user',
        action: 'test.thing',
        subjectType: 'thing',
        subjectId: `t-${i}`,
        projectId: null,
        details: { i, text: 'café ✓ "quoted"\n' },
      });
    }
    const blob = crypto.randomBytes(70_000);
    await source('artifact_blobs').insert({ sha256: crypto.createHash('sha256').update(blob).digest('hex'), size: '9007199254740993', content: blob });
    const from = paths('a');
    const commit = await initProjectRepo(path.join(from.projectsDir, 'p-1.git'), new Date('2026-12-01T00:00:00Z'));
    execFileSync('git', ['--git-dir', path.join(from.projectsDir, 'p-1.git'), 'update-ref', 'refs/checkpoints/root', commit]);
    fs.mkdirSync(path.join(from.snapshotsDir, 'chunks', 'ab'), { recursive: true });
    fs.writeFileSync(path.join(from.snapshotsDir, 'chunks', 'ab', 'abcd.zst'), 'chunk bytes');

    const root = path.join(tmp, 'backups');
    const replica = path.join(tmp, 'replica');
    const manifest = await createBackup(source, from, root, 'backup-20261207T000000Z-aaaaaa', new Date());
    assert.equal(manifest.tables.find((t) => t.name === 'audit_log')!.rows, 5);
    assert.equal(manifest.chunks.files, 1);
    await replicateBackup(root, replica, manifest.id);
    assert.deepEqual(
      (await listBackups(replica)).map((b) => b.id),
      [manifest.id],
    );

    // A flipped byte in the replica is found before anything is restored.
    const auditFile = path.join(replica, manifest.id, manifest.tables.find((t) => t.name === 'audit_log')!.file);
    const good = fs.readFileSync(auditFile);
    fs.writeFileSync(auditFile, Buffer.from(good.map((b, i) => (i === 20 ? b ^ 1 : b))));
    await assert.rejects(verifyBackup(replica, manifest.id), /audit_log\.jsonl\.gz is corrupt/);
    fs.writeFileSync(auditFile, good);

    target = await createDb({ home: path.join(tmp, 'b') });
    const to = paths('b');
    const r = await restoreBackup(target, to, replica, manifest.id);
    assert.equal(r.repositories, 1);
    assert.deepEqual(r.migratedAfter, []);
    assert.deepEqual(await contents(target), await contents(source), 'every row of every table is the same');
    assert.equal(await verifyAuditChain(target), null);
    // Sequences continue where they were: a new audit record gets the next seq and the chain holds.
    await appendAudit(target, { actor: 'user', action: 'test.after', subjectType: 'thing', subjectId: 't-after', projectId: null, details: {} });
    const seqs = (await target('audit_log').select('seq').orderBy('seq')).map((x) => Number(x.seq));
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.equal(new Set(seqs).size, 6);
    assert.equal(await verifyAuditChain(target), null);
    const refs = execFileSync('git', ['--git-dir', path.join(to.projectsDir, 'p-1.git'), 'for-each-ref', '--format=%(objectname)']).toString();
    assert.ok(refs.includes(commit), 'the repository has its refs back');
    assert.equal(fs.readFileSync(path.join(to.snapshotsDir, 'chunks', 'ab', 'abcd.zst'), 'utf8'), 'chunk bytes');

    // Restoring again onto the now non-empty database is refused.
    await assert.rejects(restoreBackup(target, paths('c'), replica, manifest.id), /already holds|empty/);
  });

  it('replicates to an S3 bucket and restores from it (moto), refusing a tampered copy', async () => {
    const moto = await startMoto();
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    try {
      const region = 'eu-west-1';
      process.env.AWS_ACCESS_KEY_ID = moto.credentials.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = moto.credentials.secretAccessKey;
      const bucket = s3BackupTarget({ url: 's3://autovibe-backups-replica/dr', region, endpoint: moto.endpoint })!;
      await bucket.s3.send(new CreateBucketCommand({ Bucket: bucket.bucket, CreateBucketConfiguration: { LocationConstraint: region } }));
      const root = path.join(tmp, 'backups');
      const [manifest] = await listBackups(root);
      await uploadBackup(root, manifest!.id, bucket);
      // Uploading again sends nothing new and changes nothing.
      await uploadBackup(root, manifest!.id, bucket);
      assert.deepEqual(await listS3Backups(bucket), [manifest!.id]);

      const down = path.join(tmp, 'downloaded');
      const got = await downloadBackup(bucket, manifest!.id, down);
      assert.deepEqual(got, manifest);
      for (const t of manifest!.tables)
        assert.deepEqual(fs.readFileSync(path.join(down, manifest!.id, t.file)), fs.readFileSync(path.join(root, manifest!.id, t.file)));
      assert.equal(fs.readFileSync(path.join(down, 'chunks', 'ab', 'abcd.zst'), 'utf8'), 'chunk bytes');

      // Someone replaced an object in the bucket: the download's verification refuses it.
      const table = manifest!.tables.find((t) => t.rows > 0)!;
      await bucket.s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: `${bucket.prefix}${manifest!.id}/${table.file}`, Body: 'tampered' }));
      await assert.rejects(downloadBackup(bucket, manifest!.id, path.join(tmp, 'downloaded-2')), /corrupt/);
    } finally {
      for (const [k, v] of [
        ['AWS_ACCESS_KEY_ID', saved.id],
        ['AWS_SECRET_ACCESS_KEY', saved.secret],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await moto.stop();
    }
  });

  it('keeps the newest backups and drops unfinished older ones', async () => {
    const root = path.join(tmp, 'prune');
    for (const id of ['backup-20261201T000000Z-a', 'backup-20261202T000000Z-b', 'backup-20261203T000000Z-c']) {
      fs.mkdirSync(path.join(root, id), { recursive: true });
      fs.writeFileSync(
        path.join(root, id, 'manifest.json'),
        JSON.stringify({ format: 1, id, tables: [], repositories: [], sequences: [], migrations: [], chunks: { files: 0, bytes: 0 } }),
      );
    }
    fs.mkdirSync(path.join(root, 'backup-20261202T120000Z-unfinished'));
    const removed = await pruneBackups(root, 2);
    assert.deepEqual(removed.sort(), ['backup-20261201T000000Z-a', 'backup-20261202T120000Z-unfinished']);
    assert.deepEqual(
      (await listBackups(root)).map((b) => b.id),
      ['backup-20261203T000000Z-c', 'backup-20261202T000000Z-b'],
    );
  });
});
