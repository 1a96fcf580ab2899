import type { Command } from 'commander';
import { ok } from '../client.js';
import { UsageError } from '../errors.js';
import { printRecord } from '../output.js';
import { ctxOf, readDataFile, show } from '../runtime.js';

const INTEGRATION_FIELDS = ['id', 'projectId', 'kind', 'hasToken', 'hasWebhookSecret', 'hookUrl', 'updatedBy', 'updatedAt'];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

interface SetOptions {
  config?: string;
  owner?: string;
  repo?: string;
  apiBase?: string;
  baseBranch?: string;
  branchPrefix?: string;
  triggerLabel?: string;
  triggerOnOpened?: boolean;
  machineType?: string;
  work?: string;
  autoPullRequest?: boolean;
  progressComments?: boolean;
  baseUrl?: string;
  projectKey?: string;
  email?: string;
  issueType?: string;
  apiUrl?: string;
  teamId?: string;
  tokenType?: string;
  createTickets?: boolean;
  tokenStdin?: boolean;
}

/** integrations set|get|delete, and checkpoints pull-request: a project's tracker integrations (README "GitHub", "Jira and Linear"). */
export function registerIntegrations(program: Command): void {
  const integrations = program
    .command('integrations')
    .description(
      "a project's integrations with trackers (github, jira, linear): pull requests, objectives started from issues and tickets, status written back",
    );

  integrations
    .command('set <project> <kind>')
    .description('set the integration (kind: github, jira or linear); the token and webhook secret are kept and never shown back')
    .option('--config <file>', 'the whole config as YAML or JSON (- for stdin); the flags below override its fields')
    .option('--owner <owner>', 'the repository owner (github.com/<owner>/<repo>)')
    .option('--repo <repo>', 'the repository name')
    .option('--api-base <url>', 'the API base URL (default https://api.github.com)')
    .option('--base-branch <name>', 'pull requests go into this branch (default main)')
    .option('--branch-prefix <prefix>', 'branches pushed for pull requests start with this (default autovibe/)')
    .option('--base-url <url>', 'jira: the site, https://<your-domain>.atlassian.net')
    .option('--project-key <key>', 'jira: the project key (e.g. AV)')
    .option('--email <email>', "jira: the Atlassian account's email (the token is then its API token, sent as Basic auth)")
    .option('--issue-type <name>', 'jira: the type of issues made for objectives (default Task)')
    .option('--api-url <url>', 'linear: the GraphQL endpoint (default https://api.linear.app/graphql)')
    .option('--team-id <id>', 'linear: the team whose issues are followed and made')
    .option('--token-type <type>', 'linear: apiKey (a personal API key, the default) or oauth')
    .option('--create-tickets', 'jira, linear: every new objective of the project gets a ticket (else only those created with --ticket)')
    .option('--trigger-label <label>', 'an issue or ticket given this label starts an objective')
    .option('--trigger-on-opened', 'every newly opened issue starts an objective')
    .option('--machine-type <type>', 'machine type of objectives started from issues or tickets (default shell)')
    .option('--work <what>', "the issue's or ticket's text becomes the prompt or (shell) the command")
    .option('--auto-pull-request', 'open a pull request ("Closes #n") when an issue objective completes')
    .option('--no-progress-comments', 'do not comment status changes on linked issues, tickets and pull requests')
    .option('--token-stdin', 'read the API token from stdin (or set AUTOVIBE_INTEGRATION_TOKEN); never give it as an argument')
    .action(async (project: string, kind: string, o: SetOptions, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const base = o.config ? readDataFile(o.config) : {};
      if (typeof base !== 'object' || base === null || Array.isArray(base)) throw new UsageError('--config: must hold an object of settings');
      const flags: Record<string, unknown> = {
        owner: o.owner,
        repo: o.repo,
        apiBase: o.apiBase,
        baseBranch: o.baseBranch,
        branchPrefix: o.branchPrefix,
        triggerLabel: o.triggerLabel,
        triggerOnOpened: o.triggerOnOpened,
        machineType: o.machineType,
        work: o.work,
        autoPullRequest: o.autoPullRequest,
        ...(o.progressComments === false ? { progressComments: false } : {}),
        baseUrl: o.baseUrl,
        projectKey: o.projectKey,
        email: o.email,
        issueType: o.issueType,
        apiUrl: o.apiUrl,
        teamId: o.teamId,
        tokenType: o.tokenType,
        createTickets: o.createTickets,
      };
      const config = { ...(base as Record<string, unknown>), ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
      const token = o.tokenStdin ? await readStdin() : process.env.AUTOVIBE_INTEGRATION_TOKEN || undefined;
      if (o.tokenStdin && !token) throw new UsageError('--token-stdin: stdin was empty');
      const webhookSecret = process.env.AUTOVIBE_INTEGRATION_WEBHOOK_SECRET || undefined;
      const r = await ok(
        api.PUT('/projects/{id}/integrations/{kind}', {
          params: { path: { id: project, kind } },
          body: { config: config as never, ...(token ? { token } : {}), ...(webhookSecret ? { webhookSecret } : {}) },
        }),
      );
      show(cmd, r, (v) => printRecord(v, INTEGRATION_FIELDS));
    });

  integrations
    .command('get <project> <kind>')
    .description('the integration: config, whether a token and webhook secret are kept, the hook URL to give the tracker')
    .action(async (project: string, kind: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const r = await ok(api.GET('/projects/{id}/integrations/{kind}', { params: { path: { id: project, kind } } }));
      show(cmd, r, (v) => {
        printRecord(v, INTEGRATION_FIELDS);
        process.stdout.write(`config: ${JSON.stringify(v.config)}\n`);
      });
    });

  integrations
    .command('delete <project> <kind>')
    .description('remove the integration, its secrets and its links to issues, tickets and pull requests')
    .action(async (project: string, kind: string, _o, cmd: Command) => {
      const { api } = ctxOf(cmd);
      await ok(api.DELETE('/projects/{id}/integrations/{kind}', { params: { path: { id: project, kind } } }));
      show(cmd, { projectId: project, kind, deleted: true }, () => process.stdout.write(`${kind} integration of ${project} removed\n`));
    });
}

/** checkpoints pull-request <id> [--title] [--body] [--base] [--branch] */
export function registerCheckpointPullRequest(checkpoints: Command): void {
  checkpoints
    .command('pull-request <id>')
    .description('push a checkpoint as a branch and open a GitHub pull request with its summary, cost and link (once per checkpoint)')
    .option('--title <title>', 'the title (default: the objective or the checkpoint)')
    .option('--body <text>', 'text put before the generated summary')
    .option('--base <branch>', "the branch to merge into (default: the integration's base branch)")
    .option('--branch <name>', 'the branch to push (default: <branch prefix><checkpoint id>)')
    .action(async (id: string, o: { title?: string; body?: string; base?: string; branch?: string }, cmd: Command) => {
      const { api } = ctxOf(cmd);
      const body = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
      const r = await ok(api.POST('/checkpoints/{id}/pull-request', { params: { path: { id } }, body }));
      show(cmd, r, (v) => process.stdout.write(`${v.created ? 'opened' : 'already open'} pull request #${v.number} ${v.url} (branch ${v.branch})\n`));
    });
}
