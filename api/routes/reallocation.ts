import * as R from '../responses.js';
import { RouteGroup, inPath, type ResourceRef } from './table.js';
import { callerOf, param, type ApiContext } from '../context.js';
import { formatAmount } from '../../domain/money.js';
import type { Request } from 'express';
import { COST_CENTER_SCOPE, DEPARTMENT_SCOPE } from '../../domain/cost-centers.js';
import {
  DEFAULT_SETTINGS,
  reallocationRuns,
  reallocationSettings,
  runReallocationNow,
  setReallocation,
  type Scope,
  type ScopeType,
} from '../../services/reallocation.js';
import type { StoredRun, StoredSettings } from '../../store/reallocation.js';

function presentSettings(scope: { scopeType: string; scopeId: string }, s: StoredSettings | null) {
  if (!s) return { ...scope, configured: false, ...DEFAULT_SETTINGS, minAllocation: '0', currency: null, updatedBy: null, updatedAt: null };
  return {
    scopeType: s.scopeType,
    scopeId: s.scopeId,
    configured: true,
    enabled: s.enabled,
    dryRun: s.dryRun,
    maxStepPercent: s.maxStepPercent,
    lookbackDays: s.lookbackDays,
    currency: s.currency,
    minAllocation: formatAmount(s.minAllocation, s.currency),
    maxAllocation: s.maxAllocation === null ? null : formatAmount(s.maxAllocation, s.currency),
    updatedBy: s.updatedBy,
    updatedAt: s.updatedAt.toISOString(),
  };
}

export function presentRun(r: StoredRun) {
  const c = r.currency;
  const money = (v: bigint | null) => (v === null || c === null ? null : formatAmount(v, c));
  return {
    id: r.id,
    scopeType: r.scopeType,
    scopeId: r.scopeId,
    dryRun: r.dryRun,
    trigger: r.trigger,
    workflowId: r.workflowId,
    status: r.status,
    reason: r.reason,
    currency: r.currency,
    period: r.period,
    limit: money(r.limit),
    allocatedBefore: money(r.allocatedBefore),
    allocatedAfter: money(r.allocatedAfter),
    settings: r.settings,
    projects: r.projects,
    moves: r.moves.map((m) => ({
      seq: m.seq,
      fromProjectId: m.fromProjectId,
      toProjectId: m.toProjectId,
      amount: money(m.amount)!,
      fromBefore: money(m.fromBefore)!,
      fromAfter: money(m.fromBefore - m.amount)!,
      toBefore: money(m.toBefore)!,
      toAfter: money(m.toBefore + m.amount)!,
      status: m.status,
      skipReason: m.skipReason,
      appliedAt: m.appliedAt ? m.appliedAt.toISOString() : null,
      explanation: m.explanation,
      figures: m.figures,
    })),
    createdBy: r.createdBy,
    createdAt: r.createdAt.toISOString(),
    finishedAt: r.finishedAt ? r.finishedAt.toISOString() : null,
  };
}

/** Budget reallocation between the projects of a cost center or a department (README "Reallocation"). */
export function reallocationRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const kinds = [
    { base: '/cost-centers/:id', param: 'id', scopeType: COST_CENTER_SCOPE as ScopeType, resource: inPath('cost-center') as ResourceRef | 'none' },
    { base: '/departments/:name', param: 'name', scopeType: DEPARTMENT_SCOPE as ScopeType, resource: 'none' as ResourceRef | 'none' },
  ];
  for (const k of kinds) {
    const scopeOf = (req: Request): Scope => ({ scopeType: k.scopeType, scopeId: param(req, k.param) });

    r.get(
      `${k.base}/reallocation`,
      { permission: 'cost-centers.read', resource: k.resource, deploymentWide: true },
      { 200: R.reallocationSettings },
      async (req, res) => {
        const { scope, settings } = await reallocationSettings(ctx, scopeOf(req));
        res.json(presentSettings(scope, settings));
      },
    );

    r.put(
      `${k.base}/reallocation`,
      { permission: 'reallocation.manage', resource: k.resource, deploymentWide: true },
      { 200: R.reallocationSettings },
      async (req, res) => {
        const s = await setReallocation(ctx, callerOf(req), scopeOf(req), req.body);
        res.json(presentSettings(s, s));
      },
    );

    r.post(
      `${k.base}/reallocation/runs`,
      { permission: 'reallocation.manage', resource: k.resource, deploymentWide: true },
      { 201: R.reallocationRun },
      async (req, res) => {
        res.status(201).json(presentRun(await runReallocationNow(ctx, callerOf(req), scopeOf(req), req.query)));
      },
    );

    r.get(
      `${k.base}/reallocation/runs`,
      { permission: 'cost-centers.read', resource: k.resource, deploymentWide: true },
      { 200: R.reallocationRuns },
      async (req, res) => {
        res.json({ items: (await reallocationRuns(ctx, scopeOf(req), req.query)).map(presentRun) });
      },
    );
  }
  return r;
}
