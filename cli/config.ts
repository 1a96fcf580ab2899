import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { UsageError } from './errors.js';

/**
 * Profiles in $XDG_CONFIG_HOME/autovibe/config.yaml (default ~/.config), written 0600 because
 * it holds API keys:
 *
 *   current: default
 *   profiles:
 *     default: { apiUrl: http://127.0.0.1:3000, apiKey: av_… }
 */
export interface Profile {
  apiUrl?: string;
  apiKey?: string;
}
export interface ConfigFile {
  current?: string;
  profiles: Record<string, Profile>;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';
/** Settable keys: the CLI spelling and the field in the file. */
export const PROFILE_KEYS = { 'api-url': 'apiUrl', 'api-key': 'apiKey' } as const;
export type ProfileKey = keyof typeof PROFILE_KEYS;

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'autovibe', 'config.yaml');
}

export function readConfig(file = configPath()): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw e;
  }
  const parsed = (YAML.parse(text) ?? {}) as Partial<ConfigFile>;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${file}: not a mapping`);
  return { ...(parsed.current ? { current: String(parsed.current) } : {}), profiles: parsed.profiles ?? {} };
}

export function writeConfig(config: ConfigFile, file = configPath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Written beside and renamed: a crash never leaves half a file; the mode is set before any key is in it.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, YAML.stringify(config), { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

export function profileName(given: string | undefined, config: ConfigFile, env: NodeJS.ProcessEnv = process.env): string {
  return given || env.AUTOVIBE_PROFILE || config.current || 'default';
}

export interface Connection {
  apiUrl: string;
  apiKey: string | undefined;
  profile: string;
  /** Where the key came from, for `whoami` and error messages. */
  keySource: string;
}

/**
 * The api URL and key in force: AUTOVIBE_API_URL / AUTOVIBE_API_KEY, else the profile, else the
 * local platform `npm start` runs (its URL, and the admin key it keeps in .autovibe/admin-key).
 */
export function resolveConnection(profileFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): Connection {
  const config = readConfig(configPath(env));
  const profile = profileName(profileFlag, config, env);
  const p = config.profiles[profile] ?? {};
  if (profileFlag && !config.profiles[profileFlag] && !env.AUTOVIBE_API_URL) {
    throw new UsageError(`no profile "${profileFlag}" in ${configPath(env)} (autovibe config set api-url <url> --profile ${profileFlag})`);
  }
  const apiUrl = (env.AUTOVIBE_API_URL || p.apiUrl || DEFAULT_API_URL).replace(/\/+$/, '');
  if (env.AUTOVIBE_API_KEY) return { apiUrl, apiKey: env.AUTOVIBE_API_KEY, profile, keySource: 'AUTOVIBE_API_KEY' };
  if (p.apiKey) return { apiUrl, apiKey: p.apiKey, profile, keySource: `profile ${profile}` };
  const local = path.join(env.AUTOVIBE_HOME || path.join(process.cwd(), '.autovibe'), 'admin-key');
  try {
    return { apiUrl, apiKey: fs.readFileSync(local, 'utf8').trim(), profile, keySource: local };
  } catch {
    return { apiUrl, apiKey: undefined, profile, keySource: 'none' };
  }
}

/** A key shown in listings: enough to recognise it, never enough to use it. */
export function maskKey(key: string | undefined): string {
  if (!key) return '';
  return key.length <= 12 ? '****' : `${key.slice(0, 8)}…${key.slice(-4)}`;
}
