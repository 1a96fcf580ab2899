import assert from 'node:assert/strict';
import { accuracyByType, nearestRank, predictRun, type PastRun } from '../../domain/prediction.js';

const run = (cost: number, durationSeconds: number, operationClass: string | null = null): PastRun => ({ cost: BigInt(cost), durationSeconds, operationClass });

describe('cost prediction', () => {
  it('takes quantiles by nearest rank: the ⌈q·n⌉-th smallest value', () => {
    const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(nearestRank(ten, 0.1), 1);
    assert.equal(nearestRank(ten, 0.5), 5);
    assert.equal(nearestRank(ten, 0.9), 9);
    assert.equal(nearestRank([4, 8, 15, 16, 23], 0.5), 15);
    assert.equal(nearestRank([4, 8, 15, 16, 23], 0.9), 23);
    assert.equal(nearestRank([4, 8, 15, 16, 23], 0.1), 4);
  });

  it('predicts the median and the 80 % interval of the project runs, in any order', () => {
    const runs = [run(500, 50), run(100, 10), run(300, 30), run(200, 20), run(400, 40), run(900, 90)];
    const v = predictRun({ projectRuns: runs, deploymentRuns: [], operationClass: null });
    assert.deepEqual(v, {
      ok: true,
      prediction: {
        cost: { p10: 100n, p50: 300n, p90: 900n },
        durationSeconds: { p10: 10, p50: 30, p90: 90 },
        basis: 6,
        scope: 'project',
        operationClass: null,
      },
    });
  });

  it('refuses to predict from fewer than five runs, saying how many there were', () => {
    const v = predictRun({ projectRuns: [run(1, 1)], deploymentRuns: [run(1, 1), run(2, 2), run(3, 3), run(4, 4)], operationClass: null });
    assert.deepEqual(v, { ok: false, reason: 'fewer than 5 settled runs of this type (project: 1, deployment: 4)' });
  });

  it('falls back from the project to the deployment, and narrows to the class when it can', () => {
    const deployment = [run(10, 1, 'tests'), run(20, 2, 'tests'), run(30, 3, 'tests'), run(40, 4, 'tests'), run(50, 5, 'tests'), run(1000, 100, 'bugfix')];
    const few = predictRun({ projectRuns: [run(7, 7)], deploymentRuns: deployment, operationClass: 'tests' });
    assert.ok(few.ok);
    assert.deepEqual([few.prediction.scope, few.prediction.operationClass, few.prediction.basis], ['deployment', 'tests', 5]);
    assert.deepEqual(few.prediction.cost, { p10: 10n, p50: 30n, p90: 50n });
    const otherClass = predictRun({ projectRuns: [], deploymentRuns: deployment, operationClass: 'bugfix' });
    assert.ok(otherClass.ok);
    assert.deepEqual([otherClass.prediction.scope, otherClass.prediction.operationClass, otherClass.prediction.basis], ['deployment', null, 6]);
    const project = predictRun({ projectRuns: deployment, deploymentRuns: [], operationClass: 'bugfix' });
    assert.ok(project.ok);
    assert.deepEqual([project.prediction.scope, project.prediction.operationClass], ['project', null]);
  });

  it('scores accuracy per type: mean absolute error of the median and interval coverage', () => {
    const predicted = { p10: 100n, p50: 200n, p90: 300n, durationP10: 10, durationP50: 20, durationP90: 30 };
    const report = accuracyByType([
      { machineType: 'shell', currency: 'USD', predicted, actual: { cost: 250n, durationSeconds: 20 } },
      { machineType: 'shell', currency: 'USD', predicted, actual: { cost: 400n, durationSeconds: 35 } },
      { machineType: 'aider', currency: 'USD', predicted, actual: { cost: 100n, durationSeconds: 10 } },
    ]);
    assert.deepEqual(report, [
      { machineType: 'aider', currency: 'USD', runs: 1, costMae: 100n, durationMaeSeconds: 10, costCoverage: 1, durationCoverage: 1 },
      // |250−200| + |400−200| = 250 over 2 runs = 125; durations 0 + 15 → 7.5; one of two inside.
      { machineType: 'shell', currency: 'USD', runs: 2, costMae: 125n, durationMaeSeconds: 7.5, costCoverage: 0.5, durationCoverage: 0.5 },
    ]);
  });
});
