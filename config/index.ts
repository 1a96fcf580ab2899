import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Address } from '@ton/core';
import { getAddress, isAddress } from 'viem';
import { z } from 'zod';
import { mergePrices, parseInlinePrices, parsePriceList, type ComputePriceList, type SpotCharging } from '../domain/compute-prices.js';
import { AGENT_TYPES, applyPriceOverrides, defaultPriceTables, type AgentType, type PriceTables } from '../domain/metering.js';
import { OPERATION_CLASSES } from '../domain/routing/classify.js';
import { DEFAULT_CAPABILITIES, type CapabilityTable } from '../domain/routing/router.js';
import { parseHostEntry, REGISTRY_HOSTS } from '../domain/network.js';
import { DEFAULT_REPO_URL_SCHEMES, type RepoUrlScheme } from '../domain/repo-url.js';
import { PROVIDERS, type ProviderId, type ResourceLimits } from '../domain/machines.js';
import { HOST_NAME, type WorkerRole } from '../domain/queues.js';

/**
 * Task queues are shared constants: the api starts work on them, workers poll them. The control
 * queue (every workflow, the bookkeeping activities) kept the name of the one queue there was
 * before machines got queues of their own (domain/queues.ts), so running executions and schedules
 * keep theirs; machine queues are named after it: `autovibe-machines-local`, `…-container@host1`.
 */
export const TASK_QUEUES = { control: 'autovibe-machines' } as const;

const positiveInt = z.number().int().positive();
const profileLimitsSchema = z.record(
  z.string(),
  z
    .object({
      cpus: z.number().positive().max(1024).optional(),
      memoryMiB: positiveInt.optional(),
      pids: positiveInt.optional(),
      diskMiB: positiveInt.optional(),
    })
    .strict(),
);

