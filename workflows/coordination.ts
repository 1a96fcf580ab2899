import { CancellationScope, condition, defineSignal, proxyActivities, proxyLocalActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { orderedAcquisition } from '../domain/dag.js';
import { MACHINE_SLOT, resourceKey } from '../domain/scheduling.js';
import { NOT_FOUND, shortActivity, shortLocalActivity } from './activity-options.js';

/** Sent by the project coordinator to the workflow that asked for a resource. */
export const resourceGrantedSignal = defineSignal<[{ requestId: string; resource: string }]>('resourceGranted');

const acts = proxyActivities<Activities>(shortActivity('30 seconds', [NOT_FOUND]));
const local = proxyLocalActivities<Activities>(shortLocalActivity('30 seconds', [NOT_FOUND]));

export interface ClaimRequest {
  projectId: string;
  /** Unique within the project, stable across retries (e.g. the machine id it is for). */
  requestId: string;
  /** Named resources (without prefix); a machine slot is always claimed too. */
  resources: string[];
  priority: number;
  dependents: number;
  /** Machine money limit in ledger units (decimal string). */
  cost: string;
  label: string;
  /** Called with the resource key each time one is being waited for. */
  onWait?: (resource: string) => void;
}

/**
 * Claims of one workflow on its project's resources. Install once per workflow (it registers the
 * grant signal handler), then `acquire` before starting a machine and `release` after.
 */
export class ResourceClaims {
  private readonly granted = new Set<string>();
  private readonly acts: typeof acts;

  /**
   * `local`: the requests and releases (signals to the coordinator, deduplicated by request id)
   * go as local activities, in the caller's own workflow task; callers decide it with a patch.
   */
  constructor(opts: { local?: boolean } = {}) {
    this.acts = opts.local ? local : acts;
    setHandler(resourceGrantedSignal, ({ requestId, resource }) => {
      this.granted.add(`${requestId}|${resource}`);
    });
  }

  /**
   * Takes the named resources and a machine slot one at a time, always in the global order of
   * `orderedAcquisition` (named resources first, the machine slot last), so no two claimers can
   * each hold what the other waits for. Cancellable while waiting: the caller must `release`.
   */
  async acquire(claim: ClaimRequest): Promise<void> {
    const keys = orderedAcquisition([...claim.resources.map(resourceKey), MACHINE_SLOT]);
    for (const resource of keys) {
      claim.onWait?.(resource);
      await this.acts.requestResource({
        projectId: claim.projectId,
        request: {
          requestId: claim.requestId,
          requester: workflowInfo().workflowId,
          resource,
          priority: claim.priority,
          dependents: claim.dependents,
          cost: resource === MACHINE_SLOT ? claim.cost : '0',
          label: claim.label,
        },
      });
      await condition(() => this.granted.has(`${claim.requestId}|${resource}`));
    }
  }

  /** Frees everything the request holds or waits for. Runs even when the caller was cancelled. */
  async release(projectId: string, requestId: string): Promise<void> {
    await CancellationScope.nonCancellable(() => this.acts.releaseResources({ projectId, requestId }));
    for (const key of [...this.granted]) if (key.startsWith(`${requestId}|`)) this.granted.delete(key);
  }
}
