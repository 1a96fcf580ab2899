/** A project's return on spend (README "ROI and feedback"). */
import { z } from 'zod';
import { pearson, perUnit, round4, shareOf, unitsToNumber } from '../domain/roi.js';
import { divRound, formatAmount, roundToMinor } from '../domain/money.js';
import { ratingsOfProject } from '../store/feedback.js';
import { checkRunsSince, objectivesCompletedSince, spendByMachine, workItemsSince } from '../store/roi.js';
import type { ServiceContext } from './context.js';
import { requireProject } from './projects.js';
import { classifyTask } from './routing.js';

export const roiQuery = z.strictObject({
  days: z.coerce.number().int('must be a whole number of days').min(1, 'must be from 1 to 365').max(365, 'must be from 1 to 365').default(30),
});

const DAY_MS = 86_400_000;

/**
 * Over the last `days`: spend, objectives completed per unit of currency, bug-fix efficiency,
 * quality from completion checks, feedback, and the correlation of machines' spend with their ratings.
 */
export async function projectRoi(ctx: ServiceContext, projectId: string, input: z.input<typeof roiQuery>) {
  const { days } = roiQuery.parse(input);
  const project = await requireProject(ctx, projectId);
  const { db } = ctx;
  const currency = project.currency;
  const since = new Date(Date.now() - days * DAY_MS);
  const money = (units: bigint) => formatAmount(units, currency);
  const perItem = (units: bigint, n: number) => (n === 0 ? null : money(roundToMinor(divRound(units, BigInt(n), 'half-even'), currency, 'half-even')));

  const spendOf = await spendByMachine(db, project.id, since);
  const spend = [...spendOf.values()].reduce((a, b) => a + b, 0n);
  const completed = await objectivesCompletedSince(db, project.id, since);

  const bugfixes = (await workItemsSince(db, project.id, since)).filter((w) => classifyTask(w.text).class === 'bugfix');
  const bugfixDone = bugfixes.filter((w) => w.completed).length;
  const bugfixSpend = bugfixes.flatMap((w) => w.machineIds).reduce((a, id) => a + (spendOf.get(id) ?? 0n), 0n);

  const runs = await checkRunsSince(db, project.id, since);
  const byObjective = new Map<string, { first: boolean; last: boolean }>();
  for (const r of runs) {
    const seen = byObjective.get(r.objectiveId);
    byObjective.set(r.objectiveId, { first: seen ? seen.first : r.passed, last: r.passed });
  }
  const checked = [...byObjective.values()];
  const firstPassed = checked.filter((c) => c.first).length;
  const lastPassed = checked.filter((c) => c.last).length;
  const firstPassRate = shareOf(firstPassed, checked.length);
  const lastPassRate = shareOf(lastPassed, checked.length);

  const ratings = await ratingsOfProject(db, project.id, since);
  const feedbackCount = ratings.reduce((a, r) => a + r.count, 0);
  const ratingSum = ratings.reduce((a, r) => a + r.sum, 0);

  return {
    projectId: project.id,
    currency,
    days,
    since: since.toISOString(),
    spend: money(spend),
    objectives: { completed, perUnit: perUnit(completed, spend), spendPerCompleted: perItem(spend, completed) },
    bugfix: {
      items: bugfixes.length,
      completed: bugfixDone,
      completedShare: shareOf(bugfixDone, bugfixes.length),
      spend: money(bugfixSpend),
      spendPerCompleted: perItem(bugfixSpend, bugfixDone),
    },
    checks: {
      runs: runs.length,
      passed: runs.filter((r) => r.passed).length,
      passRate: shareOf(runs.filter((r) => r.passed).length, runs.length),
      objectives: checked.length,
      firstPassRate,
      lastPassRate,
      delta: shareOf(lastPassed - firstPassed, checked.length),
    },
    feedback: { count: feedbackCount, machines: ratings.length, meanRating: feedbackCount === 0 ? null : round4(ratingSum / feedbackCount) },
    spendRatingCorrelation: pearson(
      ratings.map((r) => unitsToNumber(spendOf.get(r.machineId) ?? 0n)),
      ratings.map((r) => r.sum / r.count),
    ),
  };
}
