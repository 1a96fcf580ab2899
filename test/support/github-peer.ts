import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP peer that speaks GitHub's REST API for the endpoints the platform calls, in
 * GitHub's request and response formats (https://docs.github.com/en/rest, API version
 * 2022-11-28): create a pull request, list pull requests by head, create an issue comment, get a
 * repository. Response bodies are GitHub's documentation examples, trimmed to the fields a client
 * reads, with the values of this peer. Like GitHub it answers 401 "Bad credentials" without the
 * right bearer token, 422 "Validation Failed" for a second pull request from the same head or a
 * head branch the repository does not have, and 404 "Not Found" for another repository. It is a
 * stand-in for github.com in tests, named as such; it keeps every request it received.
 */
export interface GithubRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface GithubPeer {
  /** The API base URL (as https://api.github.com). */
  url: string;
  owner: string;
  repo: string;
  requests: GithubRequest[];
  pulls: Array<Record<string, any>>;
  comments: Array<{ issue: number; body: string; id: number }>;
  /** Makes the next `n` calls answer 502 (a GitHub outage), to exercise retries. */
  failNext(n: number): void;
  stop(): Promise<void>;
}

export interface GithubPeerOptions {
  owner: string;
  repo: string;
  token: string;
  /** Whether the repository has this branch (GitHub refuses a pull request from a head it lacks). */
  hasBranch?: (branch: string) => boolean;
}

const DOCS = 'https://docs.github.com/rest';

export async function startGithubPeer(o: GithubPeerOptions): Promise<GithubPeer> {
  const requests: GithubRequest[] = [];
  const pulls: Array<Record<string, any>> = [];
  const comments: Array<{ issue: number; body: string; id: number }> = [];
  let failures = 0;
  let nextId = 1_296_269;
  const user = { login: 'autovibe-bot', id: 1, type: 'Bot' };
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://github.local');
      let body: any = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, headers: req.headers, body });
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-api-version-selected': '2022-11-28' });
        res.end(JSON.stringify(payload));
      };
      if (failures > 0) {
        failures--;
        return send(502, { message: 'Server Error' });
      }
      if (req.headers.authorization !== `Bearer ${o.token}`) return send(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
      const version = req.headers['x-github-api-version'];
      if (version !== undefined && version !== '2022-11-28') {
        return send(400, { message: `Invalid API version: ${String(version)}`, documentation_url: `${DOCS}/overview/api-versions`, status: '400' });
      }
      const base = `/repos/${o.owner}/${o.repo}`;
      const html = `https://github.com/${o.owner}/${o.repo}`;
      const api = `${base}`;
      if (!url.pathname.startsWith(base)) return send(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
      const rest = url.pathname.slice(base.length);

      if (req.method === 'GET' && rest === '') {
        return send(200, { id: 1296269, name: o.repo, full_name: `${o.owner}/${o.repo}`, private: false, html_url: html, default_branch: 'main' });
      }
      if (req.method === 'POST' && rest === '/pulls') {
        const head = String(body?.head ?? '');
        const baseRef = String(body?.base ?? '');
        if (!body?.title || !head || !baseRef) {
          return send(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'PullRequest', code: 'missing_field', field: !body?.title ? 'title' : !head ? 'head' : 'base' }],
            documentation_url: `${DOCS}/pulls/pulls#create-a-pull-request`,
            status: '422',
          });
        }
        const branch = head.includes(':') ? head.split(':')[1]! : head;
        if (o.hasBranch && !o.hasBranch(branch)) {
          return send(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }],
            documentation_url: `${DOCS}/pulls/pulls#create-a-pull-request`,
            status: '422',
          });
        }
        if (pulls.some((p) => p.head.ref === branch && p.state === 'open')) {
          return send(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${o.owner}:${branch}.` }],
            documentation_url: `${DOCS}/pulls/pulls#create-a-pull-request`,
            status: '422',
          });
        }
        const number = pulls.length + comments.length + 1347;
        const pr = {
          url: `${url.origin}${api}/pulls/${number}`,
          id: nextId++,
          node_id: `PR_${crypto.randomBytes(6).toString('base64url')}`,
          html_url: `${html}/pull/${number}`,
          number,
          state: 'open',
          locked: false,
          title: body.title,
          user,
          body: body.body ?? null,
          created_at: new Date().toISOString(),
          head: { label: `${o.owner}:${branch}`, ref: branch, sha: 'e5bd3914e2e596debea16f433f57875b5b90bcd6' },
          base: { label: `${o.owner}:${baseRef}`, ref: baseRef, sha: '6dcb09b5b57875f334f61aebed695e2e4193db5e' },
          draft: Boolean(body.draft),
          merged: false,
        };
        pulls.push(pr);
        return send(201, pr);
      }
      if (req.method === 'GET' && rest === '/pulls') {
        const head = url.searchParams.get('head');
        const state = url.searchParams.get('state') ?? 'open';
        const branch = head?.includes(':') ? head.split(':')[1] : head;
        const found = pulls.filter((p) => (!branch || p.head.ref === branch) && (state === 'all' || p.state === state));
        return send(200, [...found].reverse());
      }
      const m = /^\/issues\/(\d+)\/comments$/.exec(rest);
      if (req.method === 'POST' && m) {
        if (typeof body?.body !== 'string' || !body.body) {
          return send(422, {
            message: 'Validation Failed',
            errors: [{ resource: 'IssueComment', code: 'missing_field', field: 'body' }],
            documentation_url: `${DOCS}/issues/comments#create-an-issue-comment`,
            status: '422',
          });
        }
        const issue = Number(m[1]);
        const id = nextId++;
        comments.push({ issue, body: body.body, id });
        return send(201, {
          id,
          node_id: `IC_${crypto.randomBytes(6).toString('base64url')}`,
          url: `${url.origin}${api}/issues/comments/${id}`,
          html_url: `${html}/issues/${issue}#issuecomment-${id}`,
          body: body.body,
          user,
          created_at: new Date().toISOString(),
          updated_at: new Date().toISOString(),
          issue_url: `${url.origin}${api}/issues/${issue}`,
          author_association: 'NONE',
        });
      }
      return send(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    owner: o.owner,
    repo: o.repo,
    requests,
    pulls,
    comments,
    failNext: (n) => void (failures = n),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * An `issues` webhook delivery as GitHub sends it (https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues),
 * trimmed to the fields a receiver reads: headers X-GitHub-Event, X-GitHub-Delivery and
 * X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the webhook secret, hex).
 */