const envSchema = z
  .object({
    AUTOVIBE_HOME: z.string().default(path.resolve('.autovibe')),
    DATABASE_URL: z.string().optional(),
    TEMPORAL_ADDRESS: z.string().optional(),
    TEMPORAL_NAMESPACE: z.string().default('default'),
    TEMPORAL_TASK_QUEUE: z.string().default(TASK_QUEUES.control),
    /** What a worker process serves (README "Task queues and workers"): `control`, `machines`, or both (default). */
    AUTOVIBE_WORKER_ROLES: z
      .string()
      .regex(/^(control|machines)(,(control|machines))*$/, 'AUTOVIBE_WORKER_ROLES must be control, machines or control,machines')
      .default('control,machines'),
    /** The providers whose machine queues a machines worker serves, comma-separated (default: every provider it has). */
    AUTOVIBE_WORKER_PROVIDERS: z
      .string()
      .refine(
        (v) => v.split(',').every((x) => (PROVIDERS as readonly string[]).includes(x)),
        `AUTOVIBE_WORKER_PROVIDERS must be comma-separated providers of: ${PROVIDERS.join(', ')}`,
      )
      .optional(),
    /** This worker's host name in its host queues (default: the machine's host name and a digest of its workspaces directory). */
    AUTOVIBE_WORKER_HOST: z.string().regex(HOST_NAME, 'AUTOVIBE_WORKER_HOST must be letters, digits, ".", "_" and "-", at most 100').optional(),
    /** Activities run at once on the control queue, and on each machine queue (provider and host) this worker serves. */
    AUTOVIBE_WORKER_CONTROL_CONCURRENCY: z.coerce.number().int().min(1, 'AUTOVIBE_WORKER_CONTROL_CONCURRENCY must be at least 1').default(100),
    AUTOVIBE_WORKER_MACHINE_CONCURRENCY: z.coerce.number().int().min(1, 'AUTOVIBE_WORKER_MACHINE_CONCURRENCY must be at least 1').default(100),
    /** Seconds a machine's activity waits on its host's queue before the host is presumed gone and the machine moves to another. */
    AUTOVIBE_HOST_QUEUE_WAIT_S: z.coerce.number().int().min(1).max(86_400).default(120),
    /**
     * Temporal over TLS (README "Temporal connection"): on/off; default on when any of the settings
     * below is given. CERT/KEY (mTLS client pair) and CA (a private CA of a self-hosted server) are
     * file paths, or the PEM text itself (what a secret injected as an environment variable holds).
     */
    AUTOVIBE_TEMPORAL_TLS: z.enum(['on', 'off'], { error: 'AUTOVIBE_TEMPORAL_TLS must be on or off' }).optional(),
    AUTOVIBE_TEMPORAL_TLS_CERT: z.string().optional(),
    AUTOVIBE_TEMPORAL_TLS_KEY: z.string().optional(),
    AUTOVIBE_TEMPORAL_TLS_CA: z.string().optional(),
    /** The name the server's certificate is checked against when it is not the address's host. */
    AUTOVIBE_TEMPORAL_SERVER_NAME: z.string().optional(),
    /** Temporal Cloud API key (sent as a bearer token, over TLS). */
    AUTOVIBE_TEMPORAL_API_KEY: z.string().optional(),
    /** Start workflows with the AutoVibe* search attributes (the namespace must have them: README, "Finding runs"). */
    AUTOVIBE_SEARCH_ATTRIBUTES: z.enum(['on', 'off']).default('on'),
    /** When set, GET /metrics requires `Authorization: Bearer <this>`. */
    AUTOVIBE_TEMPORAL_UI_URL: z.url({ error: 'AUTOVIBE_TEMPORAL_UI_URL must be a URL, e.g. https://temporal.example.com' }).optional(),
    AUTOVIBE_METRICS_TOKEN: z.string().min(16, 'AUTOVIBE_METRICS_TOKEN must be at least 16 characters').optional(),
    /** host:port where the worker's Temporal SDK serves its own Prometheus metrics; unset = not served. */
    AUTOVIBE_TEMPORAL_METRICS_ADDRESS: z
      .string()
      .regex(/^[\w.-]+:\d+$/, 'must look like 127.0.0.1:9464')
      .optional(),
    /** Outgoing webhooks (README "Webhooks and Slack"). The dashboard's public URL, for links in Slack messages; default the api's. */
    AUTOVIBE_PUBLIC_URL: z.url({ error: 'AUTOVIBE_PUBLIC_URL must be a URL, e.g. https://autovibe.example.com' }).optional(),
    /** 1: webhooks may go to loopback, link-local and private addresses (tests, a trusted network); metadata services never. */
    AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: z.enum(['0', '1'], { error: 'AUTOVIBE_WEBHOOK_ALLOW_PRIVATE must be 0 or 1' }).default('0'),
    /** Machine network (README "Network"): more package registries for policy `registries`, comma-separated `host` or `*.suffix`, each with an optional `:port`. */
    AUTOVIBE_NETWORK_REGISTRY_HOSTS: z
      .string()
      .default('')
      .refine(
        (v) =>
          v
            .split(',')
            .filter(Boolean)
            .every((h) => typeof parseHostEntry(h) !== 'string'),
        'must be comma-separated hosts such as registry.example.com,*.mirror.example.org:8443',
      ),
    /**
     * Private addresses machines may reach anyway, comma-separated `ip:port` (a loopback registry in
     * tests, an on-prem mirror): the egress proxy otherwise refuses loopback, link-local and private
     * addresses. Metadata services stay refused.
     */
    AUTOVIBE_NETWORK_ALLOW_PRIVATE: z
      .string()
      .regex(/^$|^[0-9a-fA-F.:[\]]+:\d{1,5}(,[0-9a-fA-F.:[\]]+:\d{1,5})*$/, 'must be comma-separated ip:port entries such as 127.0.0.1:4873')
      .default(''),
    AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
    AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: z.coerce.number().int().min(10).default(5000),
    AUTOVIBE_WEBHOOK_RETRY_MAX_S: z.coerce.number().int().min(1).default(7200),
    AUTOVIBE_WEBHOOK_TIMEOUT_S: z.coerce.number().int().min(1).max(300).default(15),
    AUTOVIBE_WEBHOOK_DISABLE_AFTER_FAILURES: z.coerce.number().int().min(1).default(5),
    AUTOVIBE_WEBHOOK_DISABLE_AFTER_HOURS: z.coerce.number().positive().default(24),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().default('127.0.0.1'),
    AUTOVIBE_ADMIN_KEY: z.string().min(16, 'AUTOVIBE_ADMIN_KEY must be at least 16 characters').optional(),
    /** Keys that seal secrets at rest: 32 bytes in base64 each, comma-separated, the sealing one first (older ones still open). */
    AUTOVIBE_SECRETS_KEY: z
      .string()
      .refine(
        (v) => v.split(',').every((k) => Buffer.from(k.trim(), 'base64').length === 32),
        'AUTOVIBE_SECRETS_KEY must be one or more comma-separated keys of 32 bytes in base64 (make one with: openssl rand -base64 32)',
      )
      .optional(),
    /** Workflows a worker keeps in memory (sticky cache); unset: the Temporal SDK's default, derived from the heap limit. */
    AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0, 'AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS must be 0 (no cache) or more').optional(),
    /** Requests per API key per minute (per api process); more get 429 with Retry-After. */
    AUTOVIBE_RATE_LIMIT: z.coerce.number().int().min(1, 'AUTOVIBE_RATE_LIMIT must be at least 1 (requests per key per minute)').default(3000),
    /** Incoming tracker hooks (/hooks/:kind/:id, no API key) per integration per minute, per api process. */
    AUTOVIBE_HOOK_RATE_LIMIT: z.coerce.number().int().min(1, 'AUTOVIBE_HOOK_RATE_LIMIT must be at least 1 (hooks per integration per minute)').default(600),
    /** Operations one POST /v1/batch may carry; more are refused whole (413). */
    AUTOVIBE_BATCH_MAX_OPERATIONS: z.coerce.number().int().min(1).max(1000, 'AUTOVIBE_BATCH_MAX_OPERATIONS must be at most 1000').default(50),
    /** Model prices over the defaults in code, as JSON: `{ "claude-code": { "claude-sonnet-4-5": { "input": "3", … } } }`. */
    AUTOVIBE_MODEL_PRICES: z.string().optional(),
    /** The same document read from a file (applied first; AUTOVIBE_MODEL_PRICES on top). */
    AUTOVIBE_MODEL_PRICES_FILE: z.string().optional(),
    /** Compute price-list entries over the list: `provider/region/profile/market=price,…` (`*` for any provider or region). */
    AUTOVIBE_COMPUTE_PRICES: z.string().optional(),
    /** A price-list document (config/compute-prices.json's shape) used instead of the repository's defaults (AUTOVIBE_COMPUTE_PRICES on top). */
    AUTOVIBE_COMPUTE_PRICES_FILE: z.string().optional(),
    /** How spot machines are charged: `instance` (the spot price the instance got, where the provider reports it) or `list`. */
    AUTOVIBE_SPOT_CHARGING: z.enum(['instance', 'list'], { error: 'AUTOVIBE_SPOT_CHARGING must be instance or list' }).default('instance'),
    /** Machine selection (type: auto): capability scores over the defaults, as JSON `{ "aider": { "tests": 0.8 } }`. */
    AUTOVIBE_ROUTING_CAPABILITIES: z.string().optional(),
    /** The agent types type "auto" may choose, comma-separated (default: every available agent type). */
    AUTOVIBE_ROUTING_TYPES: z
      .string()
      .regex(/^$|^[a-z-]+(,[a-z-]+)*$/, 'AUTOVIBE_ROUTING_TYPES must be comma-separated machine types such as claude-code,aider')
      .optional(),
    /** A project's quality-vs-cost knob until it sets its own (0: cheapest, 1: best). */
    AUTOVIBE_ROUTING_QUALITY: z.coerce.number().min(0).max(1, 'AUTOVIBE_ROUTING_QUALITY must be between 0 and 1').default(0.5),
    /** A project's exploration budget until it sets its own: the share of decisions picked at random. */
    AUTOVIBE_ROUTING_EXPLORATION: z.coerce.number().min(0).max(1, 'AUTOVIBE_ROUTING_EXPLORATION must be between 0 and 1').default(0.1),
    /** Share of routed machines with known failure patterns whose prompt is refined (the refinement A/B). */
    AUTOVIBE_ROUTING_REFINEMENT: z.coerce
      .number()
      .min(0, 'AUTOVIBE_ROUTING_REFINEMENT must be between 0 and 1')
      .max(1, 'AUTOVIBE_ROUTING_REFINEMENT must be between 0 and 1')
      .default(0.5),
    /** URL schemes a project's repoUrl may use, comma-separated (of https, ssh, git, http). */
    AUTOVIBE_REPO_URL_SCHEMES: z
      .string()
      .regex(/^(https|ssh|git|http)(,(https|ssh|git|http))*$/, 'must be a comma-separated list of: https, ssh, git, http')
      .default(DEFAULT_REPO_URL_SCHEMES.join(',')),
    /** Seconds a repoUrl clone may take, and the most it may bring (MiB), before it is refused and removed. */
    AUTOVIBE_CLONE_TIMEOUT_S: z.coerce.number().int().min(1).max(86_400).default(300),
    AUTOVIBE_CLONE_MAX_MB: z.coerce.number().int().min(1).default(1024),
    /** Idempotency-Key: how long a repeat waits for the request holding its key (ms), and when a held key counts as abandoned (s). */
    AUTOVIBE_IDEMPOTENCY_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
    AUTOVIBE_IDEMPOTENCY_STALE_S: z.coerce.number().int().min(1).default(900),
    /** 1: every 2xx JSON answer is checked against its route's declared response schema (a mismatch is a 500); tests turn it on. */
    AUTOVIBE_VALIDATE_RESPONSES: z.enum(['0', '1'], { error: 'AUTOVIBE_VALIDATE_RESPONSES must be 0 or 1' }).default('0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Seconds without a heartbeat before a machine's activity is considered lost and retried. */
    AUTOVIBE_HEARTBEAT_TIMEOUT_S: z.coerce.number().int().positive().default(20),
    /** Seconds a stopping worker (SIGTERM/SIGINT) has to hand its running machines over before it gives up and exits. */
    AUTOVIBE_SHUTDOWN_GRACE_S: z.coerce.number().int().positive().max(3600).default(60),
    /** Bytes of output kept per machine in the database (GET /v1/machines/:id/logs); the rest is dropped with a marker. */
    AUTOVIBE_MACHINE_LOG_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(8 * 1024 * 1024),
    /** The most one artifact (conversation, tool output, declared file) keeps in the database; larger ones are recorded without content. */
    AUTOVIBE_ARTIFACT_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(512 * 1024 * 1024)
      .default(64 * 1024 * 1024),
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
    /**
     * Per-profile overrides of the resource limits (domain/machines.ts PROFILES) as JSON, e.g.
     * `{"lightweight":{"memoryMiB":64,"pids":32,"diskMiB":16}}`: small machines for tests, bigger ones for a host.
     */
    AUTOVIBE_PROFILE_LIMITS: z
      .string()
      .default('{}')
      .transform((text, ctx) => {
        try {
          return profileLimitsSchema.parse(JSON.parse(text));
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `must be JSON like {"lightweight":{"memoryMiB":64,"pids":32,"diskMiB":16}}: ${(err as Error).message}` });
          return z.NEVER;
        }
      }),
    /** Seconds between runs of the reconciliation schedule (leaked instances, warm pools); 0 = no schedule. */
    AUTOVIBE_RECONCILE_EVERY_S: z.coerce.number().int().min(0).default(60),
    /** Instances younger than this are never reclaimed: their machine row may still be on its way. */
    AUTOVIBE_RECONCILE_MIN_AGE_S: z.coerce.number().int().min(0).default(60),
    /** Seconds between runs of the forecast-refresh schedule (spend forecasts, budget-forecast alerts); 0 = no schedule. */
    AUTOVIBE_FORECAST_EVERY_S: z.coerce.number().int().min(0).default(3600),
    /** Seconds between runs of the alert-evaluation schedule (raises and resolves alerts); 0 = no schedule. */
    AUTOVIBE_ALERTS_EVERY_S: z.coerce.number().int().min(0).default(60),
    /** Days of daily spend a forecast learns from, and days it looks ahead. */
    AUTOVIBE_FORECAST_HISTORY_DAYS: z.coerce.number().int().min(14).max(730).default(180),
    AUTOVIBE_FORECAST_HORIZON_DAYS: z.coerce.number().int().min(7).max(90).default(28),
    /** The UTC hour of the daily budget-reallocation schedule, or "off" for none. */
    AUTOVIBE_REALLOCATION_HOUR: z
      .union([z.literal('off'), z.coerce.number().int().min(0).max(23)], { error: 'must be an hour from 0 to 23, or off' })
      .default(5),
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
    /** Where repositories and snapshot chunks live for every host: dir:/shared/path or s3://bucket/prefix (unset: this host's own directories). */
    AUTOVIBE_OBJECT_STORE: z
      .string()
      .regex(/^(dir:\/.+|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/, 'AUTOVIBE_OBJECT_STORE must look like dir:/absolute/path or s3://bucket/prefix')
      .optional(),
    AUTOVIBE_OBJECT_STORE_S3_REGION: z.string().default('us-east-1'),
    AUTOVIBE_OBJECT_STORE_S3_ENDPOINT: z.url('AUTOVIBE_OBJECT_STORE_S3_ENDPOINT must be a URL such as http://127.0.0.1:5000').optional(),
    /** Platform backups (database dump, repositories, snapshot chunks): where, where copied, how often (0: no schedule), how many kept. */
    AUTOVIBE_BACKUP_DIR: z.string().optional(),
    AUTOVIBE_BACKUP_REPLICA_DIR: z.string().optional(),
    AUTOVIBE_BACKUP_EVERY_HOURS: z.coerce.number().int().min(0).default(24),
    AUTOVIBE_BACKUP_KEEP: z.coerce.number().int().min(1).default(7),
    /** Days of the project change journal kept for point-in-time recovery (pruned at each backup). */
    AUTOVIBE_PROJECT_HISTORY_DAYS: z.coerce.number().int().min(1, 'AUTOVIBE_PROJECT_HISTORY_DAYS must be at least 1 (days)').default(30),
    /** A bucket (another region's) the replica goes to instead of the replica directory: s3://bucket/prefix, its region, and an endpoint for a local S3. */
    AUTOVIBE_BACKUP_S3: z
      .string()
      .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'AUTOVIBE_BACKUP_S3 must look like s3://bucket/prefix')
      .optional(),
    AUTOVIBE_BACKUP_S3_REGION: z.string().default('us-east-1'),
    AUTOVIBE_BACKUP_S3_ENDPOINT: z.url('AUTOVIBE_BACKUP_S3_ENDPOINT must be a URL such as http://127.0.0.1:5000').optional(),
    /** Card payments: a Stripe secret key, and optionally another API base (stripe-mock in tests). */
    STRIPE_SECRET_KEY: z.string().optional(),
    STRIPE_API_BASE: z.url('STRIPE_API_BASE must be a URL such as http://127.0.0.1:12111').optional(),
    /** ETH payments: a JSON-RPC endpoint and how many confirmations make a transfer final. */
    ETH_RPC_URL: z.url('ETH_RPC_URL must be a URL').optional(),
    ETH_CONFIRMATIONS: z.coerce.number().int().min(1).max(1000).default(12),
    /** The deployment's ETH receiving address: every project's ETH invoices are paid to it (told apart by amount). */
    ETH_RECEIVING_ADDRESS: z
      .string()
      .refine((a) => isAddress(a), 'must be an ETH address: 0x and 40 hex digits (a mixed-case address must carry a valid EIP-55 checksum)')
      .optional(),
    /** TON payments: a toncenter-compatible HTTP API (v2) and its key. */
    TON_API_URL: z.url('TON_API_URL must be a URL').optional(),
    TON_API_KEY: z.string().optional(),
    /** The deployment's TON receiving address: every project's TON invoices are paid to it (told apart by comment). */
    TON_RECEIVING_ADDRESS: z
      .string()
      .refine((a) => {
        try {
          Address.parse(a);
          return true;
        } catch {
          return false;
        }
      }, 'must be a TON address (raw 0:<64 hex> or user-friendly base64)')
      .optional(),
    /** Seconds between checks of an open crypto invoice. */
    PAYMENT_POLL_SECONDS: z.coerce.number().int().min(1).max(3600).default(15),
  })
  .superRefine((e, ctx) => {
    // mTLS needs both halves of the client pair; credentials never go over plaintext.
    if (e.AUTOVIBE_TEMPORAL_TLS_CERT && !e.AUTOVIBE_TEMPORAL_TLS_KEY)
      ctx.addIssue({
        code: 'custom',
        path: ['AUTOVIBE_TEMPORAL_TLS_KEY'],
        message: 'is required when AUTOVIBE_TEMPORAL_TLS_CERT is set (mTLS needs the client certificate and its private key)',
      });
    if (e.AUTOVIBE_TEMPORAL_TLS_KEY && !e.AUTOVIBE_TEMPORAL_TLS_CERT)
      ctx.addIssue({
        code: 'custom',
        path: ['AUTOVIBE_TEMPORAL_TLS_CERT'],
        message: 'is required when AUTOVIBE_TEMPORAL_TLS_KEY is set (mTLS needs the client certificate and its private key)',
      });
    if (e.AUTOVIBE_TEMPORAL_TLS === 'off') {
      for (const name of ['AUTOVIBE_TEMPORAL_TLS_CERT', 'AUTOVIBE_TEMPORAL_TLS_CA', 'AUTOVIBE_TEMPORAL_SERVER_NAME', 'AUTOVIBE_TEMPORAL_API_KEY'] as const) {
        if (e[name])
          ctx.addIssue({
            code: 'custom',
            path: ['AUTOVIBE_TEMPORAL_TLS'],
            message: `is off but ${name} is set: it needs TLS (remove AUTOVIBE_TEMPORAL_TLS=off)`,
          });
      }
    }
    // A chain half set up would take invoices nobody can pay or check: both settings or neither.
    const pairs: Array<[string, unknown, string, unknown]> = [
      ['ETH_RPC_URL', e.ETH_RPC_URL, 'ETH_RECEIVING_ADDRESS', e.ETH_RECEIVING_ADDRESS],
      ['TON_API_URL', e.TON_API_URL, 'TON_RECEIVING_ADDRESS', e.TON_RECEIVING_ADDRESS],
    ];
    for (const [a, av, b, bv] of pairs) {
      if (av && !bv)
        ctx.addIssue({ code: 'custom', path: [b], message: `is required when ${a} is set (the deployment's own receiving address; tenants cannot give one)` });
      if (bv && !av) ctx.addIssue({ code: 'custom', path: [a], message: `is required when ${b} is set (where the worker reads that chain)` });
    }
  });

