import assert from 'node:assert/strict';
import { projectWithBudget, startTestPlatform, type TestPlatform } from '../support/platform.js';

/**
 * A change and its audit record commit together: when the audit record cannot be written, the
 * change is not made either (the audit log never misses a change that happened).
 */
describe('api: changes and their audit records are one transaction', function () {
  this.timeout(120_000);
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({ label: 'audited-writes' });
  });
  after(async () => {
    await p?.db.raw('DROP TRIGGER IF EXISTS refuse_audit ON audit_log').catch(() => undefined);
    await p?.stop();
  });

  /** Makes the audit log refuse records of `action` (as a full disk or a failing constraint would). */
  async function refuseAudit(action: string | null) {
    await p.db.raw('DROP TRIGGER IF EXISTS refuse_audit ON audit_log');
    if (!action) return;
    await p.db.raw(
      `CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.action = TG_ARGV[0] THEN RAISE EXCEPTION 'audit refused in this test'; END IF; RETURN NEW; END $$`,
    );
    await p.db.raw(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit('${action}')`);
  }

  it('PUT /v1/projects/:id/scheduling changes nothing when its audit record fails', async () => {
    const projectId = await projectWithBudget(p);
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/scheduling`, { maxConcurrentMachines: 2 })).status, 200);
    await refuseAudit('project.scheduling_set');
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/scheduling`, { maxConcurrentMachines: 7 })).status, 500);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body.maxConcurrentMachines, 2);
    await refuseAudit(null);
    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/scheduling`, { maxConcurrentMachines: 7 })).status, 200);
    assert.equal((await p.api('GET', `/v1/projects/${projectId}/scheduling`)).body.maxConcurrentMachines, 7);
  });

  it('PATCH /v1/objectives/:id changes nothing when its audit record fails', async () => {
    const projectId = await projectWithBudget(p);
    const created = await p.api('POST', `/v1/projects/${projectId}/objectives`, { title: 'before', command: 'true' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    await refuseAudit('objective.updated');
    assert.equal((await p.api('PATCH', `/v1/objectives/${id}`, { title: 'after' })).status, 500);
    assert.equal((await p.api('GET', `/v1/objectives/${id}`)).body.title, 'before');
    await refuseAudit(null);
    const patched = await p.api('PATCH', `/v1/objectives/${id}`, { title: 'after' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal((await p.api('GET', `/v1/objectives/${id}`)).body.title, 'after');
  });
});
