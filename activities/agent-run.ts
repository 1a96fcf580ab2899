import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ADAPTERS } from '../domain/agents/index.js';
import { machineTypeSpec, priceOf, tokenCost, type MachineTypeId, type ModelPrice } from '../domain/machine-types.js';
import { reserveCall } from '../domain/metering.js';
import { STOP_REASONS } from '../domain/machines.js';
import { formatAmount, fromNumeric, parseAmount, runtimeCost } from '../domain/money.js';
import { convert, FxUnavailableError, type Rate } from '../domain/fx.js';
import { createFxService } from '../fx/service.js';
import { artifactContent, saveArtifact } from '../store/artifacts.js';
import { CONVERSATION_ARTIFACT } from '../domain/artifacts.js';
import { idFromName } from '../store/ids.js';
import { appendAudit } from '../store/audit.js';
import { costTotals, recordCost } from '../store/costs.js';
import { getMachine, updateMachine } from '../store/machines.js';
import { getProject } from '../store/projects.js';
import { allocatedCostCenterId } from '../domain/budget.js';
import { providerOf } from './compute/index.js';
import { CONTAINER_USER } from './compute/container.js';
import { killSandboxes } from './compute/local-sandbox.js';
import type { Instance, Mount, ProviderId } from './compute/provider.js';
import type { ActivityDeps } from './deps.js';
import { checkpointWorkspace, recordHandover } from './machine-run.js';
import { AGENT_HOME, agentDirs, agentMounts, FORWARDER_TARGET, SANDBOX_NODE, SOCKET_DIR_TARGET } from './machines/agent-mounts.js';
import { openMachineNetwork } from './machines/machine-network.js';
import { checkpointFileRoute } from './machines/checkpoint-files.js';
import { parseRateLimitHeaders, rateLimitProvider } from '../domain/alerts.js';
import { saveRateLimitSample } from '../store/alerts.js';
import { resourceSampler } from './machines/resource-samples.js';
import { startMeteringProxy, type CompletedCall, type Refusal } from './machines/metering-proxy.js';
import { superviseExec, superviseSandbox, type SupervisedResult } from './machines/supervise.js';
import { describeTurn, openLogSink } from './machines/log-sink.js';
import { latestCheckpointOfMachine } from '../store/checkpoints.js';
import { withLocalRepo } from '../store/shared-storage.js';
import { refinedPromptOf } from '../services/refinement.js';

const SANDBOX_PORT = 8080;
/** Warnings recorded on the machine before its money limit is reached. */
const WARN_AT = [75, 90] as const;

export interface RunAgentInput {
  machineId: string;
  projectId: string;
  type: Exclude<MachineTypeId, 'shell'>;
  prompt: string;
  model: string | null;
  /** The checkpoint the run starts from; in-run checkpoints chain from it. */
  parentCheckpointId: string;
  deadline: number;
  deadlineReason: string;
  /** When the machine's compute started (ms since epoch, shifted by time spent paused): compute cost counts from here. */
  computeStartedAt: number;
  /** Which run of the machine this is (0, then 1, 2… after each extension of a paused machine). */
  segment?: number;
  moneyLimit: string;
  apiCallLimit: number | null;
  hourlyPrice: string;
  /** Checkpoint the live workspace this often (when files changed). */
  checkpointEveryMinutes: number;
  /** The instance provisioned for the machine; without it, the machine row's (else the local sandbox). */
  instance?: Instance;
}

export interface RunAgentResult {
  exitCode: number | null;
  stopReason: string | null;
  outputTail: string;
  lastCheckpointId: string;
  checkpoints: string[];
  usage: { inputTokens: number; outputTokens: number; apiCalls: number };
  apiCost: string;
  /** The container vanished under the agent: the machine re-provisions and goes on from the last checkpoint. */
  interrupted?: boolean;
  /** Stopped at a resource limit of its profile (`stopReason` names it): the machine fails. */
  resourceLimit?: true;
  /** Its worker is shutting down: the machine re-provisions elsewhere and the agent continues from `lastCheckpointId`. */
  handedOver?: true;
}

