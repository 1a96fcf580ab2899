import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Principal } from '../../domain/permissions.js';
import { findPrincipal } from '../../store/auth.js';
import type { ApiContext } from '../context.js';
import type { GraphqlContext } from './context.js';
import { mapResultErrors, requestError } from './errors.js';
import { prepare } from './limits.js';
import { graphqlSchema } from './schema.js';

export const GRAPHQL_PATH = '/v1/graphql';

/** A WebSocket endpoint on the api's HTTP server (api/events-socket.ts routes upgrades by path). */
export interface UpgradeRoute {
  path: string;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

interface ConnectionParams {
  authorization?: unknown;
  [k: string]: unknown;
}

/**
 * GraphQL subscriptions over WebSocket at /v1/graphql (graphql-ws, the `graphql-transport-ws`
 * protocol). The API key comes in `connection_init`'s payload, { authorization: 'Bearer <key>' };
 * without a valid one the socket closes with 4401 and the reason. Only subscriptions run here:
 * queries and mutations go through POST /v1/graphql, with its rate limit and idempotency keys.
 * Each operation passes the same depth and complexity limits as over HTTP.
 */
export function graphqlSocket(api: ApiContext): UpgradeRoute {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const schema = graphqlSchema();
  const server = useServer<ConnectionParams, { principal?: Principal }>(
    {
      schema,
      async onConnect(ctx) {
        const header = ctx.connectionParams?.authorization;
        const key = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;
        const principal = key ? await findPrincipal(api.db, key) : null;
        if (!principal) {
          const reason = key ? 'unknown, expired or revoked API key' : 'missing API key: send { authorization: "Bearer <api key>" } in connection_init';
          ctx.extra.socket.close(CloseCode.Unauthorized, reason);
          return false;
        }
        ctx.extra.principal = principal;
        return true;
      },
      onSubscribe(ctx, _id, payload) {
        const prepared = prepare(schema, payload);
        if (!prepared.ok) return prepared.errors;
        if (prepared.operation.operation !== 'subscription') {
          return [requestError(`queries and mutations go to POST ${GRAPHQL_PATH}; this socket runs subscriptions`, 'BAD_REQUEST')];
        }
        const contextValue: GraphqlContext = { api, principal: ctx.extra.principal!, site: { method: 'WEBSOCKET', path: GRAPHQL_PATH } };
        return {
          schema,
          document: prepared.document,
          variableValues: prepared.variables,
          operationName: prepared.operationName ?? null,
          contextValue,
        };
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        const mapped = mapResultErrors(result, api.log);
        return mapped === result ? undefined : { ...mapped, errors: mapped.errors?.map((e) => e.toJSON()) };
      },
    },
    wss,
    15_000,
  );
  return {
    path: GRAPHQL_PATH,
    handleUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await server.dispose();
    },
  };
}
