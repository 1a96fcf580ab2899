import { putRoutingBody, routingQuery } from '../services/routing.js';
import { feedbackBody } from '../services/feedback.js';
import { roiQuery } from '../services/roi.js';
import { recoverProjectBody } from '../services/recoveries.js';
import { listRunsQuery, putReallocationBody, runReallocationQuery } from '../services/reallocation.js';
import { predictionAccuracyQuery, putPredictionSettingsBody } from '../services/predictions.js';
import { z } from 'zod';
import {
  auditQuery,
  createMachineBody,
  createObjectiveBody,
  createPipelineBody,
  createProjectBody,
  extendMachineBody,
  linkObjectiveBody,
  listMachinesQuery,
  rollupCurrencyQuery,
  putBudgetBody,
  putLimitPolicyBody,
  putSchedulingBody,
  putMilestoneBody,
  putTypeBudgetBody,
  subtasksDoneBody,
  updateObjectiveBody,
  putPlacementBody,
  putNetworkPolicyBody,
  fxRatesQuery,
  createCostCenterBody,
  listCostCentersQuery,
  putProjectCostCenterBody,
  putPaymentMethodsBody,
  topupBody,
  autoTopupBody,
  creditBody,
  createKeyBody,
  patchKeyBody,
  createWebhookBody,
  patchWebhookBody,
  putGitRemoteBody,
  pushCheckpointBody,
  fetchGitRemoteBody,
  githubConfigBody,
  jiraConfigBody,
  linearConfigBody,
  openPullRequestBody,
  putIntegrationBody,
  mergeCheckpointBody,
  mergeResolutionBody,
} from '../services/schemas.js';
import { listWebhooksQuery } from './routes/webhooks.js';
import { batchRequest } from './routes/batch.js';
import { alertsQuery } from './routes/alerts.js';
import { createAlertRuleBody } from '../services/alerts.js';
import { ALERT_COMPARATORS, ALERT_METRICS } from '../domain/alerts.js';
import { pageQuery } from './pagination.js';
import { routeTable } from './app.js';
import type { ApiContext } from './context.js';
import type { ResponseBody, RouteSpec } from './routes/table.js';

/** The route table without a live context: route groups only use their context when a request arrives. */
function declaredRoutes(): RouteSpec[] {
  return routeTable({ fx: {} } as unknown as ApiContext);
}

const ERROR = { $ref: '#/components/responses/Error' } as const;

const graphqlBody = {
  type: 'object',
  required: ['query'],
  properties: { query: { type: 'string' }, variables: { type: 'object' }, operationName: { type: 'string' } },
} as const;

/**
 * An operation's responses: its declared success responses, each with the JSON schema of its
 * body (as clients receive it), and the shared Error for the failures it can answer with.
 */
function responsesOf(route: RouteSpec, summary: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, body] of Object.entries(route.responses) as Array<[string, ResponseBody | undefined]>) {
    if (body === undefined) continue;
    if (body === null) out[status] = { description: summary };
    else if (body instanceof z.ZodType) {
      const { $schema: _, ...schema } = z.toJSONSchema(body, { io: 'output', unrepresentable: 'any' });
      out[status] = { description: summary, content: { 'application/json': { schema } } };
    } else
      out[status] = { description: summary, content: Object.fromEntries(body.raw.map((type) => [type, { schema: { type: 'string', format: 'binary' } }])) };
  }
  return {
    ...out,
    '400': ERROR,
    '401': ERROR,
    '403': ERROR,
    ...(/[:*]/.test(route.path) ? { '404': ERROR } : {}),
    ...(route.method !== 'get' ? { '409': ERROR } : {}),
    // Any route: a body over the limit (413), an unreadable charset or encoding (415), text Postgres cannot store (422).
    '413': ERROR,
    '415': ERROR,
    '422': ERROR,
    '429': ERROR,
  };
}

/**
 * The OpenAPI 3.1 document: request bodies from the zod schemas that validate requests, success
 * responses from the schemas each route declares in its RouteGroup registration.
 */
export function openApiDocument(routes: readonly RouteSpec[] = declaredRoutes()) {
  const body = (schema: z.ZodType) => ({
    required: true,
    content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } },
  });
  const query = (schema: z.ZodObject) => Object.keys(schema.shape).map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));
  const idParam = (name = 'id') => ({ name, in: 'path', required: true, schema: { type: 'string' } });
  // Responses are filled in from the route table below.
  const op = (summary: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ summary, ...extra });
  const doc = document(op, body, query, idParam);
  const paths: Record<string, Record<string, Record<string, unknown>>> = doc.paths;
  for (const route of routes) {
    const operation = paths[route.path.replace(/[:*](\w+)/g, '{$1}')]?.[route.method];
    if (operation) operation.responses = responsesOf(route, String(operation.summary));
  }
  // Served by the app itself, outside the route groups.
  paths['/openapi.json']!.get!.responses = {
    '200': { description: 'This document', content: { 'application/json': { schema: { type: 'object', required: ['openapi', 'paths'] } } } },
    '401': ERROR,
    '429': ERROR,
  };
  return doc;
}

