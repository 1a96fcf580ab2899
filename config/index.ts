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
  /** Requests per API key per minute (per api process); more get 429 with Retry-After. */
  AUTOVIBE_RATE_LIMIT: z.coerce.number().int().min(1, 'AUTOVIBE_RATE_LIMIT must be at least 1 (requests per key per minute)').default(3000),
  /** 1: every 2xx JSON answer is checked against its route's declared response schema (a mismatch is a 500); tests turn it on. */
  AUTOVIBE_VALIDATE_RESPONSES: z.enum(['0', '1'], { error: 'AUTOVIBE_VALIDATE_RESPONSES must be 0 or 1' }).default('0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Seconds without a heartbeat before a machine's activity is considered lost and retried. */
  AUTOVIBE_HEARTBEAT_TIMEOUT_S: z.coerce.number().int().positive().default(20),
  /** Where scripts/install-agent-clis put the agent CLIs (mounted read-only into sandboxes). */
  AUTOVIBE_TOOLS_DIR: z.string().default(path.resolve('.autovibe/tools')),
  /** Image the `container` provider runs machines in (built locally; no registry pulls). */
  AUTOVIBE_CONTAINER_IMAGE: z.string().default('localhost/autovibe-machine:latest'),
  /**
   * Where agent machines on `container` get node and the C libraries their CLIs link: `host` binds the
   * worker host's /usr, /lib and /lib64 read-only; `image` expects the image to carry them.
   */
  AUTOVIBE_CONTAINER_AGENT_RUNTIME: z.enum(['host', 'image']).default('host'),
  /** Warm pools: `provider:profile=min[..max]`, comma-separated, e.g. `container:lightweight=1..4`. */
  AUTOVIBE_WARM_POOLS: z
    .string()
    .regex(/^$|^[a-z0-9-]+:[a-z0-9-]+=\d+(\.\.\d+)?(,[a-z0-9-]+:[a-z0-9-]+=\d+(\.\.\d+)?)*$/, 'must look like container:lightweight=1..4')
    .default(''),
  /** How many machines each provider runs at once before placement spills to the next: `local=8,container=4`. */
  AUTOVIBE_PROVIDER_CAPACITY: z
    .string()
    .regex(/^$|^[a-z0-9-]+=\d+(,[a-z0-9-]+=\d+)*$/, 'must look like local=8,container=4')
    .default(''),
  /** Seconds between runs of the reconciliation schedule (leaked instances, warm pools); 0 = no schedule. */
  AUTOVIBE_RECONCILE_EVERY_S: z.coerce.number().int().min(0).default(60),
  /** Instances younger than this are never reclaimed: their machine row may still be on its way. */
  AUTOVIBE_RECONCILE_MIN_AGE_S: z.coerce.number().int().min(0).default(60),
  /** The ECB daily reference rates (XML); "off" disables the source. */
  AUTOVIBE_FX_ECB_URL: z.string().default('https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml'),
  /** Coinbase's public exchange-rates JSON (base USD); "off" disables the source. */
  AUTOVIBE_FX_CRYPTO_URL: z.string().default('https://api.coinbase.com/v2/exchange-rates?currency=USD'),
  /** Fixed rates that win over fetched ones, e.g. "EUR/USD=1.08,USD/CAD=1.37". */
  AUTOVIBE_FX_FIXED_RATES: z.string().default(''),
  /** Seconds fetched rates are fresh; after that they are used while a refresh runs. */
  AUTOVIBE_FX_TTL_S: z.coerce.number().int().positive().default(600),
  /** Seconds after the last successful fetch beyond which conversion refuses instead of guessing. */
  AUTOVIBE_FX_MAX_STALE_S: z.coerce
    .number()
    .int()
    .positive()
    .default(48 * 3600),
  /** Seconds a source that failed is left alone before it is asked again. */
  AUTOVIBE_FX_RETRY_S: z.coerce.number().int().min(0).default(30),
  /** Snapshot chunk stores: the primary region and the region every snapshot is replicated to. */
  AUTOVIBE_SNAPSHOT_PRIMARY_DIR: z.string().optional(),
  AUTOVIBE_SNAPSHOT_REPLICA_DIR: z.string().optional(),
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
  /** Requests per API key per minute. */
  rateLimitPerMinute: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /** Check every 2xx JSON answer against its route's declared response schema. */
  validateResponses: boolean;
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
  containerImage: string;
  containerAgentRuntime: 'host' | 'image';
  warmPools: Array<{ provider: string; profile: string; min: number; max: number }>;
  reconcileEverySeconds: number;
  reconcileMinAgeSeconds: number;
  /** Most machines each provider runs at once (providers not named: no limit). */
  providerCapacity: Record<string, number>;
  fx: { ecbUrl: string | null; cryptoUrl: string | null; fixedRates: string; ttlSeconds: number; maxStaleSeconds: number; retrySeconds: number };
  /** Chunk-store directories by region: `primary` takes every snapshot, `replica` a copy of each. */
  snapshotRegions: { primary: string; replica: string };
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
    rateLimitPerMinute: e.AUTOVIBE_RATE_LIMIT,
    logLevel: e.LOG_LEVEL,
    validateResponses: e.AUTOVIBE_VALIDATE_RESPONSES === '1',
    heartbeatTimeoutSeconds: e.AUTOVIBE_HEARTBEAT_TIMEOUT_S,
    projectsDir: path.join(home, 'projects'),
    workspacesDir: path.join(home, 'workspaces'),
    machinesDir: path.join(home, 'machines'),
    artifactsDir: path.join(home, 'artifacts'),
    toolsDir: path.resolve(e.AUTOVIBE_TOOLS_DIR),
    containerImage: e.AUTOVIBE_CONTAINER_IMAGE,
    containerAgentRuntime: e.AUTOVIBE_CONTAINER_AGENT_RUNTIME,
    warmPools: e.AUTOVIBE_WARM_POOLS.split(',')
      .filter(Boolean)
      .map((spec) => {
        const [key, range] = spec.split('=') as [string, string];
        const [provider, profile] = key.split(':') as [string, string];
        const [min, max] = range.split('..').map(Number) as [number, number | undefined];
        return { provider, profile, min, max: Math.max(min, max ?? min) };
      }),
    reconcileEverySeconds: e.AUTOVIBE_RECONCILE_EVERY_S,
    providerCapacity: Object.fromEntries(
      e.AUTOVIBE_PROVIDER_CAPACITY.split(',')
        .filter(Boolean)
        .map((spec) => {
          const [provider, n] = spec.split('=') as [string, string];
          return [provider, Number(n)];
        }),
    ),
    reconcileMinAgeSeconds: e.AUTOVIBE_RECONCILE_MIN_AGE_S,
    fx: {
      ecbUrl: e.AUTOVIBE_FX_ECB_URL === 'off' ? null : e.AUTOVIBE_FX_ECB_URL,
      cryptoUrl: e.AUTOVIBE_FX_CRYPTO_URL === 'off' ? null : e.AUTOVIBE_FX_CRYPTO_URL,
      fixedRates: e.AUTOVIBE_FX_FIXED_RATES,
      ttlSeconds: e.AUTOVIBE_FX_TTL_S,
      maxStaleSeconds: e.AUTOVIBE_FX_MAX_STALE_S,
      retrySeconds: e.AUTOVIBE_FX_RETRY_S,
    },
    snapshotRegions: {
      primary: path.resolve(e.AUTOVIBE_SNAPSHOT_PRIMARY_DIR ?? path.join(home, 'snapshots', 'primary')),
      replica: path.resolve(e.AUTOVIBE_SNAPSHOT_REPLICA_DIR ?? path.join(home, 'snapshots', 'replica')),
    },
    payments: {
      stripe: e.STRIPE_SECRET_KEY ? { secretKey: e.STRIPE_SECRET_KEY, apiBase: e.STRIPE_API_BASE } : undefined,
      eth: e.ETH_RPC_URL ? { rpcUrl: e.ETH_RPC_URL, confirmations: e.ETH_CONFIRMATIONS } : undefined,
      ton: e.TON_API_URL ? { apiUrl: e.TON_API_URL, apiKey: e.TON_API_KEY } : undefined,
      pollSeconds: e.PAYMENT_POLL_SECONDS,
    },
    env,
  };
}
