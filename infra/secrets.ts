/**
 * The platform's secrets in Secrets Manager. Only the api and worker task execution roles may read
 * them (iam.ts), each only the ones it is given; ECS injects them as environment variables.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { Database } from './database.js';
import { temporalUsesTls, type Settings } from './settings.js';
import { prefix, tagsFor } from './tags.js';

export interface PlatformSecret {
  /** The environment variable the container reads it from. */
  env: string;
  secret: aws.secretsmanager.Secret;
}

export interface Secrets {
  /** Secrets the api gets. */
  api: PlatformSecret[];
  /** Secrets the worker gets. */
  worker: PlatformSecret[];
  all: aws.secretsmanager.Secret[];
  /** Plain (non-secret) Temporal settings for both. */
  temporalEnv: { name: string; value: string }[];
}

export function createSecrets(s: Settings, db: Database): Secrets {
  const name = prefix(s);
  const all: aws.secretsmanager.Secret[] = [];
  const secret = (id: string, env: string, value: pulumi.Input<string>): PlatformSecret => {
    const sm = new aws.secretsmanager.Secret(`${name}-${id}`, {
      name: `${name}/${id}`,
      recoveryWindowInDays: s.environment === 'prod' ? 30 : 7,
      tags: tagsFor(s, 'secrets'),
    });
    new aws.secretsmanager.SecretVersion(`${name}-${id}`, { secretId: sm.id, secretString: value });
    all.push(sm);
    return { env, secret: sm };
  };
  const databaseUrl = secret(
    'database-url',
    'DATABASE_URL',
    pulumi.interpolate`postgres://${db.instance.username}:${s.database.password.apply(encodeURIComponent)}@${db.instance.address}:${db.instance.port}/${db.instance.dbName}?sslmode=require`,
  );
  const adminKey = secret('admin-key', 'AUTOVIBE_ADMIN_KEY', s.adminKey);
  const secretsKey = secret('secrets-key', 'AUTOVIBE_SECRETS_KEY', s.secretsKey);
  const t = s.temporal;
  const temporal: PlatformSecret[] = [];
  // PEM contents go into the same variables that otherwise hold file paths (README "Temporal connection").
  if (t.clientCert) temporal.push(secret('temporal-client-cert', 'AUTOVIBE_TEMPORAL_TLS_CERT', t.clientCert));
  if (t.clientKey) temporal.push(secret('temporal-client-key', 'AUTOVIBE_TEMPORAL_TLS_KEY', t.clientKey));
  if (t.apiKey) temporal.push(secret('temporal-api-key', 'AUTOVIBE_TEMPORAL_API_KEY', t.apiKey));
  const temporalEnv = [
    { name: 'TEMPORAL_ADDRESS', value: t.address },
    { name: 'TEMPORAL_NAMESPACE', value: t.namespace },
    { name: 'AUTOVIBE_TEMPORAL_TLS', value: temporalUsesTls(t) ? 'on' : 'off' },
    ...(t.serverName ? [{ name: 'AUTOVIBE_TEMPORAL_SERVER_NAME', value: t.serverName }] : []),
  ];
  if (t.serverCa) temporal.push(secret('temporal-server-ca', 'AUTOVIBE_TEMPORAL_TLS_CA', t.serverCa));
  return { api: [databaseUrl, adminKey, secretsKey, ...temporal], worker: [databaseUrl, secretsKey, ...temporal], all, temporalEnv };
}
