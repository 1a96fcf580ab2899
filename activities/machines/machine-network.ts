import crypto from 'node:crypto';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { hostProblem, NETWORK_PROVIDERS, type NetworkPolicy } from '../../domain/network.js';
import type { ProviderId } from '../../domain/machines.js';
import { appendAudit } from '../../store/audit.js';
import { addNetworkTotals } from '../../store/machines.js';
import type { ActivityDeps } from '../deps.js';
import { SOCKET_DIR_TARGET } from './agent-mounts.js';
import { startEgressProxy, type EgressRecord } from './egress-proxy.js';

/** Where the forwarder inside a sandbox listens for the egress proxy. */
export const EGRESS_PORT = 3128;
export const EGRESS_SOCKET = 'egress.sock';
/** How often the connections closed meanwhile are written (audit records and the machine's totals). */
const FLUSH_EVERY_MS = 2000;

/** A machine's open way out: what its command line and environment need, and how to end it. */
export interface MachineNetwork {
  /** The forwarder's `<port> <socket>` pair for the egress proxy (socket path inside the sandbox). */
  forward: [string, string];
  /** HTTP(S)_PROXY and NO_PROXY (both spellings) pointing at the forwarder. */
  env: Record<string, string>;
  /** Stops the proxy (open connections end) and writes every record still pending. */
  close(): Promise<void>;
}

/** The proxy environment every tool of the machine reads (curl, wget, npm, pip, go, …). */
export function proxyEnv(port = EGRESS_PORT): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  const noProxy = 'localhost,127.0.0.1,::1';
  return { HTTP_PROXY: url, HTTPS_PROXY: url, http_proxy: url, https_proxy: url, NO_PROXY: noProxy, no_proxy: noProxy };
}

/**
 * Starts the egress proxy of a machine whose policy is not `none` (null for `none`: the sandbox
 * keeps no network at all). Refuses, for good, a provider that cannot route the sandbox through it.
 * Each connection becomes one audit record of the machine (`network.connection`, or
 * `network.refused`) and is added to its totals, written in batches while it runs and at close.
 */
export async function openMachineNetwork(
  { db, config, log }: Pick<ActivityDeps, 'db' | 'config' | 'log'>,
  input: { machineId: string; projectId: string; policy: NetworkPolicy; provider: ProviderId; runDir: string; socketOwner?: { uid: number; gid: number } },
): Promise<MachineNetwork | null> {
  const { policy } = input;
  if (policy.mode === 'none') return null;
  if (!NETWORK_PROVIDERS.includes(input.provider)) {
    throw ApplicationFailure.nonRetryable(
      `network policy "${policy.mode}" cannot be enforced on provider ${input.provider} (only ${NETWORK_PROVIDERS.join(' and ')} can)`,
      'InputError',
    );
  }
  const run = crypto.randomBytes(6).toString('hex');
  let seq = 0;
  let pending: EgressRecord[] = [];
  let writing = Promise.resolve();
  const flush = () => {
    const batch = pending;
    pending = [];
    if (!batch.length) return writing;
    writing = writing
      .then(() =>
        db.transaction(async (trx) => {
          for (const r of batch) {
            seq += 1;
            await appendAudit(trx, {
              actor: 'system',
              action: r.decision === 'allowed' ? 'network.connection' : 'network.refused',
              subjectType: 'machine',
              subjectId: input.machineId,
              projectId: input.projectId,
              details: { ...r },
              idempotencyKey: `machine:${input.machineId}:net:${run}:${seq}`,
            });
          }
          await addNetworkTotals(trx, input.machineId, {
            connections: batch.filter((r) => r.decision === 'allowed').length,
            refused: batch.filter((r) => r.decision === 'refused').length,
            bytesUp: batch.reduce((a, r) => a + r.bytesUp, 0),
            bytesDown: batch.reduce((a, r) => a + r.bytesDown, 0),
          });
        }),
      )
      .catch((err: Error) => log.warn({ machineId: input.machineId, err: err.message, records: batch.length }, 'network audit records not written'));
    return writing;
  };
  const proxy = await startEgressProxy({
    socketPath: path.join(input.runDir, EGRESS_SOCKET),
    ...(input.socketOwner ? { socketOwner: input.socketOwner } : {}),
    decide: (host, port) => hostProblem(policy, config.network.registryHosts, host, port),
    allowPrivate: config.network.allowPrivate,
    onConnection: (r) => pending.push(r),
  });
  const timer = setInterval(() => void flush(), FLUSH_EVERY_MS);
  return {
    forward: [String(EGRESS_PORT), `${SOCKET_DIR_TARGET}/${EGRESS_SOCKET}`],
    env: proxyEnv(),
    async close() {
      clearInterval(timer);
      await proxy.close();
      await flush();
    },
  };
}
