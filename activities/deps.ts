import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Db } from '../store/db.js';
import type { FxService } from '../fx/service.js';

/** What activities need from the process that hosts them. Built once by the worker. */
export interface ActivityDeps {
  db: Db;
  config: Config;
  log: Logger;
  /** Exchange rates; built from config when absent. */
  fx?: FxService;
}