export interface TemporalTlsConfig {
  enabled: boolean;
  /** mTLS client certificate and key: each a file path or the PEM text. */
  cert: string | undefined;
  key: string | undefined;
  /** CA bundle the server's certificate must chain to (default: the system's roots). */
  ca: string | undefined;
  serverName: string | undefined;
}

export interface Config {
  home: string;
  databaseUrl: string | undefined;
  temporalAddress: string | undefined;
  temporalNamespace: string;
  /** How to reach Temporal securely; temporalConnectionOptions (config/temporal.ts) turns it into SDK options. */
  temporalTls: TemporalTlsConfig;
  temporalApiKey: string | undefined;
  /** The control queue (every workflow and the bookkeeping activities); machine queues are named after it (domain/queues.ts). */
  taskQueue: string;
  /** What this process's worker serves and how much at once (README "Task queues and workers"). */
  worker: {
    roles: WorkerRole[];
    /** Providers whose machine queues it serves; null = every provider it has. */
    providers: ProviderId[] | null;
    host: string;
    controlConcurrency: number;
    machineConcurrency: number;
    hostQueueWaitSeconds: number;
  };
  /** Whether workflows are started with the AutoVibe* search attributes. */
  searchAttributes: boolean;
  /** The Temporal Web UI the dashboard links each run to (npm start: the embedded server's). */
  temporalUiUrl: string | undefined;
  /** Bearer token GET /metrics requires; none = open (keep /metrics off the public network). */
  metricsToken: string | undefined;
  /** Where the Temporal SDK's Prometheus exporter listens in a worker process. */
  temporalMetricsAddress: string | undefined;
  port: number;
  host: string;
  adminKey: string | undefined;
  /** AUTOVIBE_SECRETS_KEY: the keys secrets at rest are sealed with, the sealing one first; null: the key file in home. */
  secretsKeys: Buffer[] | null;
  /** Requests per API key per minute. */
  rateLimitPerMinute: number;
  /** Incoming hooks per integration per minute (per api process). */
  hookRateLimitPerMinute: number;
  /** Operations one POST /v1/batch may carry. */
  batchMaxOperations: number;
  /** Workflows a worker keeps cached in memory; undefined: the Temporal SDK's default. */
  workerMaxCachedWorkflows: number | undefined;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /** Check every 2xx JSON answer against its route's declared response schema. */
  validateResponses: boolean;
  heartbeatTimeoutSeconds: number;
  /** Seconds a stopping worker has to hand its running machines over (then it exits regardless). */
  shutdownGraceSeconds: number;
  /** Bytes of output kept per machine in the database. */
  machineLogBytes: number;
  /** The most one artifact keeps in the database. */
  artifactMaxBytes: number;
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
  /** Machine network: registries beyond the built-in list, and the private `ip:port` addresses machines may reach anyway. */
  network: { registryHosts: string[]; allowPrivate: string[] };
  warmPools: Array<{ provider: string; profile: string; min: number; max: number }>;
  reconcileEverySeconds: number;
  reconcileMinAgeSeconds: number;
  /** The forecast-refresh schedule: every `everySeconds` (0: none), learning from `historyDays`, `horizonDays` ahead. */
  forecast: { everySeconds: number; historyDays: number; horizonDays: number };
  /** The UTC hour the daily budget-reallocation schedule runs at; null: no schedule. */
  reallocationHour: number | null;
  /** The alert-evaluation schedule: every `everySeconds` (0: none). */
  alerts: { everySeconds: number };
  /** Overrides of the profiles' resource limits (AUTOVIBE_PROFILE_LIMITS). */
  profileLimits: Record<string, Partial<ResourceLimits>>;
  /** Most machines each provider runs at once (providers not named: no limit). */
  providerCapacity: Record<string, number>;
  fx: { ecbUrl: string | null; cryptoUrl: string | null; fixedRates: string; ttlSeconds: number; maxStaleSeconds: number; retrySeconds: number };
  /** Chunk-store directories by region: `primary` takes every snapshot, `replica` a copy of each. */
  snapshotRegions: { primary: string; replica: string };
  /** Days the project change journal reaches back (point-in-time recovery of a project). */
  projectHistoryDays: number;
  /**
   * The store every host shares for repositories (git bundles per checkpoint) and snapshot chunks;
   * null: this host's own directories (projectsDir, snapshotRegions.primary) are the only copy.
   * When set, those directories are this host's cache of it.
   */
  objectStore: { kind: 'dir'; dir: string } | { kind: 's3'; url: string; region: string; endpoint: string | undefined } | null;
  /** Platform backups: the primary and replica directories, the schedule's interval (0: none) and how many are kept. */
  backups: {
    dir: string;
    replicaDir: string;
    everyHours: number;
    keep: number;
    /** When set, the replica is this bucket (its credentials from the AWS environment) instead of replicaDir. */
    s3: { url: string; region: string; endpoint: string | undefined } | null;
  };
  payments: PaymentsConfig;
  /** USD prices of model tokens by agent type and model (defaults in domain/machine-types.ts); an unpriced model is refused. */
  modelPrices: PriceTables;
  /** Compute prices by provider, region, profile and market (config/compute-prices.json and the deployment's overrides). */
  computePrices: ComputePriceList;
  /** Whether a spot machine is charged the spot price its instance got (`instance`) or its list price. */
  spotCharging: SpotCharging;
  /** Machine selection (type: auto): capability table and the default knob and exploration budget. */
  routing: { capabilities: CapabilityTable; quality: number; exploration: number; refinement: number; types: AgentType[] };
  /** What a project's repoUrl may be and how much a clone may take. */
  repos: { schemes: RepoUrlScheme[]; cloneTimeoutMs: number; cloneMaxBytes: number };
  idempotency: { waitMs: number; staleAfterSeconds: number };
  webhooks: WebhooksConfig;
  /** The environment credentials and model endpoints are read from (never passed to sandboxes). */
  env: NodeJS.ProcessEnv;
}

