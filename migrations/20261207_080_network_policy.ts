import type { Knex } from 'knex';

/**
 * Machine network by policy (README "Network"): the project's policy (null: `none`, who set it and
 * when), the policy each machine was given when requested, and what its egress proxy let through
 * or refused (connections and bytes; each connection is also an audit record of the machine).
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.alterTable('projects', (t) => {
    t.jsonb('network_policy');
    t.text('network_policy_updated_by');
    t.timestamp('network_policy_updated_at', { useTz: true });
  });
  await db.schema.alterTable('machines', (t) => {
    t.jsonb('network');
    t.integer('network_connections').notNullable().defaultTo(0);
    t.integer('network_refused').notNullable().defaultTo(0);
    t.bigInteger('network_bytes_up').notNullable().defaultTo(0);
    t.bigInteger('network_bytes_down').notNullable().defaultTo(0);
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.alterTable('machines', (t) => {
    for (const c of ['network', 'network_connections', 'network_refused', 'network_bytes_up', 'network_bytes_down']) t.dropColumn(c);
  });
  await db.schema.alterTable('projects', (t) => {
    for (const c of ['network_policy', 'network_policy_updated_by', 'network_policy_updated_at']) t.dropColumn(c);
  });
}
