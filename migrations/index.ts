import type { Knex } from 'knex';
import * as m001 from './20261127_001_core.js';
import * as m002 from './20261127_002_machine_artifacts.js';
import * as m003 from './20261127_003_project_limit_policy.js';
import * as m004 from './20261127_004_pipelines.js';
import * as m006 from './20261127_006_payments.js';

interface Migration {
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

/** Every migration in order. Listed explicitly so bundlers and tsx load them the same way. */
const MIGRATIONS: Array<[string, Migration]> = [
  ['20261127_001_core', m001],
  ['20261127_002_machine_artifacts', m002],
  ['20261127_003_project_limit_policy', m003],
  ['20261127_004_pipelines', m004],
  ['20261127_006_payments', m006],
];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: async () => MIGRATIONS,
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
