import type { Command } from 'commander';
import { ok } from '../client.js';
import { UsageError } from '../errors.js';
import { printRecord } from '../output.js';
import { need, readStdin } from '../prompt.js';
import { ctxOf, show } from '../runtime.js';
import { projectChoices } from './projects.js';

const REMOTE_FIELDS = ['projectId', 'url', 'username', 'hasToken', 'updatedBy', 'updatedAt'];

/** remotes set|get|delete|fetch, and checkpoints push: a project's git remote and its periodic fetch (README "Git remotes"). */
export function registerRemotes(program: Command): void {
  const remotes = program.command('remotes').description("a project's git remote: push checkpoints as branches, fetch branches as checkpoints");

  remotes
    .command('set <project> <url>')
    .description('set the git remote (https://, http:// or git://); the token is kept and never shown back')
    .option('--username <name>', 'user name sent with the token (default x-access-token)')
    .option('--token-stdin', 'read the token from stdin (or set AUTOVIBE_GIT_TOKEN); never give it as an argument')
    .option('--fetch <branches>', 'fetch these branches periodically (comma-separated); each new tip becomes an imported checkpoint')
    .option('--fetch-every <minutes>', 'how often the --fetch branches are fetched', '60')
    .action(async (project: string, url: string, o: { username?: string; tokenStdin?: boolean; fetch?: string; fetchEvery: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const token = o.tokenStdin ? await readStdin() : process.env.AUTOVIBE_GIT_TOKEN || undefined;
      if (o.tokenStdin && !token) throw new UsageError('--token-stdin: stdin was empty');
      const everyMinutes = Number(o.fetchEvery);
      if (o.fetch && !(Number.isInteger(everyMinutes) && everyMinutes > 0)) throw new UsageError('--fetch-every: give a whole number of minutes');
      const branches = o.fetch
        ?.split(',')
        .map((b) => b.trim())
        .filter(Boolean);
      const r = await ok(
        api.PUT('/projects/{id}/git-remote', {
          params: { path: { id: project } },
          body: {
            url,
            ...(o.username ? { username: o.username } : {}),
            ...(token ? { token } : {}),
            ...(branches?.length ? { fetch: { branches, everyMinutes } } : {}),
          },
        }),
      );
      show(cmd, r, (v) => printRecord(v, REMOTE_FIELDS));
    });

  remotes
    .command('get [project]')
    .description('the git remote: url, username, whether a token is kept')
    .action(async (project: string | undefined, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const id = await need(project, { flag: '<project>', message: 'Project', choices: () => projectChoices(api) });
      const r = await ok(api.GET('/projects/{id}/git-remote', { params: { path: { id } } }));
      show(cmd, r, (v) => {
        printRecord(v, REMOTE_FIELDS);
        if (v.fetch) {
          const f = v.fetch;
          const last = f.lastResult?.map((o) => `${o.branch} ${o.status}${o.checkpointId ? ` ${o.checkpointId}` : ''}${o.error ? ` (${o.error})` : ''}`);
          process.stdout.write(
            `fetch: ${f.branches.join(', ')} every ${f.everyMinutes} min; next ${f.nextRunAt ?? 'unknown'}; last ${f.lastRunAt ?? 'never'}${last?.length ? `: ${last.join('; ')}` : ''}\n`,
          );
        }
      });
    });

  remotes
    .command('delete <project>')
    .description('remove the git remote and its token')
    .action(async (project: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await ok(api.DELETE('/projects/{id}/git-remote', { params: { path: { id: project } } }));
      show(cmd, { projectId: project, deleted: true }, () => process.stdout.write(`git remote of ${project} removed\n`));
    });

  remotes
    .command('fetch <project>')
    .description('fetch a branch of the remote; its tip becomes an imported checkpoint in the evolution tree')
    .requiredOption('--branch <name>', 'the remote branch')
    .action(async (project: string, o: { branch: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/projects/{id}/git-remote/fetch', { params: { path: { id: project } }, body: { branch: o.branch } }));
      show(cmd, r, (v) =>
        process.stdout.write(
          `${v.created ? 'new checkpoint' : 'already a checkpoint'} ${v.checkpoint.id} (${v.branch} at ${v.commit.slice(0, 12)}, parent ${v.checkpoint.parentId})\n`,
        ),
      );
    });
}

/** checkpoints push <id> --branch <name> [--force] */
export function registerCheckpointPush(checkpoints: Command): void {
  checkpoints
    .command('push <id>')
    .description("push a checkpoint as a branch of its project's git remote (refused when not a fast forward, unless --force)")
    .requiredOption('--branch <name>', 'the branch to create or update')
    .option('--force', 'replace the branch even when that drops commits of the remote')
    .action(async (id: string, o: { branch: string; force?: boolean }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.POST('/checkpoints/{id}/push', { params: { path: { id } }, body: { branch: o.branch, force: Boolean(o.force) } }));
      show(cmd, r, (v) =>
        process.stdout.write(
          `${v.status === 'up_to_date' ? 'already at' : v.forced ? 'forced' : 'pushed'} ${v.branch} = ${v.commit.slice(0, 12)} (${v.remote})\n`,
        ),
      );
    });
}
