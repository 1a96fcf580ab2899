import type { Config } from '../../config/index.js';
import { ContainerProvider, defaultContainerSocket } from './container.js';
import { LocalProvider } from './local.js';
import { PROVIDER_IDS, type ComputeProvider, type ExecRequest, type ExecResult, type Instance, type ProviderId, type ProvisionRequest } from './provider.js';

export type { ComputeProvider, Instance, ProviderId } from './provider.js';

/** Stands in for a provider this process is not configured for: it says why, and does nothing. */
export class UnconfiguredProvider implements ComputeProvider {
  constructor(
    readonly id: ProviderId,
    private readonly reason: string,
  ) {}
  async availability() {
    return { available: false, reason: this.reason };
  }
  private refuse(): never {
    throw new Error(`provider ${this.id} is unavailable: ${this.reason}`);
  }
  async provision(_r: ProvisionRequest): Promise<Instance> {
    this.refuse();
  }
  async exec(_i: Instance, _r: ExecRequest): Promise<ExecResult> {
    this.refuse();
  }
  async snapshot(): Promise<{ snapshotRef: string }> {
    this.refuse();
  }
  async listInstances(): Promise<Instance[]> {
    return [];
  }
  async terminate(): Promise<void> {
    // nothing can be running there
  }
}

/**
 * Every provider this process can use, by id. A provider that is not configured here is still
 * present, reporting `available: false` with the reason. Each cloud provider plugs in with one line.
 */
export function createProviders(config: Config): Map<ProviderId, ComputeProvider> {
  const providers = new Map<ProviderId, ComputeProvider>();
  providers.set('local', new LocalProvider());
  providers.set('container', new ContainerProvider({ socketPath: defaultContainerSocket(config.env), image: config.containerImage, deployment: config.taskQueue }));
  for (const id of PROVIDER_IDS) {
    if (!providers.has(id)) providers.set(id, new UnconfiguredProvider(id, `the ${id} provider is not configured in this deployment`));
  }
  return providers;
}

/** The provider with that id; an unknown id is a programming error. */
export function providerOf(providers: Map<ProviderId, ComputeProvider>, id: string): ComputeProvider {
  const p = providers.get(id as ProviderId);
  if (!p) throw new Error(`unknown provider ${id}`);
  return p;
}