/** The run of a model-backed machine: the agent CLI in the sandbox, its model calls metered on the way out. */
export function createAgentRunActivities({ db, config, log, fx: givenFx, providers, temporal }: ActivityDeps) {
  const fx = givenFx ?? createFxService({ config, db, log });
  return {
    async runAgent(input: RunAgentInput): Promise<RunAgentResult> {
      const ctx = Context.current();
      const found = await getProject(db, input.projectId);
      const project = found && (await withLocalRepo(db, config, found));
      const machine = await getMachine(db, input.machineId);
      if (!project || !machine) throw ApplicationFailure.nonRetryable(`machine ${input.machineId} not found`, 'NotFoundError');
      const adapter = ADAPTERS[input.type];
      const spec = machineTypeSpec(input.type);
      const upstream = adapter.upstream(config.env);
      if (!upstream.ok) throw ApplicationFailure.nonRetryable(`${input.type} is unavailable: ${upstream.reason}`, 'InputError');
      const binary = path.join(config.toolsDir, adapter.binary);
      if (!fs.existsSync(binary)) {
        throw ApplicationFailure.nonRetryable(`${input.type} is unavailable: ${binary} is missing; install it with ${adapter.install}`, 'InputError');
      }
      const workspace = path.join(config.workspacesDir, input.machineId);
      const currency = project.currency;
      const moneyLimit = parseAmount(input.moneyLimit, currency);
      // Already in the project's currency (the reservation converted it); up to 18 decimals.
      const hourlyPrice = fromNumeric(input.hourlyPrice);
      // Token prices are in USD: convert them with one rate for the whole run, recorded on each event.
      let usdRate: Rate;
      try {
        usdRate = await fx.rate('USD', currency);
      } catch (e) {
        if (e instanceof FxUnavailableError) throw ApplicationFailure.nonRetryable(e.message, 'InputError');
        throw e;
      }
      const inProject = (usd: bigint, mode: 'up' | 'half-even') => (usdRate.from === usdRate.to ? usd : convert(usd, usdRate.ratio, currency, mode, 'ledger'));
      const costCenterId = allocatedCostCenterId(machine, project);
      const model = input.model ?? spec.defaultModel!;

      // An agent is not re-run blindly after its worker died: its model calls cost real money.
      // The run ends cleanly; its work so far goes into the final checkpoint.
      const spentBefore = (await costTotals(db, { machineId: input.machineId })).api ?? 0n;
      const usage = { inputTokens: machine.usage.inputTokens ?? 0, outputTokens: machine.usage.outputTokens ?? 0, apiCalls: machine.usage.apiCalls ?? 0 };
      // A container instance runs the CLI through the provider's exec; none (or local) means the local sandbox.
      const instance: Instance | null =
        input.instance ??
        (machine.provider !== 'local' && machine.instanceRef
          ? { provider: machine.provider as ProviderId, instanceRef: machine.instanceRef, machineId: machine.id, projectId: machine.projectId }
          : null);
      const onInstance = instance && instance.provider !== 'local' ? instance : null;
      if (ctx.info.attempt > 1) {
        if (onInstance) await providerOf(providers, onInstance.provider).reset?.(onInstance);
        else killSandboxes(input.machineId);
        return {
          exitCode: null,
          stopReason: STOP_REASONS.workerLost,
          outputTail: '',
          lastCheckpointId: (await lastCheckpointOf(input.machineId)) ?? input.parentCheckpointId,
          checkpoints: [],
          usage,
          apiCost: formatAmount(spentBefore, currency),
        };
      }

      const { homeDir, runDir } = agentDirs(config, input.machineId);
      const mounts = agentMounts(config, input.machineId);
      const artifactDir = path.join(config.artifactsDir, input.machineId);
      fs.mkdirSync(artifactDir, { recursive: true });
      // A routed machine in the refinement A/B's refined arm gets the instructions learned from failures.
      const given = await refinedPromptOf(db, input.machineId, input.prompt);
      const invocation = adapter.invocation({
        prompt: given.prompt,
        model,
        baseUrl: `http://127.0.0.1:${SANDBOX_PORT}`,
        // Mounted at its host path: venv scripts name their interpreter by absolute path.
        toolsDir: config.toolsDir,
        home: AGENT_HOME,
      });
      for (const [rel, content] of Object.entries(invocation.homeFiles)) {
        fs.mkdirSync(path.dirname(path.join(homeDir, rel)), { recursive: true });
        fs.writeFileSync(path.join(homeDir, rel), content);
      }
      // The working copy of the history; the database holds the artifact. A run after an extension
      // may be on another worker: it goes on from the stored history, not an empty file.
      const conversationFile = path.join(artifactDir, CONVERSATION_ARTIFACT);
      if (!fs.existsSync(conversationFile)) {
        const stored = await artifactContent(db, input.machineId, CONVERSATION_ARTIFACT);
        if (stored?.ok) fs.writeFileSync(conversationFile, stored.content);
      }
      // The CLI's output and a line per model call (its tool calls) go to the machine's log as they happen.
      const sink = await openLogSink(db, log, { machineId: input.machineId, limitBytes: config.machineLogBytes });

      let apiSpent = spentBefore;
      let inFlightWorstCase = 0n;
      let stopReason: string | null = null;
      const warned = new Set<number>();
      const checkpoints: string[] = [];
      let lastCheckpointId = input.parentCheckpointId;
      let checkpointChain = Promise.resolve();
      let lastDecile = 0;
      /** Checkpoints are taken one at a time, in order, and only when files changed since the last one. */
      const queueCheckpoint = (name: string, trigger: string) => {
        checkpointChain = checkpointChain.then(async () => {
          const id = idFromName('checkpoint', `${input.machineId}:${input.segment ?? 0}:${name}`);
          // Only when files changed since the last one: decided on the frozen copy, never on the live files.
          const made = await checkpointWorkspace(
            db,
            project,
            workspace,
            {
              checkpointId: id,
              machineId: input.machineId,
              parentCheckpointId: lastCheckpointId,
              kind: 'turn',
              trigger,
              at: new Date().toISOString(),
            },
            { config, log },
            { skipUnchanged: true },
          );
          if (!made) return;
          checkpoints.push(id);
          lastCheckpointId = id;
        });
        checkpointChain = checkpointChain.catch((err: Error) => log.warn({ err: err.message, machineId: input.machineId }, 'in-run checkpoint failed'));
      };
      const computeSoFar = () => runtimeCost(Math.max(0, Date.now() - input.computeStartedAt), hourlyPrice);

      /** What each admitted call reserved: charged in full when its response reports no usage. */
      const reserved = new Map<number, { worst: bigint; usd: bigint; price: ModelPrice }>();
      let refusals = 0;
      const proxy = await startMeteringProxy({
        socketPath: path.join(runDir, 'api.sock'),
        // A container's processes run unprivileged: the socket (0600) must be theirs to connect to.
        ...(onInstance?.provider === 'container' ? { socketOwner: CONTAINER_USER } : {}),
        upstream: upstream.url,
        dialect: spec.dialect!,
        headers: upstream.headers,
        local: checkpointFileRoute(db, { machineId: input.machineId, projectId: project.id }, config),
        admit(call) {
          if (input.apiCallLimit !== null && usage.apiCalls >= input.apiCallLimit) {
            stopReason ??= STOP_REASONS.apiCallLimit;
            return { ok: false, code: 'api_call_limit', reason: `${STOP_REASONS.apiCallLimit} (${input.apiCallLimit})` };
          }
          const r = reserveCall(input.type, config.modelPrices, call);
          if (!r.ok) return { ok: false, code: r.code, reason: r.reason };
          const worst = inProject(r.usd, 'up');
          const committed = apiSpent + inFlightWorstCase + computeSoFar();
          if (committed + worst > moneyLimit) {
            stopReason ??= STOP_REASONS.moneyLimit;
            return {
              ok: false,
              code: 'money_limit',
              reason: `${STOP_REASONS.moneyLimit}: this ${call.model} call could cost up to ${formatAmount(worst, currency)} ${currency}; ${formatAmount(committed, currency)} of the ${formatAmount(moneyLimit, currency)} ${currency} limit is spent or held`,
            };
          }
          usage.apiCalls += 1;
          inFlightWorstCase += worst;
          reserved.set(call.seq, { worst, usd: r.usd, price: r.price });
          return { ok: true };
        },
        async refused(refusal: Refusal) {
          refusals += 1;
          await appendAudit(db, {
            actor: 'system',
            action: 'machine.call_refused',
            subjectType: 'machine',
            subjectId: input.machineId,
            projectId: project.id,
            details: { ...refusal, charged: '0' },
            idempotencyKey: `machine:${input.machineId}:refused:${input.segment ?? 0}:${refusals}`,
          });
        },
        async completed(call: CompletedCall) {
          const held = reserved.get(call.seq)!;
          reserved.delete(call.seq);
          inFlightWorstCase -= held.worst;
          const u = call.usage ?? { model: call.model, inputTokens: 0, outputTokens: 0 };
          // Charged by the usage reported; an answer without usage at its worst case (the tokens
          // are unknown, the money is not); an error the provider answered (4xx/5xx) bills nothing there.
          const basis = call.usage ? 'usage' : call.answered && call.status >= 400 ? 'upstream error' : 'worst case';
          const usdCost =
            basis === 'usage' ? tokenCost(priceOf(config.modelPrices[input.type], u.model) ?? held.price, u) : basis === 'worst case' ? held.usd : 0n;
          const cost = inProject(usdCost, 'half-even');
          apiSpent += cost;
          usage.inputTokens += u.inputTokens;
          usage.outputTokens += u.outputTokens;
          fs.appendFileSync(
            conversationFile,
            JSON.stringify({
              seq: call.seq,
              at: call.startedAt,
              model: u.model,
              status: call.status,
              usage: u,
              request: call.requestBody,
              response: call.responseText,
            }) + '\n',
          );
          sink.write('agent', describeTurn({ seq: call.seq, model: u.model, status: call.status, usage: call.usage ?? null, responseText: call.responseText }));
          await recordCost(db, {
            idempotencyKey: `machine:${input.machineId}:api:${input.segment ?? 0}:${call.seq}`,
            projectId: project.id,
            machineId: input.machineId,
            category: 'api',
            amount: usdCost,
            currency: 'USD',
            projectAmount: cost,
            projectCurrency: currency,
            costCenterId,
            fx: usdRate.from === usdRate.to ? null : { rate: usdRate.rate, source: usdRate.source, asOf: usdRate.asOf },
            details: {
              model: u.model,
              inputTokens: u.inputTokens,
              outputTokens: u.outputTokens,
              ...(u.cachedInputTokens ? { cachedInputTokens: u.cachedInputTokens } : {}),
              ...(u.cacheWriteTokens ? { cacheWriteTokens: u.cacheWriteTokens } : {}),
              call: call.seq,
              type: input.type,
              status: call.status,
              charged: basis,
              reserved: formatAmount(held.usd, 'USD'),
            },
          });
          await updateMachine(db, input.machineId, { usage });
          // The provider's rate-limit state as it answered: the alert evaluator watches the latest per project and provider.
          const rateLimit = parseRateLimitHeaders(call.responseHeaders, new Date(call.endedAt));
          if (rateLimit) {
            await saveRateLimitSample(db, {
              ...rateLimit,
              projectId: project.id,
              provider: rateLimitProvider(upstream.url),
              machineId: input.machineId,
              at: new Date(call.endedAt),
            });
          }
          for (const pct of WARN_AT) {
            if (!warned.has(pct) && (apiSpent + computeSoFar()) * 100n >= moneyLimit * BigInt(pct)) {
              warned.add(pct);
              await appendAudit(db, {
                actor: 'system',
                action: 'machine.budget_warning',
                subjectType: 'machine',
                subjectId: input.machineId,
                projectId: project.id,
                details: { percent: pct, spent: formatAmount(apiSpent + computeSoFar(), currency), limit: input.moneyLimit, currency },
                idempotencyKey: `machine:${input.machineId}:warning:${pct}`,
              });
            }
          }
          // A turn that changed files becomes a checkpoint; so does every further tenth of the budget used.
          queueCheckpoint(`turn:${call.seq}`, `model call ${call.seq} changed files`);
          const decile = Number(((apiSpent + computeSoFar()) * 10n) / (moneyLimit > 0n ? moneyLimit : 1n));
          if (decile > lastDecile) {
            lastDecile = decile;
            queueCheckpoint(`budget:${decile}`, `${Math.min(decile, 10) * 10}% of the money limit used`);
          }
          await checkpointChain;
        },
      });

      // Its network policy (README "Network"): beyond the model endpoint, none, or its own egress proxy.
      let network: Awaited<ReturnType<typeof openMachineNetwork>>;
      try {
        network = await openMachineNetwork(
          { db, config, log },
          {
            machineId: input.machineId,
            projectId: project.id,
            policy: machine.network,
            provider: onInstance?.provider ?? 'local',
            runDir,
            ...(onInstance?.provider === 'container' ? { socketOwner: CONTAINER_USER } : {}),
          },
        );
      } catch (err) {
        await proxy.close();
        await sink.close();
        throw err;
      }

      /** Whether the workspace differs from a checkpoint (git, run asynchronously: the proxy shares this event loop). */
      let periodic = 0;
      const periodicTimer = setInterval(() => {
        periodic += 1;
        queueCheckpoint(`periodic:${periodic}`, `every ${input.checkpointEveryMinutes} minutes`);
      }, input.checkpointEveryMinutes * 60_000);
      let result;
      try {
        result = await runAgentProcess(
          onInstance,
          {
            machineId: input.machineId,
            workspace,
            command: [
              SANDBOX_NODE,
              FORWARDER_TARGET,
              String(SANDBOX_PORT),
              `${SOCKET_DIR_TARGET}/api.sock`,
              ...(network?.forward ?? []),
              '--',
              ...invocation.argv,
            ],
            env: {
              ...invocation.env,
              ...network?.env,
              PATH: `${config.toolsDir}/npm/node_modules/.bin:${config.toolsDir}/aider-venv/bin:/usr/local/bin:/usr/bin:/bin`,
            },
            mounts,
          },
          {
            logFile: path.join(config.home, 'logs', `${input.machineId}.log`),
            sink,
            deadline: input.deadline,
            deadlineReason: input.deadlineReason,
            keepStdout: true,
            progress: () => ({ ...usage, apiCost: formatAmount(apiSpent, currency) }),
            stopRequested: () => stopReason,
          },
        );
      } finally {
        clearInterval(periodicTimer);
        await network?.close();
        await proxy.close();
        await checkpointChain.catch(() => undefined);
        await sink.close();
      }
      // Its worker is shutting down: the agent was stopped; its workspace becomes a checkpoint the
      // next worker continues from (the workflow re-provisions there), instead of the run ending.
      const handover = result.handedOver ? setInterval(() => ctx.heartbeat({ handingOver: true }), 1000) : undefined;
      try {
        if (result.handedOver) {
          queueCheckpoint('handover', 'worker shutting down');
          await checkpointChain;
          await recordHandover(
            { db, temporal, log },
            { machineId: input.machineId, projectId: project.id, checkpointId: lastCheckpointId, type: input.type, restart: 'agent' },
          );
          log.info({ machineId: input.machineId, checkpointId: lastCheckpointId }, 'worker shutting down: machine handed over');
        }

        const report = adapter.parseOutput(result.stdout);
        const outputs: Array<[string, Uint8Array | null]> = [
          [CONVERSATION_ARTIFACT, fs.existsSync(conversationFile) ? fs.readFileSync(conversationFile) : null],
          ['tool-output.txt', Buffer.from(result.stdout)],
          ['tool-report.json', Buffer.from(JSON.stringify(report, null, 2))],
        ];
        for (const [name, content] of outputs) {
          if (!content) continue;
          const saved = await saveArtifact(
            db,
            // The conversation leads to this checkpoint: the last one taken during the run.
            { machineId: input.machineId, name, content, checkpointId: lastCheckpointId === input.parentCheckpointId ? null : lastCheckpointId },
            config.artifactMaxBytes,
          );
          if (saved.notStored) log.warn({ machineId: input.machineId, artifact: name, reason: saved.notStored }, 'artifact not stored');
        }
        await updateMachine(db, input.machineId, {
          usage: { ...usage, reportedByTool: report.reportedUsage, reportedCostUsd: report.reportedCostUsd },
        });
        return {
          exitCode: result.exitCode,
          stopReason: result.stopReason,
          outputTail: result.outputTail,
          lastCheckpointId,
          checkpoints,
          usage,
          apiCost: formatAmount(apiSpent, currency),
          ...(result.interrupted ? { interrupted: true } : {}),
          ...(result.resourceLimit ? { resourceLimit: true as const } : {}),
          ...(result.handedOver ? { handedOver: true as const } : {}),
        };
      } finally {
        clearInterval(handover);
      }
    },
  };

  /**
   * Runs the agent's command line in the local sandbox (the mounts given), or on the machine's
   * container instance through the provider's exec (those mounts were bound at provision), under
   * the same supervision: log, heartbeats, stop on deadline, stop request or cancellation.
   */
  async function runAgentProcess(
    instance: Instance | null,
    run: { machineId: string; workspace: string; command: string[]; env: Record<string, string>; mounts: Mount[] },
    supervision: Parameters<typeof superviseSandbox>[1],
  ): Promise<SupervisedResult & { interrupted?: boolean }> {
    if (!instance) {
      const { machineId, workspace, command, env, mounts } = run;
      return superviseSandbox({ machineId, workspace, command, network: false, home: AGENT_HOME, env, mounts }, supervision);
    }
    return superviseExec(
      providerOf(providers, instance.provider),
      instance,
      { command: run.command, network: false, env: { ...run.env, HOME: AGENT_HOME } },
      { ...supervision, onResources: resourceSampler(db, log, { machineId: run.machineId, projectId: instance.projectId }) },
    );
  }

  // A declaration, not a const: it sits after the returned activities and is hoisted to them.
  function lastCheckpointOf(machineId: string): Promise<string | null> {
    return latestCheckpointOfMachine(db, machineId);
  }
}
