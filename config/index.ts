import path from 'node:path';
import { z } from 'zod';

/** Task queues are shared constants: the api starts work on them, workers poll them. */
export const TASK_QUEUES = { machines: 'autovibe-machines' } as const;

const envSchema = z.object({
  AUTOVIBE_HOME: z.string().default(path.resolve('.autovibe')),
  DATABASE_URL: z.string().optional(),
  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default(TASK_QUEUES.machines),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  AUTOVIBE_ADMIN_KEY: z.string().min(16, 'AUTOVIBE_ADMIN_KEY must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds without a heartbeat before a machine's activity is considered lost and retried. */
  AUTOVIBE_HEARTBEAT_TIMEOUT_S: z.coerce.number().int().positive().default(20),
  /** Where scripts/install-agent-clis put the agent CLIs (mounted read-only into sandboxes). */
  AUTOVIBE_TOOLS_DIR: z.string().default(path.resolve('.autovibe/tools')),
  /** Snapshot chunk stores: the primary region and the region every snapshot is replicated to. */
  AUTOVIBE_SNAPSHOT_PRIMARY_DIR: z.string().optional(),
  AUTOVIBE_SNAPSHOT_REPLICA_DIR: z.string().optional(),
});

export interface Config {
  home: string;
  databaseUrl: string | undefined;
  temporalAddress: string | undefined;
  temporalNamespace: string;
  taskQueue: string;
  port: number;
  host: string;
  adminKey: string | undefined;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  heartbeatTimeoutSeconds: number;
  /** Bare git repositories, one per project. */
  projectsDir: string;
  /** Live machine workspaces (git worktrees), removed when the machine ends. */
  workspacesDir: string;
  /** Per-machine private state: the agent's $HOME, the proxy socket. */
  machinesDir: string;
  /** Machine artifacts kept after the machine ends (conversation history, tool output). */
  artifactsDir: string;
  toolsDir: string;
  /** Chunk-store directories by region: `primary` takes every snapshot, `replica` a copy of each. */
  snapshotRegions: { primary: string; replica: string };
  /** The environment credentials and model endpoints are read from (never passed to sandboxes). */
  env: NodeJS.ProcessEnv;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the platform configuration from the environment, failing with one readable message per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  const home = path.resolve(e.AUTOVIBE_HOME);
  return {
    home,
    databaseUrl: e.DATABASE_URL || undefined,
    temporalAddress: e.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    taskQueue: e.TEMPORAL_TASK_QUEUE,
    port: e.PORT,
    host: e.HOST,
    adminKey: e.AUTOVIBE_ADMIN_KEY,
    logLevel: e.LOG_LEVEL,
    heartbeatTimeoutSeconds: e.AUTOVIBE_HEARTBEAT_TIMEOUT_S,
    projectsDir: path.join(home, 'projects'),
    workspacesDir: path.join(home, 'workspaces'),
    machinesDir: path.join(home, 'machines'),
    artifactsDir: path.join(home, 'artifacts'),
    toolsDir: path.resolve(e.AUTOVIBE_TOOLS_DIR),
    snapshotRegions: {
      primary: path.resolve(e.AUTOVIBE_SNAPSHOT_PRIMARY_DIR ?? path.join(home, 'snapshots', 'primary')),
      replica: path.resolve(e.AUTOVIBE_SNAPSHOT_REPLICA_DIR ?? path.join(home, 'snapshots', 'replica')),
    },
    env,
  };
}
