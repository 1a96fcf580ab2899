/** User feedback on machines (README "ROI and feedback"). */
import { z } from 'zod';
import { listMachineFeedback, putMachineFeedback } from '../store/feedback.js';
import { actorOfCaller, type Caller, type ServiceContext } from './context.js';
import { requireMachine } from './machines.js';
import { learnFromFeedback } from './refinement.js';

export const feedbackBody = z.strictObject({
  rating: z
    .number({ error: 'must be an integer from 1 (poor) to 5 (excellent)' })
    .int('must be a whole number from 1 to 5')
    .min(1, 'must be from 1 to 5')
    .max(5, 'must be from 1 to 5'),
  comment: z.string().max(2000, 'must be at most 2000 characters').optional(),
});

/** Rates a machine for the calling key; a repeat replaces the key's earlier feedback. `created`: the first one of this key. */
export async function giveMachineFeedback(ctx: ServiceContext, caller: Caller, machineId: string, input: z.input<typeof feedbackBody>) {
  const body = feedbackBody.parse(input);
  const machine = await requireMachine(ctx, machineId);
  const { feedback, replaced } = await putMachineFeedback(ctx.db, {
    machineId: machine.id,
    projectId: machine.projectId,
    apiKeyId: caller.principal.apiKeyId,
    rating: body.rating,
    comment: body.comment ?? null,
    actor: actorOfCaller(caller),
  });
  // A low rating teaches prompt refinement for the machine's class and type (README "Prompt refinement").
  await learnFromFeedback(ctx.db, machine.id, { rating: body.rating, comment: body.comment ?? null });
  return { feedback, created: !replaced };
}

/** Every feedback given on the machine (one per key). */
export async function machineFeedback(ctx: ServiceContext, machineId: string) {
  const machine = await requireMachine(ctx, machineId);
  return listMachineFeedback(ctx.db, machine.id);
}
