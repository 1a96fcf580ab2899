import assert from 'node:assert/strict';
import { grantProblem, PERMISSIONS, ROLE_PERMISSIONS, roleAllows, type Principal } from '../../domain/permissions.js';

const principal = (role: Principal['role'], projectIds: string[] | null): Principal => ({ userId: 'u', name: 'n', role, apiKeyId: 'k', projectIds });

describe('permissions (domain)', () => {
  it('nests the roles: viewer ⊂ operator ⊂ owner ⊂ admin, and admin holds every permission', () => {
    const chain = ['viewer', 'operator', 'owner', 'admin'] as const;
    for (let i = 1; i < chain.length; i++) {
      for (const p of ROLE_PERMISSIONS[chain[i - 1]!]) assert.ok(roleAllows(chain[i]!, p), `${chain[i]} lacks ${p} that ${chain[i - 1]} has`);
    }
    assert.deepEqual([...ROLE_PERMISSIONS.admin].sort(), [...PERMISSIONS].sort());
  });

  it('keeps money apart from running work: an operator runs machines but raises no budget and changes no payment method', () => {
    assert.ok(roleAllows('operator', 'machines.run'));
    for (const p of ['budgets.write', 'payment-methods.write', 'topups.create', 'keys.manage', 'credits.grant', 'payments.approve'] as const) {
      assert.equal(roleAllows('operator', p), false, p);
    }
    assert.ok(roleAllows('owner', 'budgets.write') && roleAllows('owner', 'payment-methods.write'));
    assert.equal(roleAllows('owner', 'credits.grant'), false);
    assert.deepEqual([...ROLE_PERMISSIONS.machine].sort(), ['batch.send', 'checkpoints.read', 'projects.read']);
  });

  it('never lets a granter hand out more than it holds', () => {
    const admin = principal('admin', null);
    const owner = principal('owner', ['p1', 'p2']);
    assert.equal(grantProblem(admin, { role: 'admin', projectIds: null }), null);
    assert.match(grantProblem(admin, { role: 'admin', projectIds: ['p1'] })!, /deployment-wide/);
    assert.match(grantProblem(admin, { role: 'machine', projectIds: ['p1', 'p2'] })!, /exactly one project/);
    assert.equal(grantProblem(owner, { role: 'operator', projectIds: ['p1'] }), null);
    assert.match(grantProblem(owner, { role: 'admin', projectIds: null })!, /deployment-wide|may not/);
    assert.match(grantProblem(owner, { role: 'operator', projectIds: null })!, /bound to projects/);
    assert.match(grantProblem(owner, { role: 'viewer', projectIds: ['p3'] })!, /not projects of this key: p3/);
    assert.match(grantProblem(principal('operator', ['p1']), { role: 'viewer', projectIds: ['p1'] })!, /may not manage keys/);
    assert.equal(grantProblem(principal('owner', null), { role: 'owner', projectIds: null }), null);
  });
});
