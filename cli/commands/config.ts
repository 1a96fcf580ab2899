import type { Command } from 'commander';
import { configPath, maskKey, PROFILE_KEYS, profileName, readConfig, resolveConnection, writeConfig, type ProfileKey } from '../config.js';
import { UsageError } from '../errors.js';
import { printJson, printTable } from '../output.js';
import { jsonMode, type Globals } from '../runtime.js';

function profileKey(key: string): ProfileKey {
  if (!(key in PROFILE_KEYS)) throw new UsageError(`unknown setting "${key}": one of ${Object.keys(PROFILE_KEYS).join(', ')}`);
  return key as ProfileKey;
}

export function registerConfig(program: Command): void {
  const config = program.command('config').description(`profiles (API URL and key) in ${configPath()}`);

  config
    .command('set <setting> <value>')
    .description(`set api-url or api-key of a profile (--profile, else the current one); the file is 0600`)
    .action((setting: string, value: string, _o, cmd: Command) => {
      const field = PROFILE_KEYS[profileKey(setting)];
      if (field === 'apiUrl' && !/^https?:\/\/[^\s]+$/.test(value)) throw new UsageError('api-url: must be an http(s) URL');
      const file = readConfig();
      const name = profileName(cmd.optsWithGlobals<Globals>().profile, file);
      file.profiles[name] = { ...file.profiles[name], [field]: field === 'apiUrl' ? value.replace(/\/+$/, '') : value };
      file.current ??= name;
      writeConfig(file);
      process.stderr.write(`${setting} set for profile ${name}\n`);
    });

  config
    .command('get <setting>')
    .description('print a setting of the profile in force (environment variables included); the key in full')
    .action((setting: string, _o, cmd: Command) => {
      const field = PROFILE_KEYS[profileKey(setting)];
      const conn = resolveConnection(cmd.optsWithGlobals<Globals>().profile);
      const value = conn[field] ?? '';
      if (jsonMode(cmd)) printJson({ profile: conn.profile, [setting]: value });
      else process.stdout.write(`${value}\n`);
    });

  config
    .command('list')
    .description('profiles, their URL and (masked) key; * marks the current one')
    .action((_o, cmd: Command) => {
      const file = readConfig();
      const current = profileName(undefined, file);
      const rows = Object.entries(file.profiles).map(([name, p]) => ({
        name,
        current: name === current,
        apiUrl: p.apiUrl ?? null,
        apiKey: maskKey(p.apiKey),
      }));
      if (jsonMode(cmd)) return printJson({ file: configPath(), current, profiles: rows });
      printTable(rows, [
        ['', (r) => (r.current ? '*' : '')],
        ['profile', (r) => r.name],
        ['api url', (r) => r.apiUrl],
        ['api key', (r) => r.apiKey],
      ]);
    });

  config
    .command('use <profile>')
    .description('make a profile the current one')
    .action((name: string) => {
      const file = readConfig();
      if (!file.profiles[name]) throw new UsageError(`no profile "${name}" (autovibe config set api-url <url> --profile ${name})`);
      file.current = name;
      writeConfig(file);
      process.stderr.write(`current profile: ${name}\n`);
    });
}
