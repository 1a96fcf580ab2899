import type { RequestHandler } from 'express';
import { execute, type ExecutionResult } from 'graphql';
import { principalOf, type ApiContext } from '../context.js';
import { siteOf } from '../auth.js';
import { mapResultErrors, requestError } from './errors.js';
import { prepare, type GraphqlRequest } from './limits.js';
import { graphqlSchema } from './schema.js';
import type { GraphqlContext } from './context.js';

/**
 * POST /v1/graphql ({ query, variables?, operationName? }) and GET /v1/graphql?query=… (queries
 * only). A request that cannot run (syntax, validation, depth or complexity over the limit) is a
 * 400 with `errors`; one that ran is a 200 with `data` and the `errors` of the fields that failed,
 * each with extensions { code, status, reason, field?, permission? } as REST would answer it.
 */
export function graphqlHandler(api: ApiContext): RequestHandler {
  return async (req, res, next) => {
    try {
      const schema = graphqlSchema();
      let params: GraphqlRequest;
      if (req.method === 'GET') {
        const q = fromQuery(req.query as Record<string, unknown>);
        if (!q.ok) return void res.status(400).json({ errors: [q.error] });
        params = q.params;
      } else {
        const body: unknown = req.body;
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
          return void res.status(400).json({ errors: [requestError('the body must be a JSON object { query, variables?, operationName? }', 'BAD_REQUEST')] });
        }
        params = body as GraphqlRequest;
      }
      const prepared = prepare(schema, params);
      if (!prepared.ok) return void res.status(400).json({ errors: prepared.errors });
      const kind = prepared.operation.operation;
      if (kind === 'subscription') {
        return void res.status(400).json({
          errors: [requestError('subscriptions run over WebSocket at /v1/graphql (graphql-transport-ws protocol)', 'BAD_REQUEST')],
        });
      }
      // GET is safe: it never changes anything.
      if (kind === 'mutation' && req.method === 'GET') {
        return void res
          .status(405)
          .set('Allow', 'POST')
          .json({ errors: [requestError('mutations need POST', 'METHOD_NOT_ALLOWED', { status: 405 })] });
      }
      const contextValue: GraphqlContext = { api, principal: principalOf(req), site: siteOf(req), idempotencyKey: req.get('idempotency-key') };
      const result = (await execute({
        schema,
        document: prepared.document,
        variableValues: prepared.variables,
        operationName: prepared.operationName ?? null,
        contextValue,
      })) as ExecutionResult;
      res.status(200).json(mapResultErrors(result, api.log, req.requestId));
    } catch (e) {
      next(e);
    }
  };
}

/** GET: `variables` comes JSON-encoded in the query string. */
function fromQuery(q: Record<string, unknown>): { ok: true; params: GraphqlRequest } | { ok: false; error: ReturnType<typeof requestError> } {
  let variables: unknown;
  if (typeof q.variables === 'string' && q.variables !== '') {
    try {
      variables = JSON.parse(q.variables);
    } catch {
      return { ok: false, error: requestError('variables: not valid JSON', 'BAD_REQUEST') };
    }
  }
  return { ok: true, params: { query: q.query, variables, operationName: q.operationName } };
}
