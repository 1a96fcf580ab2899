import { ApplicationFailure } from '@temporalio/common';
import type { CurrencyCode } from '../domain/money.js';
import { formatAmount } from '../domain/money.js';
import { copyArtifacts } from '../store/artifacts.js';
import { appendAudit } from '../store/audit.js';
import { cacheKey, findCacheEntry, getCacheRecord, insertCacheRecord } from '../store/cache.js';
import { getCheckpoint, recordCheckpoint } from '../store/checkpoints.js';
import { costTotals, recordCost } from '../store/costs.js';
import { treeOf } from '../store/git.js';
import { getMachine, updateMachine } from '../store/machines.js';
import { getProject } from '../store/projects.js';
import type { ActivityDeps } from './deps.js';
import { repoMirror, withLocalRepo } from '../store/shared-storage.js';

export interface CacheLookupInput {
  machineId: string;
  projectId: string;
  type: string;
  model: string | null;
  prompt: string | null;
  command: string | null;
  profile: string;
  parentCheckpointId: string;
  /** False when the request opted out: the machine runs (and may become an entry), never reuses. */
  use: boolean;
  /** More of the machine's input that changes its result (inputs placed at the start, declared artifacts). */
  extra?: string;
  /** The id the machine's final checkpoint gets on a hit (from the workflow, so retries agree). */
  checkpointId: string;
}

export type CacheLookupResult = { hit: false } | { hit: true; checkpointId: string; sourceMachineId: string; exitCode: number | null; currency: CurrencyCode };

/** Activities of the machine result cache. */
export function createCacheActivities({ db, config }: ActivityDeps) {
  return {
    /**
     * Looks the machine's input up in the cache and records the outcome. On a hit the machine is
     * done here, in one transaction: its final checkpoint points at the cached commit, a cost
     * event of zero marks the hit (with the money it saved), and it is marked completed. Nothing
     * is reserved and no sandbox starts. Idempotent: a repeat returns the recorded outcome.
     */
    async lookupMachineCache(input: CacheLookupInput): Promise<CacheLookupResult> {
      const found = await getProject(db, input.projectId);
      if (!found) throw ApplicationFailure.nonRetryable(`project ${input.projectId} not found`, 'NotFoundError');
      const project = await withLocalRepo(db, config, found);
      const recorded = await getCacheRecord(db, input.machineId);
      if (recorded) {
        if (recorded.outcome !== 'hit') return { hit: false };
        const machine = await getMachine(db, input.machineId);
        return {
          hit: true,
          checkpointId: recorded.checkpointId!,
          sourceMachineId: recorded.sourceMachineId!,
          exitCode: machine?.exitCode ?? 0,
          currency: project.currency,
        };
      }
      const parent = await getCheckpoint(db, input.parentCheckpointId);
      if (!parent || parent.projectId !== project.id) {
        throw ApplicationFailure.nonRetryable(`checkpoint ${input.parentCheckpointId} is not a checkpoint of project ${project.id}`, 'InputError');
      }
      // What the machine may reach changes what it can produce: a network policy is part of the key.
      const network = (await getMachine(db, input.machineId))?.network;
      const extra = [input.extra, network && network.mode !== 'none' ? `network:${JSON.stringify(network)}` : null].filter(Boolean).join('\n');
      const key = cacheKey({
        tree: await treeOf(project.repoPath, parent.commit),
        type: input.type,
        model: input.model,
        prompt: input.prompt,
        command: input.type === 'shell' ? input.command : null,
        profile: input.profile,
        ...(extra ? { extra } : {}),
      });
      const entry = input.use ? await findCacheEntry(db, project.id, key) : null;
      const none = { machineId: input.machineId, projectId: project.id, key, sourceMachineId: null, checkpointId: null, savedAmount: null, currency: null };
      if (!entry) {
        await insertCacheRecord(db, { ...none, outcome: input.use ? 'miss' : 'bypass' });
        return { hit: false };
      }

      const currency = project.currency;
      const saved = Object.values(await costTotals(db, { machineId: entry.machineId })).reduce((a, b) => a + b, 0n);
      const trigger = `cache hit from machine ${entry.machineId}`;
      const now = new Date();
      await db.transaction(async (trx) => {
        await recordCheckpoint(
          trx,
          project.repoPath,
          {
            id: input.checkpointId,
            projectId: project.id,
            parentId: parent.id,
            machineId: input.machineId,
            commit: entry.commit,
            kind: 'final',
            trigger,
          },
          {},
          repoMirror(config),
        );
        await insertCacheRecord(trx, {
          ...none,
          outcome: 'hit',
          sourceMachineId: entry.machineId,
          checkpointId: input.checkpointId,
          savedAmount: saved,
          currency,
        });
        await recordCost(trx, {
          idempotencyKey: `machine:${input.machineId}:cache`,
          projectId: project.id,
          machineId: input.machineId,
          category: 'cache',
          amount: 0n,
          currency,
          projectAmount: 0n,
          projectCurrency: currency,
          details: { cache: 'hit', sourceMachineId: entry.machineId, sourceCheckpointId: entry.checkpointId, saved: formatAmount(saved, currency) },
        });
        // Files the source machine handed on outside its checkpoint come with the result.
        await copyArtifacts(trx, entry.machineId, input.machineId, input.checkpointId);
        await updateMachine(trx, input.machineId, { status: 'completed', exitCode: entry.exitCode ?? 0, instanceRef: null, startedAt: now, endedAt: now });
        const audit = { actor: 'system', subjectType: 'machine', subjectId: input.machineId, projectId: project.id };
        await appendAudit(trx, {
          ...audit,
          action: 'machine.cache_hit',
          details: {
            sourceMachineId: entry.machineId,
            sourceCheckpointId: entry.checkpointId,
            checkpointId: input.checkpointId,
            saved: formatAmount(saved, currency),
            currency,
          },
          idempotencyKey: `machine:${input.machineId}:cache_hit`,
        });
        await appendAudit(trx, {
          ...audit,
          action: 'machine.completed',
          details: { exitCode: entry.exitCode ?? 0, cache: 'hit' },
          idempotencyKey: `machine:${input.machineId}:completed`,
        });
      });
      return { hit: true, checkpointId: input.checkpointId, sourceMachineId: entry.machineId, exitCode: entry.exitCode ?? 0, currency };
    },
  };
}
