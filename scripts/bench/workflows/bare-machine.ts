import { proxyActivities } from '@temporalio/workflow';

/**
 * The baseline of the machine-overhead benchmark: a bare Temporal workflow with one activity that
 * does what a machine needs to run its command (provision the sandbox from a checkpoint, run the
 * command, tear the sandbox down) with the platform's own activity code, and nothing around it:
 * no API call, no machine row, no reservation, no status marks, no checkpoint, no settlement.
 */
export interface BareMachineInput {
  machineId: string;
  projectId: string;
  checkpointId: string;
  command: string;
  /** A file of the workspace whose content the activity returns after the command. */
  readFile: string;
}

export interface BareMachineActivities {
  bareMachineRun(input: BareMachineInput): Promise<{ exitCode: number | null; file: string | null }>;
}

const { bareMachineRun } = proxyActivities<BareMachineActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 3 } });

export async function bareMachine(input: BareMachineInput): Promise<{ exitCode: number | null; file: string | null }> {
  return bareMachineRun(input);
}
