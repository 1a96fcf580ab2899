import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Principal } from '../domain/permissions.js';
import type { Db } from '../store/db.js';
import type { FxService } from '../fx/service.js';

/** What every route handler can use. */
export interface ApiContext {
  db: Db;
  temporal: Client;
  config: Config;
  log: Logger;
  /** Exchange rates; createApp builds one from config when absent. */
  fx?: FxService;
  /** Asks a compute provider about a disk snapshot's copies; absent when this process has no providers. */
  diskSnapshots?: DiskSnapshotReader;
}

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

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      requestId: string;
      principal?: Principal;
      /** The project the route's declared resource belongs to (set by `authorize`). */
      projectId?: string;
    }
  }
}

export function principalOf(req: Express.Request): Principal {
  if (!req.principal) throw new Error('route used without authentication middleware');
  return req.principal;
}

/** The audit actor string of a request. */
export function actorOf(req: Express.Request): string {
  return `user:${principalOf(req).name}`;
}

/** A path parameter as a string (express types allow arrays for wildcard params). */
export function param(req: Express.Request & { params: Record<string, unknown> }, name: string): string {
  const v = req.params[name];
  return Array.isArray(v) ? v.join('/') : String(v ?? '');
}
