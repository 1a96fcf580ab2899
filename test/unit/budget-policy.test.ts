import assert from 'node:assert/strict';
import { allocatedCostCenterId, budgetProjectId, spendScopes } from '../../domain/budget.js';

describe('domain/budget policy: which budgets a spend touches', function () {
  const center = { id: 'cost-center-1', name: 'Ops', department: 'eng' };

  it('a shell machine without a cost center touches its project budget only', function () {
    const scopes = spendScopes({ projectId: 'p', type: null, costCenter: null });
    assert.deepEqual(
      scopes.map((s) => [s.scopeType, s.scopeId]),
      [['project', 'p']],
    );
    assert.equal(scopes[0]!.label('monthly'), 'monthly budget');
  });

  it('a typed machine of a cost center touches project, type (with its default), cost center and department, in that order', function () {
    const scopes = spendScopes({ projectId: 'p', type: 'claude-code', typeDailyBudget: '20.00', costCenter: center });
    assert.deepEqual(
      scopes.map((s) => [s.scopeType, s.scopeId, s.label('weekly')]),
      [
        ['project', 'p', 'weekly budget'],
        ['machine-type', 'p:claude-code', 'claude-code daily budget'],
        ['cost-center', 'cost-center-1', 'cost center Ops weekly budget'],
        ['department', 'eng', 'department eng weekly budget'],
      ],
    );
    assert.deepEqual(scopes[1]!.default, { period: 'daily', limit: '20.00', currency: 'USD' });
    assert.equal(scopes[0]!.default, undefined);
  });

  it('a type without a daily default has no default budget', function () {
    const [, type] = spendScopes({ projectId: 'p', type: 'claude-code', typeDailyBudget: null, costCenter: null });
    assert.equal(type!.default, undefined);
  });

  it("allocates a spend to the machine's cost center, else its project's", function () {
    assert.equal(allocatedCostCenterId({ costCenterId: 'a' }, { costCenterId: 'b' }), 'a');
    assert.equal(allocatedCostCenterId({ costCenterId: null }, { costCenterId: 'b' }), 'b');
    assert.equal(allocatedCostCenterId(null, { costCenterId: null }), null);
  });

  it('names the project a budget belongs to from its scope: none for cost centers and departments', function () {
    assert.equal(budgetProjectId('project', 'p'), 'p');
    assert.equal(budgetProjectId('machine-type', 'p:claude-code'), 'p');
    assert.equal(budgetProjectId('cost-center', 'cost-center-1'), null);
    assert.equal(budgetProjectId('department', 'eng'), null);
  });
});
