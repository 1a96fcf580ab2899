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
  /** Card payments: a Stripe secret key, and optionally another API base (stripe-mock in tests). */
  STRIPE_SECRET_KEY: z.string().optional(),
  STRIPE_API_BASE: z.url('STRIPE_API_BASE must be a URL such as http://127.0.0.1:12111').optional(),
  /** ETH payments: a JSON-RPC endpoint and how many confirmations make a transfer final. */
  ETH_RPC_URL: z.url('ETH_RPC_URL must be a URL').optional(),
  ETH_CONFIRMATIONS: z.coerce.number().int().min(1).max(1000).default(12),
  /** TON payments: a toncenter-compatible HTTP API (v2) and its key. */
  TON_API_URL: z.url('TON_API_URL must be a URL').optional(),
  TON_API_KEY: z.string().optional(),
  /** Seconds between checks of an open crypto invoice. */
  PAYMENT_POLL_SECONDS: z.coerce.number().int().min(1).max(3600).default(15),
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
  payments: PaymentsConfig;
  /** The environment credentials and model endpoints are read from (never passed to sandboxes). */
  env: NodeJS.ProcessEnv;
}

export interface PaymentsConfig {
  stripe: { secretKey: string; apiBase: string | undefined } | undefined;
  eth: { rpcUrl: string; confirmations: number } | undefined;
  ton: { apiUrl: string; apiKey: string | undefined } | undefined;
  pollSeconds: number;
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
    payments: {
      stripe: e.STRIPE_SECRET_KEY ? { secretKey: e.STRIPE_SECRET_KEY, apiBase: e.STRIPE_API_BASE } : undefined,
      eth: e.ETH_RPC_URL ? { rpcUrl: e.ETH_RPC_URL, confirmations: e.ETH_CONFIRMATIONS } : undefined,
      ton: e.TON_API_URL ? { apiUrl: e.TON_API_URL, apiKey: e.TON_API_KEY } : undefined,
      pollSeconds: e.PAYMENT_POLL_SECONDS,
    },
    env,
  };
}
