import { patched } from '@temporalio/workflow';
import type { MachineType } from '../domain/machines.js';

/** A machine type as objectives and pipeline steps take it: one type, or `auto` (the router picks). */
export type RequestedMachineType = MachineType | 'auto';

/** Marks histories whose `auto` machines run as the type their registration answered. */
export const AUTO_MACHINE_TYPE = 'auto-machine-type';

/**
 * The type a machine runs as: the requested one, or for `auto` the type the router chose when the
 * machine was registered (the activity records the decision with the machine's row and answers it).
 */
export function runAsType(requested: RequestedMachineType, registered: { type?: MachineType } | undefined): MachineType {
  if (requested === 'auto' && patched(AUTO_MACHINE_TYPE)) {
    if (!registered?.type) throw new Error('type auto: the registration did not answer the chosen type');
    return registered.type;
  }
  return requested as MachineType;
}
