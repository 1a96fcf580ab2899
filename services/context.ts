import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Principal } from '../domain/permissions.js';
import type { Db } from '../store/db.js';
import type { FxService } from '../fx/service.js';

/**
 * What every use case can use. The api builds one per process; GraphQL, batch and workflow
 * activities pass the same thing, so each use case runs the same code whoever asked.
 */
export interface ServiceContext {
  db: Db;
  temporal: Client;
  config: Config;
  log: Logger;
  /** Exchange rates; createApp builds one from config when absent. */
  fx?: FxService;
  /** Asks a compute provider about a disk snapshot's copies; absent when this process has no providers. */
  diskSnapshots?: DiskSnapshotReader;
}

/** Who asks for a use case. Permission checks happen before (the entry point's authorize step). */
export interface Caller {
  principal: Principal;
  /** `Idempotency-Key` of the request: a repeat with the same key names the same new thing. */
  idempotencyKey?: string | undefined;
}

/** The audit actor string of a caller. */
export const actorOfCaller = (caller: Caller): string => `user:${caller.principal.name}`;

/** A disk snapshot's copy in one region, as its provider reports it now. */
export interface DiskSnapshotCopy {
  region: string;
  state: string;
  snapshotId?: string;
  progress?: string;
}

/** Reads disk snapshot replicas through the compute providers (wired in by the composition root). */
export interface DiskSnapshotReader {
  /** null when the provider keeps no disk snapshots or is not configured here. */
  replicaStatus(provider: string, snapshotRef: string): Promise<DiskSnapshotCopy[] | null>;
}
