import type { Knex } from 'knex';

/**
 * Artifacts in Postgres, so an api on any host serves what a worker on another wrote.
 * `artifact_blobs`: content by its SHA-256 (one copy however many machines hold it: a cache hit
 * copies a reference, not bytes; Postgres compresses large values itself, TOAST). A
 * `machine_artifacts` row names its blob; a row written before this migration keeps only `path`
 * (a file on the worker that wrote it) and is read from there as a fallback; a row whose content
 * was over the size cap keeps its size and hash, no blob, and `not_stored` says why.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('artifact_blobs', (t) => {
    t.text('sha256').primary();
    t.bigInteger('size').notNullable();
    t.binary('content').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
  await db.schema.alterTable('machine_artifacts', (t) => {
    t.text('path').nullable().alter();
    t.text('blob_sha256').references('artifact_blobs.sha256');
    t.text('not_stored');
  });
}

export async function down(db: Knex): Promise<void> {
  // Rows whose content is only in the database have nothing to go back to.
  await db('machine_artifacts').whereNull('path').delete();
  await db.schema.alterTable('machine_artifacts', (t) => {
    t.dropColumn('not_stored');
    t.dropColumn('blob_sha256');
    t.text('path').notNullable().alter();
  });
  await db.schema.dropTable('artifact_blobs');
}
