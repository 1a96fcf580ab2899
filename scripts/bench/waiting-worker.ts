/**
 * The worker process of the waiting-workflows benchmark: the platform's real workflow bundle
 * (machineRun as it is), sized by the platform's own worker options (workerTuning from config),
 * with stand-in activities so no database or sandbox is needed. Each machine's run activity is
 * completed asynchronously (CompleteAsyncError): it stays "running" at Temporal, as a real
 * sandbox command does for hours, and the workflow waits for it, holding nothing in an activity
 * slot. So what this process holds is the machine workflows themselves.
 *
 * Config from the environment (loadConfig: TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE,
 * AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS, ...) and WORKFLOW_BUNDLE (the bundle's code file).
 * Sends {status} over IPC every second: rss, heap, cached workflows, runs waiting.
 */
import { CompleteAsyncError } from '@temporalio/activity';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../../config/index.js';
import { temporalConnectionOptions } from '../../config/temporal.js';
import { workerTuning } from '../../workers/worker.js';

async function main() {
  const config = loadConfig(process.env);
  Runtime.install({ logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) } });
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  let waiting = 0;
  const activities = {
    lookupMachineCache: async () => ({ hit: false }),
    reserveMachineBudget: async (input: { machineId: string; amount?: string }) => ({
      ok: true,
      reservationId: `reservation-${input.machineId}`,
      amount: input.amount ?? '1.00',
      currency: 'USD',
    }),
    markMachine: async () => undefined,
    provisionSandbox: async (input: { machineId: string }) => ({
      workspace: `/nonexistent/${input.machineId}`,
      instanceRef: `stand-in:${input.machineId}`,
      commit: '0'.repeat(40),
      provider: 'local',
      instance: { provider: 'local', instanceRef: `stand-in:${input.machineId}`, machineId: input.machineId },
      warm: false,
    }),
    runCommand: async () => {
      waiting += 1;
      throw new CompleteAsyncError();
    },
  };
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    workflowBundle: { codePath: process.env.WORKFLOW_BUNDLE! },
    activities,
    ...workerTuning(config),
  });
  const running = worker.run();
  const report = () => {
    const m = process.memoryUsage();
    process.send!({ status: { rss: m.rss, heapUsed: m.heapUsed, cached: worker.getStatus().numCachedWorkflows, waiting } });
  };
  const timer = setInterval(report, 1000);
  report();
  process.on('message', (msg: { stop?: boolean }) => {
    if (msg.stop) {
      clearInterval(timer);
      worker.shutdown();
    }
  });
  await running;
  await connection.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
