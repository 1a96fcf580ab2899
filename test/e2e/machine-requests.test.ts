import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';

/**
 * "Start a machine" is one path (store/machine-requests.ts) for every entry point: a machine of a
 * direct request, of an objective and of a pipeline step each gets its placement under the lock,
 * its `machine.requested` audit record and the project's limit policy in its workflow's input.
 */
describe('machine requests: one path for REST, objectives and pipelines', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'machine-requests' });
  });
  after(async () => {
    await p?.stop();
  });

  /** The input the machine's workflow was started with, from its Temporal history. */
  async function startInput(machineId: string): Promise<any> {
    const history = await p.temporal.workflow.getHandle(machineId).fetchHistory();
    const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    return JSON.parse(Buffer.from(payload.data!).toString('utf8'));
  }

  it('audits, places and gives the limit policy to direct, objective and pipeline machines alike', async () => {
    const projectId = await projectWithBudget(p, '10.00');
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/limit-policy`, { policy: 'pause', pauseMinutes: 7 })).status, 200);

    const direct = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'true', cache: false, limits: { money: '0.05', minutes: 2 } });
    assert.equal(direct.status, 202, JSON.stringify(direct.body));
    const objective = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'one', command: 'true' });
    assert.equal(objective.status, 201, JSON.stringify(objective.body));
    const pipeline = await p.api('POST', '/v1/pipelines', { projectId, steps: [{ id: 's', type: 'shell', command: 'true', cache: false }] });
    assert.equal(pipeline.status, 202, JSON.stringify(pipeline.body));

    const objectiveMachine = await waitFor(async () => (await p.api('GET', `/v1/objectives/${objective.body.id}`)).body.machines?.[0], 'objective machine');
    const stepMachine = await waitFor(async () => (await p.api('GET', `/v1/pipelines/${pipeline.body.id}`)).body.steps[0].machineId, 'step machine');
    const cases: Array<[string, string]> = [
      [direct.body.id, 'user:admin'],
      [typeof objectiveMachine === 'string' ? objectiveMachine : objectiveMachine.id, `objective:${objective.body.id}`],
      [stepMachine, `pipeline:${pipeline.body.id}`],
    ];
    for (const [machineId, actor] of cases) {
      const requested = await p.db('audit_log').where({ action: 'machine.requested', subject_id: machineId });
      assert.equal(requested.length, 1, `${machineId}: one machine.requested record`);
      assert.equal(requested[0].actor, actor);
      const details = typeof requested[0].details === 'string' ? JSON.parse(requested[0].details) : requested[0].details;
      assert.equal(details.placement.provider, 'local', JSON.stringify(details));
      await waitFor(async () => (await p.api('GET', `/v1/machines/${machineId}`)).body.status === 'completed', `${machineId} completed`);
      assert.deepEqual((await startInput(machineId)).limitPolicy, { policy: 'pause', pauseMinutes: 7 }, `${machineId}: the project's limit policy`);
    }
  });
});
