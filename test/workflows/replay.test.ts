import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { bundleWorkflows } from '../../workers/worker.js';
import { workflowBundle } from '../support/platform.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIR = path.join(HERE, 'histories');

function histories() {
  return fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ workflowId: f.replace(/\.json$/, ''), history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8'))) }));
}

/**
 * Replays recorded histories (made by `npm run record-histories`) against today's workflow code:
 * a change that would break executions already running fails here.
 */
describe('workflow replay of recorded histories', function () {
  this.timeout(120_000);

  it('has recorded histories for every workflow family', () => {
    const names = histories().map((h) => h.workflowId);
    assert.ok(names.some((n) => n.startsWith('machine-')));
    assert.ok(names.some((n) => n.startsWith('objective-')));
    assert.ok(names.some((n) => n.startsWith('pipeline-')));
    assert.ok(names.some((n) => n.startsWith('project-coordinator')));
    assert.ok(names.length >= 9);
    assert.ok(names.some((n) => n.startsWith('reconcile-')));
    assert.ok(names.includes('machine-handed-over'), 'a machine handed over by a stopping worker (its worker-handover branch)');
    assert.ok(
      ['machine-queues-completed', 'machine-host-lost', 'objective-completion-check-machine-queue'].every((n) => names.includes(n)),
      'machine queues: a run on its host queue, a host lost (npm run record-histories -- machine-queues-completed machine-host-lost …)',
    );
    assert.ok(names.includes('webhook-dispatcher'), 'webhookDispatcher (npm run record-histories -- webhook-dispatcher)');
    assert.ok(names.includes('integration-dispatcher'), 'integrationDispatcher (npm run record-histories -- integration-dispatcher)');
    assert.ok(names.includes('git-fetch-scheduled'), 'scheduledGitFetch (npm run record-histories -- git-fetch-scheduled)');
    assert.ok(names.includes('platform-backup'), 'platformBackup (npm run record-histories -- platform-backup)');
    assert.ok(['snapshot-lifecycle', 'snapshot-backup', 'snapshot-prune'].every((n) => names.includes(n)));
    assert.ok(names.includes('forecast-refresh'), 'forecastRefresh (npm run record-histories -- forecast-refresh)');
    assert.ok(names.includes('budget-reallocation'), 'budgetReallocation (npm run record-histories -- budget-reallocation)');
    assert.ok(names.includes('alert-evaluation'), 'alertEvaluation (npm run record-histories -- alert-evaluation)');
    assert.ok(
      names.some((n) => n.startsWith('payment-')),
      'paymentCascade (scripts/record-payment-histories.ts)',
    );
    assert.ok(names.length >= 6);
  });

  it('replays every recorded history without a determinism error', async () => {
    const bundle = await workflowBundle();
    const results = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories())) results.push(result);
    assert.equal(results.length, histories().length);
    for (const r of results) assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
  });

  it('fails the replay when machineRun changes its order of activities', async () => {
    const changed = await bundleWorkflows(path.join(HERE, 'fixtures', 'reordered-machine.ts'));
    const machine = histories().find((h) => h.workflowId === 'machine-completed')!;
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: changed }, machine.history, machine.workflowId), DeterminismViolationError);
  });

  it('fails the replay when snapshotLifecycle changes its order of activities', async () => {
    const changed = await bundleWorkflows(path.join(HERE, 'fixtures', 'reordered-snapshot.ts'));
    const lifecycle = histories().find((h) => h.workflowId === 'snapshot-lifecycle')!;
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: changed }, lifecycle.history, lifecycle.workflowId), DeterminismViolationError);
  });
});

describe('paymentCascade replay', function () {
  this.timeout(120_000);

  it('fails the replay when the cascade would try its methods in another order', async () => {
    const changed = await bundleWorkflows(path.join(HERE, 'fixtures', 'reversed-payment-cascade.ts'));
    const payment = histories().find((h) => h.workflowId === 'payment-declined-then-approved')!;
    await assert.rejects(Worker.runReplayHistory({ workflowBundle: changed }, payment.history, payment.workflowId), DeterminismViolationError);
  });
});
