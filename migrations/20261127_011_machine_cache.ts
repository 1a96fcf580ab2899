import type { Knex } from 'knex';

/**
 * The result cache of machines: one row per machine that looked the cache up (or opted out), with
 * the key of its input. A completed machine whose row is a miss or an opt-out is a cache entry for
 * later machines with the same key; a hit names the machine whose result it reused.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('machine_cache', (t) => {
    t.text('machine_id').primary().references('machines.id');
    t.text('project_id').notNullable().references('projects.id');
    t.text('cache_key').notNullable();
    /** hit | miss | bypass (the request opted out). */
    t.text('outcome').notNullable();
    t.text('source_machine_id');
    t.text('checkpoint_id');
    /** What the source machine was charged: the money the hit saved. */
    t.decimal('saved_amount', 38, 18);
    t.text('currency');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.index(['project_id', 'cache_key']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('machine_cache');
}
