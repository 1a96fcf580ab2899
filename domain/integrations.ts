/**
 * Integrations with outside trackers (README "GitHub"), the pure parts: the kinds, GitHub's
 * webhook signature, which incoming issue events start an objective, and the text of the pull
 * requests and comments the platform writes. GitHub only for now; Jira and Linear plug in as
 * further kinds (their own verifier, trigger and texts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Kinds the tables accept. */
export const INTEGRATION_KINDS = ['github', 'jira', 'linear'] as const;
export type IntegrationKind = (typeof INTEGRATION_KINDS)[number];
/** Kinds this version can configure. */
export const SUPPORTED_INTEGRATION_KINDS = ['github', 'jira', 'linear'] as const satisfies readonly IntegrationKind[];
export type SupportedIntegrationKind = (typeof SUPPORTED_INTEGRATION_KINDS)[number];

/** What a GitHub integration is told (all of it may be shown; the token and webhook secret are kept apart). */
export interface GithubConfig {
  /** https://api.github.com, or a GitHub Enterprise Server's https://host/api/v3. */
  apiBase: string;
  owner: string;
  repo: string;
  /** Pull requests go into this branch unless the request names another. */
  baseBranch: string;
  /** Branches pushed for pull requests are named `<branchPrefix><checkpoint id>` unless the request names one. */
  branchPrefix: string;
  /** An issue given this label starts an objective (null: labels start nothing). */
  triggerLabel: string | null;
  /** Every newly opened issue starts an objective. */
  triggerOnOpened: boolean;
  /** The machine type of objectives started from issues. */
  machineType: string;
  /** What the issue's text becomes: the agent's prompt, or (shell machines) the command. */
  work: 'prompt' | 'command';
  /** Open a pull request ("Closes #n") when an objective started from an issue completes with a checkpoint. */
  autoPullRequest: boolean;
  /** Comment on linked issues and pull requests when their objective changes status. */
  progressComments: boolean;
}

// ---------------------------------------------------------------------------------------------
// GitHub webhook signatures (X-Hub-Signature-256)

/** `sha256=<hex HMAC-SHA256 of the raw body>` with the webhook secret, as GitHub signs deliveries. */
export function githubSignature(secret: string, raw: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
}

