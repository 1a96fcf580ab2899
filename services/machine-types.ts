import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { ADAPTERS } from '../domain/agents/index.js';
import type { MachineTypeId } from '../domain/machine-types.js';

/** Whether a machine type can run here: its CLI is installed and its model API is configured. */
export function machineTypeAvailability(config: Config, type: MachineTypeId): { available: true } | { available: false; reason: string } {
  if (type === 'shell') return { available: true };
  const adapter = ADAPTERS[type];
  const upstream = adapter.upstream(config.env);
  if (!upstream.ok) return { available: false, reason: upstream.reason };
  const binary = path.join(config.toolsDir, adapter.binary);
  if (!fs.existsSync(binary)) return { available: false, reason: `the CLI is missing (${binary}); install it with ${adapter.install}` };
  return { available: true };
}
