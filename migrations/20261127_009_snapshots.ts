import type { Knex } from 'knex';

/**
 * Snapshots of checkpoints in the content-addressed chunk store: one manifest per checkpoint, the
 * chunks it holds, and one replica row per region the snapshot is copied to. Milestone checkpoints
 * are kept forever by the retention grid.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('checkpoints', (t) => {
    t.boolean('milestone').notNullable().defaultTo(false);
  });
  await db.schema.createTable('snapshots', (t) => {
    t.text('checkpoint_id').primary().references('checkpoints.id');
    t.text('project_id').notNullable().references('projects.id');
    /** 'stored' (in the primary region), 'replicated' (and in every replica), 'pruned'. */
    t.text('status').notNullable();
    /** Where the files came from: the live 'workspace', or the checkpoint's git 'commit'. */
    t.text('source').notNullable();
    /** [{ path, type, mode, size, sha256, chunks, target }] — null once pruned. */
    t.jsonb('manifest');
    t.integer('files').notNullable();
    t.integer('chunks').notNullable();
    /** Bytes of the files (a full copy). */
    t.bigInteger('bytes').notNullable();
    /** Compressed bytes this snapshot added to the store (chunks no earlier snapshot had). */
    t.bigInteger('stored_bytes').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('pruned_at', { useTz: true });
    t.index(['project_id', 'status']);
  });
  await db.schema.createTable('snapshot_chunks', (t) => {
    t.text('hash').primary();
    t.integer('size').notNullable();
    t.integer('stored_size').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.createTable('snapshot_replicas', (t) => {
    t.text('checkpoint_id').notNullable().references('snapshots.checkpoint_id');
    t.text('region').notNullable();
    /** 'pending', 'replicated', 'failed', 'deleted'. */
    t.text('status').notNullable();
    t.bigInteger('copied_bytes').notNullable().defaultTo(0);
    t.text('error');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['checkpoint_id', 'region']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('snapshot_replicas');
  await db.schema.dropTableIfExists('snapshot_chunks');
  await db.schema.dropTableIfExists('snapshots');
  await db.schema.alterTable('checkpoints', (t) => {
    t.dropColumn('milestone');
  });
}