/** Whether `header` is the signature of `raw` with `secret` (constant-time compare). */
export function githubSignatureMatches(secret: string, raw: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  const expected = Buffer.from(githubSignature(secret, raw));
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

// ---------------------------------------------------------------------------------------------
// Incoming issue events

/** The fields of an `issues` webhook payload that are read (GitHub sends many more). */
export interface IssuesPayload {
  action?: string;
  issue?: { number?: number; title?: string; body?: string | null; html_url?: string; pull_request?: unknown; labels?: Array<{ name?: string }> };
  label?: { name?: string };
  repository?: { full_name?: string };
}

export interface IssueWork {
  number: number;
  title: string;
  body: string;
  url: string;
}

/**
 * Whether an `issues` event starts an objective: `opened` when the config says every new issue
 * does, `labeled` with the trigger label (or `opened` already carrying it); only issues of the
 * configured repository, never pull requests. Answers the issue, or why it is ignored.
 */
export function issueTrigger(config: GithubConfig, event: string, p: IssuesPayload): { issue: IssueWork } | { ignored: string } {
  if (event !== 'issues') return { ignored: `event ${event} starts nothing` };
  const repo = `${config.owner}/${config.repo}`.toLowerCase();
  if ((p.repository?.full_name ?? '').toLowerCase() !== repo) return { ignored: `repository ${p.repository?.full_name ?? '(none)'} is not ${repo}` };
  const i = p.issue;
  if (!i || typeof i.number !== 'number' || typeof i.title !== 'string') return { ignored: 'no issue in the payload' };
  if (i.pull_request) return { ignored: 'a pull request, not an issue' };
  const label = config.triggerLabel?.toLowerCase() ?? null;
  const hasLabel = (names: Array<string | undefined>) => label !== null && names.some((n) => n?.toLowerCase() === label);
  let starts = false;
  if (p.action === 'opened') starts = config.triggerOnOpened || hasLabel((i.labels ?? []).map((l) => l.name));
  else if (p.action === 'labeled') starts = hasLabel([p.label?.name]);
  if (!starts) return { ignored: `action ${p.action ?? '(none)'} does not start an objective here` };
  return { issue: { number: i.number, title: i.title, body: i.body ?? '', url: i.html_url ?? '' } };
}

// ---------------------------------------------------------------------------------------------
// What the platform writes

/** The dashboard page of a checkpoint in its project's evolution tree. */
export function checkpointLink(publicUrl: string, projectId: string, checkpointId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/projects/${encodeURIComponent(projectId)}/tree?checkpoint=${encodeURIComponent(checkpointId)}`;
}

/** The dashboard page of a project's objectives. */
export function objectivesLink(publicUrl: string, projectId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/projects/${encodeURIComponent(projectId)}/objectives`;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Text inside a fenced block: no fence of its own can close it early. */
const fenced = (s: string) => `\`\`\`\`text\n${s.replace(/````/g, '` ` ` `')}\n\`\`\`\``;

/** What the pull request's body tells about the checkpoint and the machine that made it. */
export interface PullRequestFacts {
  checkpointId: string;
  commit: string;
  link: string;
  machine: { id: string; type: string; status: string; asked: string | null; stopReason: string | null; lastOutput: string | null } | null;
  /** Exact decimal and currency. */
  cost: { amount: string; currency: string } | null;
  files: { added: string[]; modified: string[]; deleted: string[] } | null;
  /** An issue this pull request closes. */
  closes: number | null;
  objective: { id: string; title: string } | null;
}

const fileList = (f: NonNullable<PullRequestFacts['files']>) => {
  const lines = [...f.added.map((p) => `- added \`${p}\``), ...f.modified.map((p) => `- modified \`${p}\``), ...f.deleted.map((p) => `- deleted \`${p}\``)];
  return lines.length > 50 ? [...lines.slice(0, 50), `- … and ${lines.length - 50} more`] : lines;
};

/** The body of a pull request opened from a checkpoint (GitHub markdown, at most 60,000 characters). */
export function pullRequestBody(f: PullRequestFacts): string {
  const out: string[] = [];
  if (f.closes !== null) out.push(`Closes #${f.closes}`, '');
  out.push('## Summary', '');
  if (f.objective) out.push(`Objective: **${clip(f.objective.title, 300)}** (\`${f.objective.id}\`)`, '');
  if (f.machine) {
    out.push(
      `Made by machine \`${f.machine.id}\` (${f.machine.type}), which ended **${f.machine.status}**${f.machine.stopReason ? ` (${f.machine.stopReason})` : ''}.`,
    );
    if (f.machine.asked) out.push('', 'It was asked:', '', fenced(clip(f.machine.asked, 4000)));
    if (f.machine.lastOutput) out.push('', 'What it said last:', '', fenced(clip(f.machine.lastOutput, 8000)));
  } else out.push('No machine made this checkpoint (it was imported or is a project root).');
  if (f.files) {
    const files = fileList(f.files);
    out.push('', '## Changes', '', ...(files.length ? files : ['- no file changed']));
  }
  out.push('', '## Cost', '', f.cost ? `**${f.cost.amount} ${f.cost.currency}**` : 'nothing was spent');
  out.push('', '---', `Checkpoint [\`${f.checkpointId}\`](${f.link}) · commit \`${f.commit}\``);
  return clip(out.join('\n'), 60_000);
}

/** What a progress comment tells. */
export interface ProgressFacts {
  objective: { id: string; title: string; status: string; previous: string | null; progress: number; error: string | null };
  link: string;
  cost: { amount: string; currency: string };
  checkpoint: { id: string; link: string } | null;
  pullRequest: { number: number; url: string } | null;
}

/** A comment on a linked issue or pull request when its objective changes status. */
export function progressComment(f: ProgressFacts): string {
  const o = f.objective;
  const lines = [
    `**AutoVibe**: objective [${clip(o.title, 200)}](${f.link}) is now **${o.status}**${o.previous ? ` (was ${o.previous})` : ''}.`,
    '',
    `- Progress: ${Math.round(o.progress * 100)}%`,
    `- Cost so far: ${f.cost.amount} ${f.cost.currency}`,
  ];
  if (f.checkpoint) lines.push(`- Latest checkpoint: [\`${f.checkpoint.id}\`](${f.checkpoint.link})`);
  if (f.pullRequest) lines.push(`- Pull request: #${f.pullRequest.number}`);
  if (o.error) lines.push('', fenced(clip(o.error, 2000)));
  return lines.join('\n');
}
