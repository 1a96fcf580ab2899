import type { Knex } from 'knex';

/** Files a machine leaves besides its checkpoints: its conversation history and the tool's own output. */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('machine_artifacts', (t) => {
    t.text('machine_id').notNullable().references('machines.id');
    t.text('name').notNullable();
    t.text('path').notNullable();
    t.bigInteger('size').notNullable();
    t.text('sha256').notNullable();
    t.text('checkpoint_id').references('checkpoints.id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
    t.primary(['machine_id', 'name']);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('machine_artifacts');
}