export function issuesDelivery(
  secret: string,
  p: { action: 'opened' | 'labeled' | 'edited'; owner: string; repo: string; number: number; title: string; body: string; label?: string; labels?: string[] },
  deliveryId: string = crypto.randomUUID(),
): { headers: Record<string, string>; body: string } {
  const labels = [...(p.labels ?? []), ...(p.label ? [p.label] : [])].map((name, i) => ({ id: 208045946 + i, name, color: 'f29513', default: false }));
  const payload = {
    action: p.action,
    issue: {
      url: `https://api.github.com/repos/${p.owner}/${p.repo}/issues/${p.number}`,
      html_url: `https://github.com/${p.owner}/${p.repo}/issues/${p.number}`,
      id: 1_000_000 + p.number,
      number: p.number,
      title: p.title,
      user: { login: 'octocat', id: 1 },
      labels,
      state: 'open',
      body: p.body,
    },
    ...(p.label ? { label: { id: 208045946, name: p.label, color: 'f29513' } } : {}),
    repository: { id: 1296269, name: p.repo, full_name: `${p.owner}/${p.repo}`, owner: { login: p.owner, id: 1 } },
    sender: { login: 'octocat', id: 1 },
  };
  const body = JSON.stringify(payload);
  const signature = `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
  return {
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/044aadd',
      'x-github-event': 'issues',
      'x-github-delivery': deliveryId,
      'x-github-hook-id': '292430182',
      'x-hub-signature-256': signature,
    },
    body,
  };
}
