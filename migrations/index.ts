import type { Knex } from 'knex';
import * as m001 from './20261127_001_core.js';
import * as m002 from './20261127_002_machine_artifacts.js';
import * as m003 from './20261127_003_project_limit_policy.js';
import * as m004 from './20261127_004_pipelines.js';
import * as m010 from './20261127_010_scheduling.js';
import * as m012 from './20261127_012_artifact_passing.js';
import * as m011 from './20261127_011_machine_cache.js';
import * as m007 from './20261127_007_compute.js';
import * as m005 from './20261127_005_fx_cost_centers.js';
import * as m009 from './20261127_009_snapshots.js';
import * as m006 from './20261127_006_payments.js';
import * as m013 from './20261127_013_instance_snapshots.js';
import * as m014 from './20261206_014_tenancy.js';
import * as m015 from './20261206_015_idempotency_reservations.js';
import * as m031 from './20261206_031_crypto_invoice_matching.js';
import * as m040 from './20261206_040_watching.js';
import * as m051 from './20261206_051_artifact_store.js';
import * as m052 from './20261206_052_alerts.js';
import * as m060 from './20261207_060_webhooks.js';
import * as m070 from './20261207_070_git_remotes.js';
import * as m080 from './20261207_080_network_policy.js';
import * as m090 from './20261207_090_merges.js';
import * as m100 from './20261207_100_integrations.js';
import * as m120 from './20261207_120_slack_bot.js';
import * as m110 from './20261207_110_prepaid_balance.js';
import * as m140 from './20261207_140_tickets.js';
import * as m130 from './20261207_130_forecasts.js';
import * as m150 from './20261207_150_routing.js';
import * as m160 from './20261207_160_feedback.js';
import * as m170 from './20261207_170_predictions.js';
import * as m180 from './20261207_180_alert_engine.js';
import * as m190 from './20261207_190_reallocation.js';
import * as m210 from './20261207_210_project_history.js';
import * as m220 from './20261207_220_prompt_refinement.js';
import * as m230 from './20261207_230_queues.js';

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
  ['20261127_010_scheduling', m010],
  ['20261127_012_artifact_passing', m012],
  ['20261127_011_machine_cache', m011],
  ['20261127_007_compute', m007],
  ['20261127_005_fx_cost_centers', m005],
  ['20261127_009_snapshots', m009],
  ['20261127_006_payments', m006],
  ['20261127_013_instance_snapshots', m013],
  ['20261206_014_tenancy', m014],
  ['20261206_015_idempotency_reservations', m015],
  ['20261206_031_crypto_invoice_matching', m031],
  ['20261206_040_watching', m040],
  ['20261206_051_artifact_store', m051],
  ['20261206_052_alerts', m052],
  ['20261207_060_webhooks', m060],
  ['20261207_070_git_remotes', m070],
  ['20261207_080_network_policy', m080],
  ['20261207_090_merges', m090],
  ['20261207_100_integrations', m100],
  ['20261207_110_prepaid_balance', m110],
  ['20261207_120_slack_bot', m120],
  ['20261207_130_forecasts', m130],
  ['20261207_140_tickets', m140],
  ['20261207_150_routing', m150],
  ['20261207_160_feedback', m160],
  ['20261207_170_predictions', m170],
  ['20261207_180_alert_engine', m180],
  ['20261207_190_reallocation', m190],
  ['20261207_210_project_history', m210],
  ['20261207_220_prompt_refinement', m220],
  ['20261207_230_queues', m230],
];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: async () => MIGRATIONS,
  getMigrationName: ([name]) => name,
  getMigration: async ([, migration]) => migration,
};