export interface WebhooksConfig {
  /** Base URL of the dashboard in Slack links; undefined: the api's own address. */
  publicUrl: string | undefined;
  allowPrivate: boolean;
  /** Attempts per delivery (Temporal retry policy: exponential backoff, coefficient 3). */
  maxAttempts: number;
  retryInitialMs: number;
  retryMaxSeconds: number;
  /** One attempt's HTTP timeout. */
  timeoutSeconds: number;
  /** An endpoint is disabled after this many events in a row failed, or after failing this long. */
  disableAfterFailures: number;
  disableAfterHours: number;
}

export interface PaymentsConfig {
  stripe: { secretKey: string; apiBase: string | undefined } | undefined;
  /** `address`: the deployment's receiving address (EIP-55 checksummed), never a tenant's. */
  eth: { rpcUrl: string; confirmations: number; address: string } | undefined;
  /** `address`: the deployment's receiving address (as configured), never a tenant's. */
  ton: { apiUrl: string; apiKey: string | undefined; address: string } | undefined;
  pollSeconds: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * A host queue stands for one workspaces directory: two workers on one machine with their own
 * AUTOVIBE_HOME get different names, two sharing one the same.
 */
function defaultWorkerHost(workspacesDir: string): string {
  const name =
    os
      .hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 80) || 'host';
  return `${name}-${crypto.createHash('sha256').update(path.resolve(workspacesDir)).digest('hex').slice(0, 8)}`;
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
  const modelPrices = loadModelPrices(e.AUTOVIBE_MODEL_PRICES_FILE, e.AUTOVIBE_MODEL_PRICES);
  const computePrices = loadComputePrices(e.AUTOVIBE_COMPUTE_PRICES_FILE, e.AUTOVIBE_COMPUTE_PRICES);
  return {
    home,
    databaseUrl: e.DATABASE_URL || undefined,
    temporalAddress: e.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    temporalTls: {
      enabled: e.AUTOVIBE_TEMPORAL_TLS
        ? e.AUTOVIBE_TEMPORAL_TLS === 'on'
        : Boolean(e.AUTOVIBE_TEMPORAL_TLS_CERT || e.AUTOVIBE_TEMPORAL_TLS_CA || e.AUTOVIBE_TEMPORAL_SERVER_NAME || e.AUTOVIBE_TEMPORAL_API_KEY),
      cert: e.AUTOVIBE_TEMPORAL_TLS_CERT || undefined,
      key: e.AUTOVIBE_TEMPORAL_TLS_KEY || undefined,
      ca: e.AUTOVIBE_TEMPORAL_TLS_CA || undefined,
      serverName: e.AUTOVIBE_TEMPORAL_SERVER_NAME || undefined,
    },
    temporalApiKey: e.AUTOVIBE_TEMPORAL_API_KEY || undefined,
    taskQueue: e.TEMPORAL_TASK_QUEUE,
    worker: {
      roles: [...new Set(e.AUTOVIBE_WORKER_ROLES.split(','))] as WorkerRole[],
      providers: e.AUTOVIBE_WORKER_PROVIDERS ? ([...new Set(e.AUTOVIBE_WORKER_PROVIDERS.split(','))] as ProviderId[]) : null,
      host: e.AUTOVIBE_WORKER_HOST ?? defaultWorkerHost(path.join(home, 'workspaces')),
      controlConcurrency: e.AUTOVIBE_WORKER_CONTROL_CONCURRENCY,
      machineConcurrency: e.AUTOVIBE_WORKER_MACHINE_CONCURRENCY,
      hostQueueWaitSeconds: e.AUTOVIBE_HOST_QUEUE_WAIT_S,
    },
    searchAttributes: e.AUTOVIBE_SEARCH_ATTRIBUTES === 'on',
    temporalUiUrl: e.AUTOVIBE_TEMPORAL_UI_URL,
    metricsToken: e.AUTOVIBE_METRICS_TOKEN,
    temporalMetricsAddress: e.AUTOVIBE_TEMPORAL_METRICS_ADDRESS,
    port: e.PORT,
    host: e.HOST,
    adminKey: e.AUTOVIBE_ADMIN_KEY,
    secretsKeys: e.AUTOVIBE_SECRETS_KEY ? e.AUTOVIBE_SECRETS_KEY.split(',').map((k) => Buffer.from(k.trim(), 'base64')) : null,
    rateLimitPerMinute: e.AUTOVIBE_RATE_LIMIT,
    hookRateLimitPerMinute: e.AUTOVIBE_HOOK_RATE_LIMIT,
    batchMaxOperations: e.AUTOVIBE_BATCH_MAX_OPERATIONS,
    workerMaxCachedWorkflows: e.AUTOVIBE_WORKER_MAX_CACHED_WORKFLOWS,
    logLevel: e.LOG_LEVEL,
    validateResponses: e.AUTOVIBE_VALIDATE_RESPONSES === '1',
    heartbeatTimeoutSeconds: e.AUTOVIBE_HEARTBEAT_TIMEOUT_S,
    shutdownGraceSeconds: e.AUTOVIBE_SHUTDOWN_GRACE_S,
    machineLogBytes: e.AUTOVIBE_MACHINE_LOG_BYTES,
    artifactMaxBytes: e.AUTOVIBE_ARTIFACT_MAX_BYTES,
    projectsDir: path.join(home, 'projects'),
    workspacesDir: path.join(home, 'workspaces'),
    machinesDir: path.join(home, 'machines'),
    artifactsDir: path.join(home, 'artifacts'),
    toolsDir: path.resolve(e.AUTOVIBE_TOOLS_DIR),
    containerImage: e.AUTOVIBE_CONTAINER_IMAGE,
    containerAgentRuntime: e.AUTOVIBE_CONTAINER_AGENT_RUNTIME,
    network: {
      registryHosts: [
        ...REGISTRY_HOSTS,
        ...e.AUTOVIBE_NETWORK_REGISTRY_HOSTS.split(',')
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean),
      ],
      allowPrivate: e.AUTOVIBE_NETWORK_ALLOW_PRIVATE.split(',')
        .filter(Boolean)
        .map((a) => a.replace(/^\[|\](?=:\d+$)/g, '').toLowerCase()),
    },
    warmPools: e.AUTOVIBE_WARM_POOLS.split(',')
      .filter(Boolean)
      .map((spec) => {
        const [key, range] = spec.split('=') as [string, string];
        const [provider, profile] = key.split(':') as [string, string];
        const [min, max] = range.split('..').map(Number) as [number, number | undefined];
        return { provider, profile, min, max: Math.max(min, max ?? min) };
      }),
    reconcileEverySeconds: e.AUTOVIBE_RECONCILE_EVERY_S,
    profileLimits: e.AUTOVIBE_PROFILE_LIMITS,
    providerCapacity: Object.fromEntries(
      e.AUTOVIBE_PROVIDER_CAPACITY.split(',')
        .filter(Boolean)
        .map((spec) => {
          const [provider, n] = spec.split('=') as [string, string];
          return [provider, Number(n)];
        }),
    ),
    reconcileMinAgeSeconds: e.AUTOVIBE_RECONCILE_MIN_AGE_S,
    forecast: { everySeconds: e.AUTOVIBE_FORECAST_EVERY_S, historyDays: e.AUTOVIBE_FORECAST_HISTORY_DAYS, horizonDays: e.AUTOVIBE_FORECAST_HORIZON_DAYS },
    reallocationHour: e.AUTOVIBE_REALLOCATION_HOUR === 'off' ? null : e.AUTOVIBE_REALLOCATION_HOUR,
    alerts: { everySeconds: e.AUTOVIBE_ALERTS_EVERY_S },
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
    projectHistoryDays: e.AUTOVIBE_PROJECT_HISTORY_DAYS,
    objectStore: !e.AUTOVIBE_OBJECT_STORE
      ? null
      : e.AUTOVIBE_OBJECT_STORE.startsWith('dir:')
        ? { kind: 'dir', dir: path.resolve(e.AUTOVIBE_OBJECT_STORE.slice('dir:'.length)) }
        : { kind: 's3', url: e.AUTOVIBE_OBJECT_STORE, region: e.AUTOVIBE_OBJECT_STORE_S3_REGION, endpoint: e.AUTOVIBE_OBJECT_STORE_S3_ENDPOINT },
    backups: {
      dir: path.resolve(e.AUTOVIBE_BACKUP_DIR ?? path.join(home, 'backups', 'primary')),
      replicaDir: path.resolve(e.AUTOVIBE_BACKUP_REPLICA_DIR ?? path.join(home, 'backups', 'replica')),
      everyHours: e.AUTOVIBE_BACKUP_EVERY_HOURS,
      keep: e.AUTOVIBE_BACKUP_KEEP,
      s3: e.AUTOVIBE_BACKUP_S3 ? { url: e.AUTOVIBE_BACKUP_S3, region: e.AUTOVIBE_BACKUP_S3_REGION, endpoint: e.AUTOVIBE_BACKUP_S3_ENDPOINT } : null,
    },
    payments: {
      stripe: e.STRIPE_SECRET_KEY ? { secretKey: e.STRIPE_SECRET_KEY, apiBase: e.STRIPE_API_BASE } : undefined,
      eth:
        e.ETH_RPC_URL && e.ETH_RECEIVING_ADDRESS
          ? { rpcUrl: e.ETH_RPC_URL, confirmations: e.ETH_CONFIRMATIONS, address: getAddress(e.ETH_RECEIVING_ADDRESS) }
          : undefined,
      ton: e.TON_API_URL && e.TON_RECEIVING_ADDRESS ? { apiUrl: e.TON_API_URL, apiKey: e.TON_API_KEY, address: e.TON_RECEIVING_ADDRESS } : undefined,
      pollSeconds: e.PAYMENT_POLL_SECONDS,
    },
    modelPrices,
    computePrices,
    spotCharging: e.AUTOVIBE_SPOT_CHARGING,
    routing: {
      capabilities: loadCapabilities(e.AUTOVIBE_ROUTING_CAPABILITIES),
      quality: e.AUTOVIBE_ROUTING_QUALITY,
      exploration: e.AUTOVIBE_ROUTING_EXPLORATION,
      refinement: e.AUTOVIBE_ROUTING_REFINEMENT,
      types: routingTypes(e.AUTOVIBE_ROUTING_TYPES),
    },
    repos: {
      schemes: [...new Set(e.AUTOVIBE_REPO_URL_SCHEMES.split(','))] as RepoUrlScheme[],
      cloneTimeoutMs: e.AUTOVIBE_CLONE_TIMEOUT_S * 1000,
      cloneMaxBytes: e.AUTOVIBE_CLONE_MAX_MB * 1024 * 1024,
    },
    idempotency: { waitMs: e.AUTOVIBE_IDEMPOTENCY_WAIT_MS, staleAfterSeconds: e.AUTOVIBE_IDEMPOTENCY_STALE_S },
    webhooks: {
      publicUrl: e.AUTOVIBE_PUBLIC_URL,
      allowPrivate: e.AUTOVIBE_WEBHOOK_ALLOW_PRIVATE === '1',
      maxAttempts: e.AUTOVIBE_WEBHOOK_MAX_ATTEMPTS,
      retryInitialMs: e.AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS,
      retryMaxSeconds: e.AUTOVIBE_WEBHOOK_RETRY_MAX_S,
      timeoutSeconds: e.AUTOVIBE_WEBHOOK_TIMEOUT_S,
      disableAfterFailures: e.AUTOVIBE_WEBHOOK_DISABLE_AFTER_FAILURES,
      disableAfterHours: e.AUTOVIBE_WEBHOOK_DISABLE_AFTER_HOURS,
    },
    env,
  };
}

