/**
 * The one place that turns the configuration into Temporal connection options (README "Temporal
 * connection"): every process that connects (api, worker, npm start against an external server,
 * scripts) passes these to Connection.connect / NativeConnection.connect. Plain TCP, TLS (system
 * roots or a private CA, optional server name override), mTLS (client certificate and key) and a
 * Temporal Cloud API key.
 */
import fs from 'node:fs';
import { ConfigError, type Config } from './index.js';

/** What both Connection.connect (client) and NativeConnection.connect (worker) accept. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: {
    serverNameOverride?: string;
    serverRootCACertificate?: Buffer;
    clientCertPair?: { crt: Buffer; key: Buffer };
  };
  apiKey?: string;
}

/** A PEM given inline (a secret injected as an environment variable) or the path of a file holding it. */
function pem(variable: string, value: string, readFile: (file: string) => Buffer): Buffer {
  if (value.trimStart().startsWith('-----BEGIN')) return Buffer.from(value);
  try {
    return readFile(value);
  } catch (err) {
    throw new ConfigError(
      `${variable}: cannot read ${value} (${(err as NodeJS.ErrnoException).code ?? String(err)}); give the path of a PEM file or the PEM text`,
    );
  }
}

/**
 * Connection options for `address` (default the configured TEMPORAL_ADDRESS). Throws ConfigError
 * naming the variable when a certificate, key or CA cannot be read, so a process refuses to start.
 */
export function temporalConnectionOptions(
  config: Pick<Config, 'temporalAddress' | 'temporalTls' | 'temporalApiKey'>,
  address: string | undefined = config.temporalAddress,
  readFile: (file: string) => Buffer = (file) => fs.readFileSync(file),
): TemporalConnectionOptions {
  if (!address) throw new ConfigError('TEMPORAL_ADDRESS is required (host:port of the Temporal frontend)');
  const t = config.temporalTls;
  const options: TemporalConnectionOptions = { address };
  if (t.enabled) {
    options.tls = {
      ...(t.serverName ? { serverNameOverride: t.serverName } : {}),
      ...(t.ca ? { serverRootCACertificate: pem('AUTOVIBE_TEMPORAL_TLS_CA', t.ca, readFile) } : {}),
      ...(t.cert && t.key
        ? { clientCertPair: { crt: pem('AUTOVIBE_TEMPORAL_TLS_CERT', t.cert, readFile), key: pem('AUTOVIBE_TEMPORAL_TLS_KEY', t.key, readFile) } }
        : {}),
    };
  }
  if (config.temporalApiKey) options.apiKey = config.temporalApiKey;
  return options;
}

/** What may be logged about the connection: the address and which kind of security, never key material. */
export function describeTemporalConnection(options: TemporalConnectionOptions): { address: string; tls: boolean; mtls: boolean; apiKey: boolean } {
  return { address: options.address, tls: Boolean(options.tls), mtls: Boolean(options.tls?.clientCertPair), apiKey: Boolean(options.apiKey) };
}