function document(
  op: (summary: string, extra?: Record<string, unknown>) => Record<string, unknown>,
  body: (schema: z.ZodType) => unknown,
  query: (schema: z.ZodObject) => unknown[],
  idParam: (name?: string) => unknown,
) {
  // Long-polling on status endpoints (api/event-stream.ts).
  const waitParams = [
    {
      name: 'waitFor',
      in: 'query',
      required: false,
      schema: { type: 'string' },
      description: 'Comma-separated statuses: answer as soon as the status is one of them',
    },
    {
      name: 'timeout',
      in: 'query',
      required: false,
      schema: { type: 'integer', minimum: 0, maximum: 60, default: 30 },
      description: 'Seconds to wait; then the current state with X-Wait-Timed-Out: true',
    },
  ];
  const q = (name: string, description: string) => ({ name, in: 'query', required: false, schema: { type: 'string' }, description });
  const breakdownParams = [
    q('by', 'machineType, provider, model, category, costCenter, objective or project (required)'),
    q('from', 'ISO 8601 time (default 30 days before to)'),
    q('to', 'ISO 8601 time, exclusive (default now)'),
  ];
  return {
    openapi: '3.1.0',
    info: { title: 'AutoVibe API', version: '1.0.0', description: 'Run coding agents in sandboxes under hard money budgets.' },
    servers: [{ url: '/v1' }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An AutoVibe API key' } },
      responses: {
        Error: {
          description: 'An error: { error: { code, message, details }, requestId }',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['error', 'requestId'],
                properties: {
                  error: {
                    type: 'object',
                    required: ['code', 'message', 'details'],
                    properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
                  },
                  requestId: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
    paths: {
      '/projects': {
        post: op('Create a project (new git repository, or a clone of repoUrl)', { requestBody: body(createProjectBody) }),
        get: op("List projects (the caller's)", { parameters: query(pageQuery) }),
      },
      '/projects/{id}': { get: op('A project with its budget', { parameters: [idParam()] }) },
      '/projects/{id}/budget': { put: op('Set the project budget', { parameters: [idParam()], requestBody: body(putBudgetBody) }) },
      '/projects/{id}/checkpoints': { get: op('The evolution tree of a project, oldest first', { parameters: [idParam(), ...query(pageQuery)] }) },
      '/projects/{id}/checkpoints/tree': {
        get: op(
          'Every checkpoint of a project in one answer, parents before children (id, parentId, machineId, kind, trigger, milestone, createdAt); ETag with If-None-Match answers 304 while the tree is unchanged',
          { parameters: [idParam()] },
        ),
      },
      '/projects/{id}/costs/series': {
        get: op(
          "Spend per hour or day (UTC) and category in the project's currency; every bucket of [from, to) (default: the last 48 hours or 30 days, the current one included), at most 1000",
          {
            parameters: [
              idParam(),
              q('bucket', 'hour or day (default day)'),
              q('from', 'ISO 8601 time; moved back to its bucket start'),
              q('to', 'ISO 8601 time, exclusive (default now)'),
            ],
          },
        ),
      },
      '/projects/{id}/costs/breakdown': {
        get: op(
          "Spend of [from, to) (default the last 30 days) grouped by machineType, provider, model, category (api, infra, storage, network, cache), costCenter, objective or project, in the project's currency; the groups (key null: records without that attribute) add up to the total exactly",
          {
            parameters: [idParam(), ...breakdownParams],
          },
        ),
      },
      '/projects/{id}/costs/variance': {
        get: op(
          "Actual against allocated spend per day, week (from Monday) or month (UTC) for the last `count` periods, the current one included: the project budget's allocation spread over each period, variance and percent, spend per category with each category's trend, each machine type's spend against its daily type budget (stored, else the type's default; allocated null in another currency), and the least-squares trend per period",
          { parameters: [idParam(), q('period', 'day, week or month (default day)'), q('count', 'how many periods (default 14, 8 or 6; at most 90)')] },
        ),
      },
      '/projects/{id}/costs/opportunities': {
        get: op(
          'Optimization opportunities of the last `days` days, largest saving first: on-demand runs that could have been spot, repeated identical requests the result cache could have answered, agent machines doing short simple work, and (deployment-wide keys) idle warm-pool capacity; each with its kind, evidence (ids), estimated saving and explanation',
          { parameters: [idParam(), q('days', 'look-back in days (default 30, at most 365)')] },
        ),
      },
      '/projects/{id}/budgets': {
        get: op(
          "Every budget of a project with spent, reserved and remaining in its current window: its own (null when none) and each machine type's daily budget (source default: the type's default, not used yet)",
          { parameters: [idParam()] },
        ),
      },
      '/projects/{id}/costs': { get: op('Cost events and totals of a project, with cache hits, misses and the money hits saved', { parameters: [idParam()] }) },
      '/projects/{id}/objectives': {
        post: op('Create an objective', { parameters: [idParam()], requestBody: body(createObjectiveBody) }),
        get: op('List objectives', { parameters: [idParam(), ...query(pageQuery)] }),
      },
      '/objectives/{id}': {
        get: op('An objective with status, progress and (while it runs) what it waits for', { parameters: [idParam(), ...waitParams] }),
        patch: op('Update title, priority, sub-tasks or machine count of an open objective', {
          parameters: [idParam()],
          requestBody: body(updateObjectiveBody),
        }),
      },
      '/objectives/{id}/pause': { post: op('Hold an objective that has not started its machine (202)', { parameters: [idParam()] }) },
      '/objectives/{id}/resume': { post: op('Let a paused objective go on (202)', { parameters: [idParam()] }) },
      '/objectives/{id}/cancel': { post: op('Cancel an objective; a running machine is terminated cleanly (202)', { parameters: [idParam()] }) },
      '/objectives/{id}/links': {
        post: op('Add a dependency (refused with the path when it closes a cycle)', { parameters: [idParam()], requestBody: body(linkObjectiveBody) }),
      },
      '/objectives/{id}/subtasks/done': {
        post: op('Tick sub-tasks off; records the progress made', { parameters: [idParam()], requestBody: body(subtasksDoneBody) }),
      },
      '/objectives/{id}/progress': { get: op('Every progress measurement of an objective, oldest first', { parameters: [idParam()] }) },
      '/projects/{id}/objectives/dag': { get: op('The objectives as a DAG: nodes with progress, edges, layers', { parameters: [idParam()] }) },
      '/projects/{id}/scheduling': {
        get: op('Concurrent-machine limit, greediness, resources, and what holds or waits for them', { parameters: [idParam()] }),
        put: op('Change the concurrent-machine limit, greediness or named resources', { parameters: [idParam()], requestBody: body(putSchedulingBody) }),
      },
      '/machine-types': { get: op('Machine types and their availability') },
      '/routing': {
        get: op(
          'Machine selection (type: auto): every operation class × agent type arm with its capability prior, successes, failures and Beta posterior; the expected cost of a typical task per type; the knob; the newest decisions with their reasons and outcomes; the prompt-refinement A/B (outcomes and cost per arm, refined vs plain) and, with projectId, the project’s failure patterns',
          { parameters: query(routingQuery) },
        ),
      },
      '/predictions/accuracy': {
        get: op(
          'Cost prediction: per machine type, the mean absolute error of the predicted median cost and duration, and the share of actuals inside the predicted 80 % interval (coverage), over the settled predictions',
          { parameters: query(predictionAccuracyQuery) },
        ),
      },
      '/projects/{id}/prediction': {
        put: op(
          "Cost prediction: whether the project's machines are refused early (422 predicted_over_limit) when even the predicted lower bound of their cost exceeds their money limit or a budget's remaining amount; a request's refuseIfPredictedOver overrides it",
          { parameters: [idParam()], requestBody: body(putPredictionSettingsBody) },
        ),
      },
      '/projects/{id}/routing': {
        put: op(
          "Set a project's quality-vs-cost knob (0 cheapest … 1 best), exploration budget (share of type: auto decisions picked at random) and refinement share (share of routed machines with known failure patterns given the refined prompt)",
          {
            parameters: [idParam()],
            requestBody: body(putRoutingBody),
          },
        ),
      },
      '/machines': {
        post: op(
          "Start a machine (202); 409 budget_exceeded when the budget cannot cover its limit. `network` narrows the project's network policy (403 when it reaches beyond it, unless the caller is an owner; 422 on a provider that cannot enforce it)",
          { requestBody: body(createMachineBody) },
        ),
        get: op('List machines', { parameters: query(listMachinesQuery) }),
      },
      '/machines/{id}': { get: op('Status, cost and checkpoints of a machine', { parameters: [idParam(), ...waitParams] }) },
      '/machines/{id}/feedback': {
        post: op(
          "Rate a machine's work 1..5 with an optional comment (≤ 2000 characters): 201 for the calling key's first feedback on it, 200 when it replaces the key's earlier one; audited as machine.feedback",
          { parameters: [idParam()], requestBody: body(feedbackBody) },
        ),
        get: op('Every feedback given on a machine (one per key)', { parameters: [idParam()] }),
      },
      '/projects/{id}/roi': {
        get: op(
          'Return on spend over the last `days` (default 30): spend, objectives completed per unit of the project currency, bug-fix efficiency, pass rates and deltas of completion checks, feedback, and the Pearson correlation of machine spend with rating (null with fewer than 3 rated machines)',
          { parameters: [idParam(), ...query(roiQuery)] },
        ),
      },
      '/machines/{id}/terminate': { post: op('Stop a machine cleanly (final checkpoint, cost settled)', { parameters: [idParam()] }) },
      '/machines/{id}/checkpoint': { post: op('Take a checkpoint of a running machine', { parameters: [idParam()] }) },
      '/checkpoints/{id}': {
        get: op(
          'A checkpoint with its files, milestone flag, snapshot (bytes, storedBytes, replicas) and instanceSnapshot (disk snapshot at its provider, e.g. EBS, with its copies per region)',
          {
            parameters: [idParam()],
          },
        ),
      },
      '/checkpoints/{id}/milestone': {
        put: op('Mark or unmark a checkpoint as a milestone (its snapshot is kept forever)', { parameters: [idParam()], requestBody: body(putMilestoneBody) }),
      },
      '/checkpoints/{id}/push': {
        post: op(
          "Push the checkpoint's commit as a branch of its project's git remote (200 with the push: pushed or up_to_date, previousCommit, forced; audited as checkpoint.pushed). A push that is not a fast forward is 409 non_fast_forward unless force: true; the remote's refusal (credentials, hooks, network) is 502 git_remote_error quoting it; a branch name git refuses is 400",
          { parameters: [idParam()], requestBody: body(pushCheckpointBody) },
        ),
      },
      '/checkpoints/{id}/merge': {
        post: op(
          "Merge checkpoint `from` into this one (same project) with git's merge: 201 with the new merge checkpoint (parentId: this one, mergeParentId: from; audited as checkpoint.merged). Conflicts are 409 merge_conflict with details.conflicts: each path with git's conflict kinds and its hunks (ours/base/theirs text and lines); nothing is recorded",
          { parameters: [idParam()], requestBody: body(mergeCheckpointBody) },
        ),
      },
      '/checkpoints/{id}/merge-resolutions': {
        post: op(
          'Ask a machine to resolve the conflicts of merging `from` into this checkpoint (202): the merge with its conflict markers is recorded as a conflicted checkpoint, the machine starts from it (same budget, placement and audit as POST /machines), and when it completes its files become proposedCheckpointId, a proposed merge checkpoint to accept or reject. 409 no_conflicts when the merge is clean',
          { parameters: [idParam()], requestBody: body(mergeResolutionBody) },
        ),
      },
      '/checkpoints/{id}/accept': {
        post: op(
          'Accept a proposed merge checkpoint: it becomes an ordinary merge checkpoint with both parents. 409 merge_conflict_markers while a path that conflicted still has a marker; 409 not_proposed for any other checkpoint',
          { parameters: [idParam()] },
        ),
      },
      '/checkpoints/{id}/reject': {
        post: op('Reject a proposed merge checkpoint: it is kept, with status rejected. 409 not_proposed for any other checkpoint', {
          parameters: [idParam()],
        }),
      },
      '/projects/{id}/git-remote': {
        put: op(
          "Set the project's git remote: url (https://, http:// or git://, no credentials in it) and optionally username and token, sent to it as HTTP Basic auth by host-side git only. The token is never shown back (hasToken). fetch: { branches, everyMinutes } fetches those branches periodically (a Temporal Schedule git-fetch-<project id>, each new tip an imported checkpoint); left out, no periodic fetch (an existing schedule is deleted)",
          { parameters: [idParam()], requestBody: body(putGitRemoteBody) },
        ),
        get: op(
          "The project's git remote: url, username, hasToken (never the token) and fetch (branches, everyMinutes, the schedule's nextRunAt, lastRunAt and lastResult per branch); 404 when it has none",
          { parameters: [idParam()] },
        ),
        delete: op("Remove the project's git remote, its token and its fetch schedule (204)", { parameters: [idParam()] }),
      },
      '/projects/{id}/integrations/{kind}': {
        put: op(
          "Set the project's integration of a kind (github, jira, linear): config (github: apiBase, owner, repo, baseBranch, branchPrefix, triggerLabel, triggerOnOpened, machineType, work, autoPullRequest, progressComments; jira: baseUrl, projectKey, email, issueType, statusMap, triggerLabel, createTickets, machineType, work, progressComments; linear: apiUrl, teamId, tokenType, stateMap, triggerLabel, createTickets, machineType, work, progressComments), token (github: sent as Authorization: Bearer; jira: an API token sent as Basic auth with email, else a bearer token; linear: a personal API key sent as Authorization, or an OAuth token) and webhookSecret (incoming hooks are verified with it: X-Hub-Signature-256, X-Hub-Signature, Linear-Signature). Left out, token and webhookSecret keep their stored values; null removes them; neither is ever shown back (hasToken, hasWebhookSecret). hookUrl is where the tracker sends its hooks. An unknown kind is 400",
          {
            parameters: [idParam(), idParam('kind')],
            requestBody: body(putIntegrationBody.extend({ config: z.union([githubConfigBody, jiraConfigBody, linearConfigBody]) })),
          },
        ),
        get: op("The project's integration of a kind: config, hasToken, hasWebhookSecret, hookUrl (never the secrets); 404 when it has none", {
          parameters: [idParam(), idParam('kind')],
        }),
        delete: op("Remove the project's integration with its links to issues, tickets and pull requests (204); its hooks answer 404 from then on", {
          parameters: [idParam(), idParam('kind')],
        }),
      },
      '/checkpoints/{id}/pull-request': {
        post: op(
          "Open a GitHub pull request from the checkpoint: pushes it as a branch of the project's git remote (branch, default <branchPrefix><checkpoint id>) and opens the pull request into base (default the integration's baseBranch) with title and a body of the machine's summary, its exact cost and a link to the checkpoint in the dashboard (body, if given, goes first). Once per checkpoint: a second call answers the same pull request with created: false. 404 without a github integration or git remote; GitHub's refusal is 502 integration_error",
          { parameters: [idParam()], requestBody: body(openPullRequestBody) },
        ),
      },
      '/projects/{id}/git-remote/fetch': {
        post: op(
          "Fetch a branch of the project's git remote and record its tip as an imported checkpoint, child of the checkpoint of the nearest commit it descends from (else the root); created: false when the tip already is a checkpoint's commit",
          { parameters: [idParam()], requestBody: body(fetchGitRemoteBody) },
        ),
      },
      '/checkpoints/{id}/files/{path}': { get: op('One file of a checkpoint', { parameters: [idParam(), idParam('path')] }) },
      '/checkpoints/{a}/diff/{b}': { get: op('Paths added, modified and deleted from a to b', { parameters: [idParam('a'), idParam('b')] }) },
      '/pipelines': { post: op('Start a pipeline: a DAG of machine steps (202)', { requestBody: body(createPipelineBody) }) },
      '/pipelines/{id}': { get: op('A pipeline with the status and timing of each step', { parameters: [idParam(), ...waitParams] }) },
      '/projects/{id}/pipelines': { get: op("A project's pipelines, newest first, with each step's status", { parameters: [idParam(), ...query(pageQuery)] }) },
      '/projects/{id}/payment-methods': {
        put: op(
          "Set the ordered payment methods (422 when the platform lacks a method's settings, or a crypto method sends address or rate: the deployment sets those)",
          {
            parameters: [idParam()],
            requestBody: body(putPaymentMethodsBody),
          },
        ),
        get: op('The ordered payment methods', { parameters: [idParam()] }),
      },
      '/projects/{id}/topups': {
        post: op('Top up the prepaid balance: starts the payment cascade (202 { paymentId })', { parameters: [idParam()], requestBody: body(topupBody) }),
      },
      '/projects/{id}/credits': {
        post: op('Grant free credits (used first by a credits method) until expiresAt', { parameters: [idParam()], requestBody: body(creditBody) }),
        get: op('Free credits with what remains of each', { parameters: [idParam()] }),
      },
      '/projects/{id}/auto-topup': {
        put: op(
          'Top up automatically whenever the prepaid balance not held by running machines falls below `threshold` (checked after each settlement and at each budget window renewal)',
          {
            parameters: [idParam()],
            requestBody: body(autoTopupBody),
          },
        ),
        delete: op('Stop the automatic top-up (204)', { parameters: [idParam()] }),
      },
      '/projects/{id}/payments': { get: op("A project's payments, newest first, each with its attempts", { parameters: [idParam(), ...query(pageQuery)] }) },
      '/projects/{id}/balance': { get: op('The prepaid balance: paid top-ups per currency', { parameters: [idParam()] }) },
      '/payments/{id}': {
        get: op('A payment: status (running, manual_required, succeeded, failed) and every attempt', { parameters: [idParam(), ...waitParams] }),
      },
      '/payments/{id}/approve': { post: op('Approve a payment waiting for manual approval (202); 409 otherwise', { parameters: [idParam()] }) },
      '/pipelines/{id}/cancel': { post: op('Cancel a pipeline: running machines are terminated, reservations settled', { parameters: [idParam()] }) },
      '/machines/{id}/extend': {
        post: op('Give a paused machine more money, time or API calls', { parameters: [idParam()], requestBody: body(extendMachineBody) }),
      },
      '/machines/{id}/artifacts': { get: op('Artifacts of a machine (conversation, tool output)', { parameters: [idParam()] }) },
      '/machines/{id}/artifacts/{name}': {
        get: op('One artifact of a machine by name (a declared artifact is named by its workspace path)', { parameters: [idParam(), idParam('name')] }),
      },
      '/projects/{id}/limit-policy': {
        put: op('What machines do at a limit: stop or pause', { parameters: [idParam()], requestBody: body(putLimitPolicyBody) }),
      },
      '/projects/{id}/machine-types/{type}/budget': {
        put: op('A per-type daily budget', { parameters: [idParam(), idParam('type')], requestBody: body(putTypeBudgetBody) }),
      },
      '/audit': { get: op('The audit log', { parameters: query(auditQuery) }) },
      '/alerts': {
        get: op(
          "Alerts of the caller's projects, newest first: a budget past a threshold of its limit or forecast to run out, a machine paused for a decision or running past its time limit or near its memory/disk limit, a failed payment, a provider gone unavailable, a model provider's rate limit nearly used up, a project's own alert rule met. Each is open until its condition clears, then resolved (status, resolvedAt, resolution; an alert.resolved event). Filters: status (open, resolved), kind, projectId (also alert.* events on /events)",
          { parameters: query(alertsQuery) },
        ),
      },
      '/projects/{id}/alert-rules': {
        post: op(
          `Add an alert rule to the project: metric (${ALERT_METRICS.join(', ')}), comparator (${ALERT_COMPARATORS.join(' ')}), threshold (a decimal string: money in the project's currency, a percentage, or a whole count) and severity (info, warning, critical; default warning), optional name. The alert evaluator raises one alert_rule alert while the rule is met and resolves it when it no longer is. A wrong metric, comparator, threshold or severity is 422 naming the field`,
          { parameters: [idParam()], requestBody: body(createAlertRuleBody) },
        ),
        get: op("The project's alert rules, oldest first", { parameters: [idParam()] }),
      },
      '/projects/{id}/alert-rules/{ruleId}': {
        delete: op('Delete an alert rule of the project; its open alert resolves', { parameters: [idParam(), idParam('ruleId')] }),
      },
      '/audit/verify': { get: op('Verifies the audit hash chain') },
      '/backups': {
        get: op(
          'The complete platform backups (database dump, repositories, snapshot chunks) in the primary and replica backup directories, newest first (admins)',
        ),
        post: op(
          'Start a platform backup now, the same workflow its Temporal Schedule runs (202 with its id and workflow id; audited as backup.requested). Restore with `npm run restore` while the platform is stopped',
        ),
      },
      '/projects/{id}/recoveries': {
        post: op(
          'Point-in-time recovery of one project to `at` (admins): its projects, budgets, costs, checkpoints, machines, objectives and pipelines rows as of that moment, from the change journal. `copy` (default) makes a new project "<name> (as of <at>)" with its own repository of the checkpoints made by then and the audit records up to then re-recorded (201); `in-place` rewrites the project (409 while work is in flight; spend after `at` stays, as adjustment cost events; removed checkpoints stay under refs/recovered/). `dryRun` only counts rows per table. 422 for a moment in the future, before the journal reaches back (AUTOVIBE_PROJECT_HISTORY_DAYS), before the project existed, or with work in flight then. Audited as project.recovered',
          { parameters: [idParam()], requestBody: body(recoverProjectBody) },
        ),
      },
      '/openapi.json': { get: op('This document') },
      '/providers': { get: op('Compute providers and whether each can run machines here (with the reason when not)') },
      '/projects/{id}/placement': {
        get: op('The placement policy of a project: its rules, then the defaults', { parameters: [idParam()] }),
        put: op('Set the placement rules of a project (per machine type, complexity, interruptibility)', {
          parameters: [idParam()],
          requestBody: body(putPlacementBody),
        }),
      },
      '/projects/{id}/network-policy': {
        get: op('The network policy of a project: none, registries (package registries only) or an allowlist of hosts', { parameters: [idParam()] }),
        put: op(
          "Set the project's network policy (owners): what its machines may reach through their egress proxy unless a request narrows it; every connection is audited (network.connection / network.refused)",
          { parameters: [idParam()], requestBody: body(putNetworkPolicyBody) },
        ),
      },
      '/fx/rates': { get: op('Live exchange rates from a base currency, with source and time', { parameters: query(fxRatesQuery) }) },
      '/cost-centers': {
        post: op('Create a cost center (development, testing or deployment) in a department', { requestBody: body(createCostCenterBody) }),
        get: op('List cost centers', { parameters: query(listCostCentersQuery) }),
      },
      '/projects/{id}/cost-center': {
        put: op('Allocate the project to a cost center (null: none)', { parameters: [idParam()], requestBody: body(putProjectCostCenterBody) }),
      },
      '/cost-centers/{id}': { get: op('A cost center with its budget', { parameters: [idParam()] }) },
      '/cost-centers/{id}/budget': {
        put: op('Set the cost center budget (any supported currency)', { parameters: [idParam()], requestBody: body(putBudgetBody) }),
      },
      '/cost-centers/{id}/costs': {
        get: op("Cost events and totals per currency of a cost center, and their grand total in the viewer's currency (?currency=, USD unless asked)", {
          parameters: [idParam(), ...query(rollupCurrencyQuery)],
        }),
      },
      '/departments/{name}/budget': {
        put: op('Set the department budget (any supported currency)', { parameters: [idParam('name')], requestBody: body(putBudgetBody) }),
      },
      '/projects/{id}/forecast': {
        get: op(
          "The project's spend forecast as the forecast-refresh schedule last stored it: daily and 7/14/21/28-day totals with 80 % and 95 % intervals, the method the backtest chose and its figures, the budget's exhaustion date with its interval, and recommendations; 404 forecast not ready until the schedule ran",
          { parameters: [idParam()] },
        ),
      },
      '/cost-centers/{id}/forecast': { get: op("A cost center's stored spend forecast (as for projects)", { parameters: [idParam()] }) },
      '/departments/{name}/forecast': { get: op("A department's stored spend forecast (as for projects)", { parameters: [idParam('name')] }) },
      '/departments/{name}/costs': {
        get: op("Department roll-up: totals per currency and per cost center, and the grand total in the viewer's currency (?currency=, USD unless asked)", {
          parameters: [idParam('name'), ...query(rollupCurrencyQuery)],
        }),
      },
      '/cost-centers/{id}/costs/breakdown': {
        get: op(
          "Spend allocated to a cost center in [from, to) (default the last 30 days) grouped by machineType, provider, model, category, costCenter, objective or project and by the projects' currency (never converted); each currency's groups add up to its total exactly",
          { parameters: [idParam(), ...breakdownParams] },
        ),
      },
      '/cost-centers/{id}/reallocation': {
        get: op("The cost center's budget reallocation settings (defaults with configured: false until set)", { parameters: [idParam()] }),
        put: op(
          "Set the cost center's budget reallocation (admins): enabled, dryRun (scheduled runs only preview), maxStepPercent (1-50), lookbackDays (1-90), minAllocation and maxAllocation in its budget's currency; the cost center needs a budget",
          { parameters: [idParam()], requestBody: body(putReallocationBody) },
        ),
      },
      '/cost-centers/{id}/reallocation/runs': {
        post: op(
          'Run the reallocation now (admins): ?dryRun=true previews the moves and changes nothing; otherwise the moves are applied through the project budget use case. The Idempotency-Key names the run: a repeat applies nothing twice',
          { parameters: [idParam(), ...query(runReallocationQuery)] },
        ),
        get: op("The cost center's reallocation runs, newest first, each with its moves and their explanations", {
          parameters: [idParam(), ...query(listRunsQuery)],
        }),
      },
      '/departments/{name}/reallocation': {
        get: op("The department's budget reallocation settings (as for a cost center; its projects are those of its cost centers)", {
          parameters: [idParam('name')],
        }),
        put: op("Set the department's budget reallocation (admins), as for a cost center; the department needs a budget", {
          parameters: [idParam('name')],
          requestBody: body(putReallocationBody),
        }),
      },
      '/departments/{name}/reallocation/runs': {
        post: op('Run the department reallocation now (admins), as for a cost center; ?dryRun=true previews', {
          parameters: [idParam('name'), ...query(runReallocationQuery)],
        }),
        get: op("The department's reallocation runs, newest first, with their moves", { parameters: [idParam('name'), ...query(listRunsQuery)] }),
      },
      '/departments/{name}/costs/breakdown': {
        get: op("Spend allocated to a department's cost centers, grouped as for a cost center", { parameters: [idParam('name'), ...breakdownParams] }),
      },
      '/keys': {
        post: op('Create an API key with a role, optionally bound to projects (201; the secret `key` is shown only here)', {
          requestBody: body(createKeyBody),
        }),
        get: op('API keys the caller may manage (prefix only, never the secret)', { parameters: query(pageQuery) }),
      },
      '/keys/{id}': {
        get: op('One API key (prefix, role, projects, expiry, last use)', { parameters: [idParam()] }),
        patch: op('Set or clear the expiry of a key (its holder may only bring it forward)', { parameters: [idParam()], requestBody: body(patchKeyBody) }),
        delete: op('Revoke a key (204); it answers 401 from then on', { parameters: [idParam()] }),
      },
      '/keys/{id}/rotate': { post: op('A new secret for the same key (201 { key }); the old secret stops working at once', { parameters: [idParam()] }) },
      '/whoami': { get: op('The calling key: role, projects, expiry, and its user') },
      '/webhooks': {
        post: op(
          'Create a webhook endpoint of a project (or, for admins without projectId, of the deployment) for the event kinds it subscribes to: kind webhook (signed per Standard Webhooks) or slack (an incoming-webhook URL, Block Kit messages) or slack-bot (chat.postMessage to `channel` with a bot `token` that is kept and never shown back; url defaults to https://slack.com/api). 201 with the signing secret `whsec_…`, shown only here; a loopback, link-local, private or metadata URL is 400',
          { requestBody: body(createWebhookBody) },
        ),
        get: op('Webhook endpoints the caller may see (never their secrets)', { parameters: query(listWebhooksQuery) }),
      },
      '/webhooks/{id}': {
        get: op('One webhook endpoint: status (active, disabled and why), failures, cursor', { parameters: [idParam()] }),
        patch: op(
          'Change url, events or description (a slack-bot endpoint also its channel or token); enabled: true re-enables a disabled endpoint (false disables it)',
          {
            parameters: [idParam()],
            requestBody: body(patchWebhookBody),
          },
        ),
        delete: op('Delete the endpoint and its delivery log (204); its dispatcher stops', { parameters: [idParam()] }),
      },
      '/webhooks/{id}/rotate-secret': {
        post: op('A new signing secret (201, shown only here); the old one signs too (a second signature) for 24 hours', { parameters: [idParam()] }),
      },
      '/webhooks/{id}/deliveries': {
        get: op('The delivery log, newest first: each delivery of an event with every attempt (status code, duration, error)', {
          parameters: [idParam(), ...query(pageQuery)],
        }),
      },
      '/webhooks/{id}/deliveries/{deliveryId}/redeliver': {
        post: op("Send a delivery's event again (202; same webhook-id), as a new delivery in the log", { parameters: [idParam(), idParam('deliveryId')] }),
      },
      '/batch': {
        post: op(
          'Several operations in one request, run one after another in order; each is answered in its own slot (status, headers, body) exactly as that request sent alone with the same key would be: authorized, validated, rate-limited, audited and (with idempotencyKey) idempotent on its own. 413 past the batch limit; a nested batch, follow=true, or waitFor without a timeout of at most 5 s is 422 in its slot',
          { requestBody: body(batchRequest) },
        ),
      },
      '/machines/{id}/logs': {
        get: op(
          "A machine's output as text/plain (stdout, stderr, agent turns and tool calls); X-Log-Seq tells where `after` resumes; `follow=true` streams until the machine ends",
          {
            parameters: [
              idParam(),
              q('stream', 'stdout, stderr, agent or system (comma-separated)'),
              q('after', 'Only chunks after this seq'),
              q('follow', 'true: stream until the machine ends'),
            ],
          },
        ),
      },
      '/events': {
        get: op(
          "The event feed (machine, objective, pipeline, payment, budget and alert events) of the caller's projects: Server-Sent Events with Accept: text/event-stream (id = seq; resumes from Last-Event-ID or cursor), else one JSON page { items, nextCursor }",
          {
            parameters: [
              q('projectId', 'Only this project'),
              q('kinds', 'Comma-separated kinds or families (machine.status, budget.*)'),
              q('cursor', 'The seq to resume after (0: from the start)'),
              q('limit', 'JSON page size (1..500)'),
            ],
          },
        ),
      },
      '/graphql': {
        post: op(
          'GraphQL: { query, variables?, operationName? } → { data, errors }. The same data, permissions and errors as the REST routes (each error has extensions { code, status, reason }); depth and complexity are limited. Subscriptions (`events`) over WebSocket at this path (graphql-transport-ws, key in connection_init { authorization })',
          { requestBody: { required: true, content: { 'application/json': { schema: graphqlBody } } } },
        ),
        get: op('GraphQL queries (not mutations) with ?query=&variables=&operationName=', {
          parameters: [q('query', 'The GraphQL document'), q('variables', 'JSON object'), q('operationName', 'Which operation of the document to run')],
        }),
      },
      '/events/ws': {
        get: op('The event feed over WebSocket (same filters as /events; key in Authorization or ?access_token=); a plain GET answers 426', {
          parameters: [
            q('projectId', 'Only this project'),
            q('kinds', 'Kinds or families'),
            q('cursor', 'The seq to resume after'),
            q('access_token', 'The API key, for clients that cannot set headers'),
          ],
        }),
      },
    },
  };
}
