import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

/** Placement through the REST api, on a platform whose only available provider is `local`. */
describe('placement policy through the REST api', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  let projectId: string;

  before(async () => {
    // A socket that does not exist: the container provider is configured but unavailable.
    p = await startTestPlatform({ label: 'placement', env: { AUTOVIBE_CONTAINER_SOCKET: '/nonexistent/docker.sock' } });
    projectId = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
  });

  it('lists providers with the reason each unavailable one cannot run', async () => {
    const { status, body } = await p.api('GET', '/v1/providers');
    assert.equal(status, 200);
    const byId = Object.fromEntries(body.items.map((i: any) => [i.id, i]));
    assert.deepEqual(Object.keys(byId).sort(), ['aws-ec2', 'aws-ecs', 'container', 'kubernetes', 'local']);
    assert.equal(byId.local.available, true);
    assert.equal(byId.container.available, false);
    assert.match(byId.container.reason, /\/nonexistent\/docker\.sock does not answer/);
  });

  it('shows the defaults, validates rules naming the field, and stores a project override', async () => {
    const empty = (await p.api('GET', `/v1/projects/${projectId}/placement`)).body;
    assert.deepEqual(empty.rules, []);
    assert.deepEqual(
      empty.defaults.map((r: any) => r.name),
      ['complex work on VMs', 'simple tasks in containers'],
    );

    const bad = await p.api('PUT', `/v1/projects/${projectId}/placement`, { rules: [{ name: 'x', providers: ['mainframe'] }] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /rules\.0\.providers\.0: must be one of/);
    const noProviders = await p.api('PUT', `/v1/projects/${projectId}/placement`, { rules: [{ name: 'x', providers: [] }] });
    assert.equal(noProviders.status, 400);
    assert.match(noProviders.body.error.message, /rules\.0\.providers: needs at least one provider/);

    const rules = [{ name: 'shell on fargate', match: { types: ['shell'] }, providers: ['aws-ecs', 'local'], spot: true }];
    const put = await p.api('PUT', `/v1/projects/${projectId}/placement`, { rules });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const got = (await p.api('GET', `/v1/projects/${projectId}/placement`)).body;
    assert.equal(got.rules.length, 1);
    assert.equal(got.rules[0].name, 'shell on fargate');
    assert.deepEqual(got.rules[0].providers, ['aws-ecs', 'local']);
    assert.equal(got.updatedBy, 'user:admin');
    const audit = (await p.api('GET', `/v1/audit?action=project.placement_set&subjectId=${projectId}`)).body.items;
    assert.equal(audit.length, 1);
  });

  it("places a machine by the project's rule, skipping what is unavailable, and says so", async () => {
    const start = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command: 'echo placed > p.txt' });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.provider, 'local');
    assert.equal(m.spot, false, 'local has no spot capacity');
    assert.equal(m.instanceRef, `local:${m.id}`);
    const requested = m.events.find((e: any) => e.action === 'machine.requested');
    assert.equal(requested.details.placement.rule, 'shell on fargate');
    assert.deepEqual(
      requested.details.placement.skipped.map((s: any) => s.provider),
      ['aws-ecs'],
    );
  });

  it('refuses an explicit provider that is unavailable with 422 and why; an explicit local runs', async () => {
    const refused = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'container', command: 'true' });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /^provider: provider container is unavailable: .*does not answer/);
    assert.equal(refused.body.error.details.field, 'provider');
    const unknown = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'mainframe', command: 'true' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /provider: must be one of: local, container/);
    const local = await p.api('POST', '/v1/machines', { projectId, type: 'shell', provider: 'local', profile: 'lightweight', command: 'true' });
    assert.equal(local.status, 202);
    const m = await waitForMachine(p, local.body.id);
    assert.equal(m.provider, 'local');
    assert.equal(m.profile, 'lightweight');
  });
});
