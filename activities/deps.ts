import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Db } from '../store/db.js';
import type { ComputeProvider, ProviderId } from './compute/provider.js';
import type { FxService } from '../fx/service.js';

/** What activities need from the process that hosts them. Built once by the worker. */
export interface ActivityDeps {
  db: Db;
  config: Config;
  log: Logger;
  /** To signal other workflows (the project coordinator) from activities. */
  temporal: Client;
  /** Compute providers by id (activities/compute/index.ts createProviders). */
  providers: Map<ProviderId, ComputeProvider>;
  /** Exchange rates; built from config when absent. */
  fx?: FxService;
}
