import { graphqlHandler } from '../graphql/http.js';
import type { ApiContext } from '../context.js';
import * as R from '../responses.js';
import { RouteGroup } from './table.js';

/**
 * GraphQL over HTTP. The route needs only what every role has (`projects.read`; the key is
 * already checked by the /v1 middleware): each resolver then authorizes itself with the rules of
 * the REST route that reads or does the same thing (api/graphql/context.ts). Subscriptions take
 * the WebSocket upgrade of the same path (api/graphql/socket.ts).
 */
export function graphqlRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const access = { permission: 'projects.read', resource: 'none' } as const;
  r.post('/graphql', access, { 200: R.graphqlResult }, graphqlHandler(ctx));
  r.get('/graphql', access, { 200: R.graphqlResult }, graphqlHandler(ctx));
  return r;
}
