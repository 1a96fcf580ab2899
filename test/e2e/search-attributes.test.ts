import assert from 'node:assert/strict';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../domain/search-attributes.js';
import { Worker } from '@temporalio/worker';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, workflowBundle, type TestPlatform } from '../support/platform.js';

/** Lists runs matching a visibility query (the dev server's visibility is eventually consistent: polled, bounded). */
async function listUntil(temporal: Client, query: string, want: (runs: WorkflowExecutionInfo[]) => boolean): Promise<WorkflowExecutionInfo[]> {
  return waitFor(
    async () => {
      const runs: WorkflowExecutionInfo[] = [];
      for await (const r of temporal.workflow.list({ query })) runs.push(r);
      return want(runs) ? runs : null;
    },
    `visibility query ${query}`,
    30_000,
  );
}

describe('Temporal search attributes and summaries', function () {
  this.timeout(180_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'search-attrs' });
  });
  after(async () => {
    await p?.stop();
  });

  it('finds a machine started through the api by project, then by status once it completed', async () => {
    const projectId = await projectWithBudget(p, '1.00');
    const other = await projectWithBudget(p, '1.00');
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo searchable' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const id = start.body.id as string;

    const byProject = await listUntil(p.temporal, `AutoVibeProject = '${projectId}'`, (runs) => runs.some((r) => r.workflowId === id));
    const run = byProject.find((r) => r.workflowId === id)!;
    assert.equal(run.type, 'machineRun');
    const attrs = run.typedSearchAttributes;
    assert.equal(attrs.get(SEARCH_ATTRIBUTES.machineType), 'shell');
    assert.equal(attrs.get(SEARCH_ATTRIBUTES.provider), 'local');
    // Another project's query does not find it.
    assert.equal((await listUntil(p.temporal, `AutoVibeProject = '${other}' AND WorkflowType = 'machineRun'`, () => true)).length, 0);

    const m = await waitForMachine(p, id);
    assert.equal(m.status, 'completed');
    const done = await listUntil(p.temporal, `AutoVibeProject = '${projectId}' AND AutoVibeStatus = 'completed' AND WorkflowType = 'machineRun'`, (runs) =>
      runs.some((r) => r.workflowId === id),
    );
    assert.deepEqual(
      done.map((r) => r.workflowId),
      [id],
    );
    assert.equal((await listUntil(p.temporal, `AutoVibeProject = '${projectId}' AND AutoVibeStatus = 'running'`, () => true)).length, 0);

    const described = await p.temporal.workflow.getHandle(id).describe();
    assert.match((await described.staticSummary()) ?? '', new RegExp(`^machine shell on local · project ${projectId}`));
    assert.match((await described.staticDetails()) ?? '', new RegExp(`\\*\\*machine\\*\\*: ${id}`));
  });

  it('labels a pipeline and the machines it starts, with their statuses', async () => {
    const projectId = await projectWithBudget(p, '2.00');
    const start = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 'a', type: 'shell', command: 'true', dependsOn: [] }] });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    await waitFor(async () => (await p.api('GET', `/v1/pipelines/${start.body.id}`)).body.status === 'completed', 'pipeline to complete');
    const runs = await listUntil(p.temporal, `AutoVibeProject = '${projectId}' AND AutoVibeStatus = 'completed'`, (rs) => rs.length >= 2);
    assert.deepEqual(runs.map((r) => r.type).sort(), ['machineRun', 'pipeline']);
    const child = runs.find((r) => r.type === 'machineRun')!;
    assert.equal(child.typedSearchAttributes.get(SEARCH_ATTRIBUTES.machineType), 'shell');

    // The labelled runs (status upserts, labelled children) replay against today's workflow code.
    for (const r of runs) {
      const history = await p.temporal.workflow.getHandle(r.workflowId).fetchHistory();
      assert.ok(
        history.events?.some((e) => e.upsertWorkflowSearchAttributesEventAttributes),
        `${r.type} upserted its status`,
      );
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, r.workflowId);
    }
  });
});
