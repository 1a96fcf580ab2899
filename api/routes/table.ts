import { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { Permission } from '../../domain/permissions.js';
import type { OwnedKind } from '../../store/access.js';
import { authorize } from '../auth.js';
import type { ApiContext } from '../context.js';
import type { RawBody } from '../responses.js';

/** A resource a route names, and where in the request its id is. */
export interface ResourceRef {
  kind: OwnedKind | 'cost-center';
  in: 'path' | 'body' | 'query';
  name: string;
}

/**
 * What a route needs: a permission, and which resources decide the project it acts on.
 * - `none`: no project (catalogs, keys, the caller itself; lists filter by the caller's projects);
 * - one or more resource references: each must be in the caller's projects;
 * - `deploymentWide`: the work spans projects, so only keys not bound to projects may do it.
 */
export interface Access {
  permission: Permission;
  resource: 'none' | ResourceRef | ResourceRef[];
  deploymentWide?: true;
}

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export type SuccessStatus = 200 | 201 | 202 | 204;
/** What a route answers with one success status: a JSON schema, a file (`raw`), or no body (`noContent`, for 204). */
export type ResponseBody = z.ZodType | RawBody | null;
/** A route's success responses by status: at least one, so a route cannot be added without its contract. */
export type Responses = {
  [S in SuccessStatus]: { [K in S]: ResponseBody } & { [K in Exclude<SuccessStatus, S>]?: ResponseBody };
}[SuccessStatus];

export interface RouteSpec {
  method: Method;
  /** The express path under /v1, e.g. `/machines/:id`. */
  path: string;
  access: Access;
  responses: Responses;
}

/** Shorthands for the common references. */
export const inPath = (kind: ResourceRef['kind'], name = 'id'): ResourceRef => ({ kind, in: 'path', name });
export const inBody = (kind: ResourceRef['kind'], name: string): ResourceRef => ({ kind, in: 'body', name });
export const inQuery = (kind: ResourceRef['kind'], name: string): ResourceRef => ({ kind, in: 'query', name });

/**
 * Why a 2xx JSON body does not match the route's declared responses, or null when it does. The
 * body is checked as it goes on the wire (after JSON), so dates are the ISO strings clients see.
 */
export function responseProblem(responses: Responses, status: number, body: unknown): { message: string; issues: unknown[] } | null {
  const declared = (responses as Partial<Record<number, ResponseBody>>)[status];
  if (declared === undefined) return { message: `status ${status} is not a declared response (${Object.keys(responses).join(', ')})`, issues: [] };
  if (!(declared instanceof z.ZodType)) return { message: `status ${status} is declared without a JSON body`, issues: [] };
  const wire: unknown = body === undefined ? undefined : JSON.parse(JSON.stringify(body));
  const result = declared.safeParse(wire);
  if (result.success) return null;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
  return { message: issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues };
}

/**
 * With `validateResponses` on, every 2xx JSON answer of the route is checked against its declared
 * schema; a mismatch is logged and answered as a 500 `response_schema_mismatch` naming the route,
 * so a test that reaches the route fails loudly instead of passing over a broken contract.
 */
function validateResponses(ctx: ApiContext, method: Method, path: string, responses: Responses): RequestHandler {
  return (req, res, next) => {
    if (!ctx.config.validateResponses) return next();
    const json = res.json.bind(res) as Response['json'];
    res.json = (body: unknown) => {
      if (res.statusCode < 200 || res.statusCode >= 300) return json(body);
      const problem = responseProblem(responses, res.statusCode, body);
      if (!problem) return json(body);
      const route = `${method.toUpperCase()} /v1${path}`;
      const status = res.statusCode;
      ctx.log.error({ route, status, issues: problem.issues, requestId: req.requestId }, 'response does not match its schema');
      res.status(500);
      return json({
        error: {
          code: 'response_schema_mismatch',
          message: `${route} answered ${status} with a body its declared schema refuses: ${problem.message}`,
          details: { route, status, issues: problem.issues },
        },
        requestId: req.requestId,
      });
    };
    next();
  };
}

/**
 * A group of routes that cannot be registered without declaring their access and their success
 * responses: every handler runs after `authorize`, and the group keeps its specs for the OpenAPI
 * document, the permission matrix test and response validation.
 */
export class RouteGroup {
  readonly router = Router();
  readonly specs: RouteSpec[] = [];
  constructor(private readonly ctx: ApiContext) {}

  private add(method: Method, path: string, access: Access, responses: Responses, handlers: RequestHandler[]) {
    this.specs.push({ method, path, access, responses });
    this.router[method](path, authorize(this.ctx, access), validateResponses(this.ctx, method, path, responses), ...handlers);
  }
  get(path: string, access: Access, responses: Responses, ...handlers: RequestHandler[]) {
    this.add('get', path, access, responses, handlers);
  }
  post(path: string, access: Access, responses: Responses, ...handlers: RequestHandler[]) {
    this.add('post', path, access, responses, handlers);
  }
  put(path: string, access: Access, responses: Responses, ...handlers: RequestHandler[]) {
    this.add('put', path, access, responses, handlers);
  }
  patch(path: string, access: Access, responses: Responses, ...handlers: RequestHandler[]) {
    this.add('patch', path, access, responses, handlers);
  }
  delete(path: string, access: Access, responses: Responses, ...handlers: RequestHandler[]) {
    this.add('delete', path, access, responses, handlers);
  }
}
