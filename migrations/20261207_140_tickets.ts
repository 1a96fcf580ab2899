import type { Knex } from 'knex';

/**
 * Objectives created with `ticket: true` (README "Jira", "Linear"): each of the project's ticket
 * integrations (Jira, Linear) makes a ticket for it when its dispatcher sees the objective's
 * first status event. One row per objective; the tickets made are integration_links of kind
 * 'ticket'.
 */
export async function up(db: Knex): Promise<void> {
  await db.schema.createTable('objective_ticket_requests', (t) => {
    t.text('objective_id').primary().references('id').inTable('objectives').onDelete('CASCADE');
    t.text('requested_by').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(db.fn.now());
  });
}

export async function down(db: Knex): Promise<void> {
  await db.schema.dropTable('objective_ticket_requests');
}