/**
 * The compute price list: AUTOVIBE_COMPUTE_PRICES_FILE's list, or config/compute-prices.json without
 * one; then the variable's entries on top. Every problem named.
 */
function loadComputePrices(file: string | undefined, inline: string | undefined): ComputePriceList {
  const read = (name: string, text: () => string, origin: 'default' | 'override'): ComputePriceList => {
    let doc: unknown;
    try {
      doc = JSON.parse(text());
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${name}: ${(err as Error).message}`);
    }
    const parsed = parsePriceList(doc, origin);
    if (!parsed.ok) throw new ConfigError(`invalid configuration: ${parsed.problems.map((p) => `${name}: ${p}`).join('; ')}`);
    return parsed.list;
  };
  let list = file
    ? read(`AUTOVIBE_COMPUTE_PRICES_FILE (${file})`, () => fs.readFileSync(file, 'utf8'), 'override')
    : read('config/compute-prices.json', () => fs.readFileSync(new URL('./compute-prices.json', import.meta.url), 'utf8'), 'default');
  if (inline) {
    const parsed = parseInlinePrices(inline);
    if (!parsed.ok) throw new ConfigError(`invalid configuration: ${parsed.problems.map((p) => `AUTOVIBE_COMPUTE_PRICES: ${p}`).join('; ')}`);
    list = mergePrices(list, parsed.entries);
  }
  return list;
}

/** The agent types type "auto" may choose: the list given (each an agent type), else all of them. */
function routingTypes(list: string | undefined): AgentType[] {
  if (!list) return [...AGENT_TYPES];
  const names = [...new Set(list.split(','))];
  const unknown = names.filter((n) => !(AGENT_TYPES as readonly string[]).includes(n));
  if (unknown.length)
    throw new ConfigError(`invalid configuration: AUTOVIBE_ROUTING_TYPES: not agent machine types: ${unknown.join(', ')} (of ${AGENT_TYPES.join(', ')})`);
  return names as AgentType[];
}

/** The capability table: the defaults with AUTOVIBE_ROUTING_CAPABILITIES's entries over them. */
function loadCapabilities(json: string | undefined): CapabilityTable {
  const table: CapabilityTable = structuredClone(DEFAULT_CAPABILITIES);
  if (!json) return table;
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new ConfigError(`invalid configuration: AUTOVIBE_ROUTING_CAPABILITIES: ${(err as Error).message}`);
  }
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) problems.push('must be an object of machine type → { class: score }');
  else {
    for (const [type, scores] of Object.entries(doc as Record<string, unknown>)) {
      if (!(AGENT_TYPES as readonly string[]).includes(type)) problems.push(`${type}: not an agent machine type (${AGENT_TYPES.join(', ')})`);
      else if (!scores || typeof scores !== 'object') problems.push(`${type}: must be an object of class → score`);
      else {
        for (const [cls, v] of Object.entries(scores as Record<string, unknown>)) {
          if (!(OPERATION_CLASSES as readonly string[]).includes(cls))
            problems.push(`${type}.${cls}: not an operation class (${OPERATION_CLASSES.join(', ')})`);
          else if (typeof v !== 'number' || v < 0 || v > 1) problems.push(`${type}.${cls}: must be a number between 0 and 1`);
          else table[type] = { ...table[type], [cls]: v };
        }
      }
    }
  }
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.map((p) => `AUTOVIBE_ROUTING_CAPABILITIES: ${p}`).join('; ')}`);
  return table;
}

/** The price tables: the defaults, then the file's overrides, then the variable's; every problem named. */
function loadModelPrices(file: string | undefined, json: string | undefined): PriceTables {
  let tables = defaultPriceTables();
  const sources: Array<[string, () => string]> = [];
  if (file) sources.push([`AUTOVIBE_MODEL_PRICES_FILE (${file})`, () => fs.readFileSync(file, 'utf8')]);
  if (json) sources.push(['AUTOVIBE_MODEL_PRICES', () => json]);
  for (const [name, read] of sources) {
    let doc: unknown;
    try {
      doc = JSON.parse(read());
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${name}: ${(err as Error).message}`);
    }
    const applied = applyPriceOverrides(tables, doc);
    if (!applied.ok) throw new ConfigError(`invalid configuration: ${applied.problems.map((p) => `${name}: ${p}`).join('; ')}`);
    tables = applied.tables;
  }
  return tables;
}
