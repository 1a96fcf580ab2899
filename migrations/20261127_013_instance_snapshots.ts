import type { Knex } from 'knex';

/**
 * Provider-side disk snapshots of checkpoints (EBS on aws-ec2): at most one per checkpoint, taken
 * of the machine's instance when the checkpoint was made. The copies' states are kept as last
 * seen (the api reads them live from the provider when it can); `deleted_at` marks one the
 * retention prune removed (the row stays for the record).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('instance_snapshots', (t) => {
    t.text('checkpoint_id').primary().references('checkpoints.id');
    t.text('project_id').notNullable().references('projects.id');
    t.text('machine_id').notNullable().references('machines.id');
    t.text('provider').notNullable();
    /** The snapshot's id in its home region (EBS snapshot id). */
    t.text('snapshot_ref').notNullable();
    t.text('region').notNullable();
    /** [{ region, state, snapshotId? }] as last seen. */
    t.jsonb('replicas').notNullable().defaultTo('[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.timestamp('deleted_at', { useTz: true });
    t.index(['project_id']);
    t.index(['snapshot_ref']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('instance_snapshots');
}
