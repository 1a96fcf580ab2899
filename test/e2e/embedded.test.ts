import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

describe('embedded PGlite (the npm start default)', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'embedded', embedded: true });
  });
  after(async () => {
    await p?.stop();
  });

  it('serves the api smoke path: readiness, project, budget, a machine, its checkpoint and cost', async () => {
    assert.equal(p.databaseUrl, undefined);
    const health = await p.api('GET', '/readyz', undefined, { key: null });
    assert.deepEqual(health.body, { api: 'ok', db: 'ok', temporal: 'ok' });
    const projectId = await projectWithBudget(p, '1.00');
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo embedded > e.txt' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed');
    assert.equal((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/e.txt`)).body, 'embedded\n');
    const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body;
    assert.equal(costs.items.length, 1);
    assert.equal(costs.budget.reserved, '0.00');
  });
});
