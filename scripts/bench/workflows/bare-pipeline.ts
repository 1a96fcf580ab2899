import { ApplicationFailure, proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../../../activities/index.js';

/**
 * The baseline of the pipeline-throughput benchmark: a bare Temporal workflow that runs the same
 * activities a pipeline step's machine runs for its work (provision, run, checkpoint, terminate,
 * and with `ledger` also reserve and settle), in chains, with nothing around them: no API call,
 * no machine or step rows, no status marks, no cache lookup, no child workflow.
 */
export interface BarePipelineInput {
  runId: string;
  projectId: string;
  baseCheckpointId: string;
  /** Independent chains run side by side; each is `length` steps long. */
  chains: number;
  length: number;
  command: string;
  heartbeatTimeoutSeconds: number;
  /** Reserve each step's money first and settle it after, like a machine does. */
  ledger: { money: string; hourlyPrice: string } | null;
}

const quick = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } });

export async function barePipeline(input: BarePipelineInput): Promise<{ steps: number }> {
  const { runCommand } = proxyActivities<Activities>({
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: input.heartbeatTimeoutSeconds * 1000,
    retry: { maximumAttempts: 3 },
  });
  let steps = 0;
  const chain = async (c: number) => {
    let from = input.baseCheckpointId;
    for (let k = 0; k < input.length; k++) {
      const machineId = `bare-${input.runId}-${c}-${k}`;
      const ids = { machineId, projectId: input.projectId };
      const startedAt = Date.now();
      if (input.ledger) {
        const r = await quick.reserveMachineBudget({ ...ids, amount: input.ledger.money });
        if (!r.ok) throw ApplicationFailure.nonRetryable(r.message);
      }
      const sandbox = await quick.provisionSandbox({ ...ids, checkpointId: from });
      const result = await runCommand({
        ...ids,
        command: input.command,
        baseCommit: sandbox.commit,
        deadline: Date.now() + 60_000,
        deadlineReason: 'time limit',
      });
      if (result.exitCode !== 0) throw ApplicationFailure.nonRetryable(`step ${c}/${k} exited ${result.exitCode}: ${result.outputTail}`);
      const cp = await quick.createCheckpoint({
        ...ids,
        checkpointId: `checkpoint-${uuid4()}`,
        parentCheckpointId: from,
        kind: 'final',
        trigger: 'end',
        at: new Date(Date.now()).toISOString(),
      });
      await quick.terminateSandbox(ids);
      if (input.ledger) {
        await quick.settleMachineCost({
          ...ids,
          runtimeMs: Date.now() - startedAt,
          hourlyPrice: input.ledger.hourlyPrice,
          priceCurrency: 'USD',
          profile: 'lightweight',
        });
      }
      from = cp.checkpointId;
      steps += 1;
    }
  };
  await Promise.all(Array.from({ length: input.chains }, (_, c) => chain(c)));
  return { steps };
}
