import { Router, type RequestHandler } from 'express';
import type { Permission } from '../../domain/permissions.js';
import type { OwnedKind } from '../../store/access.js';
import { authorize } from '../auth.js';
import type { ApiContext } from '../context.js';

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

export interface RouteSpec {
  method: Method;
  /** The express path under /v1, e.g. `/machines/:id`. */
  path: string;
  access: Access;
}

/** Shorthands for the common references. */
export const inPath = (kind: ResourceRef['kind'], name = 'id'): ResourceRef => ({ kind, in: 'path', name });
export const inBody = (kind: ResourceRef['kind'], name: string): ResourceRef => ({ kind, in: 'body', name });
export const inQuery = (kind: ResourceRef['kind'], name: string): ResourceRef => ({ kind, in: 'query', name });

/**
 * A group of routes that cannot be registered without declaring their access: every handler
 * runs after `authorize`, and the group keeps its specs for the OpenAPI check and the
 * permission matrix test.
 */
export class RouteGroup {
  readonly router = Router();
  readonly specs: RouteSpec[] = [];
  constructor(private readonly ctx: ApiContext) {}

  private add(method: Method, path: string, access: Access, handlers: RequestHandler[]) {
    this.specs.push({ method, path, access });
    this.router[method](path, authorize(this.ctx, access), ...handlers);
  }
  get(path: string, access: Access, ...handlers: RequestHandler[]) {
    this.add('get', path, access, handlers);
  }
  post(path: string, access: Access, ...handlers: RequestHandler[]) {
    this.add('post', path, access, handlers);
  }
  put(path: string, access: Access, ...handlers: RequestHandler[]) {
    this.add('put', path, access, handlers);
  }
  patch(path: string, access: Access, ...handlers: RequestHandler[]) {
    this.add('patch', path, access, handlers);
  }
  delete(path: string, access: Access, ...handlers: RequestHandler[]) {
    this.add('delete', path, access, handlers);
  }
}
