import * as R from '../responses.js';
import { RouteGroup, inPath, inBody, inQuery } from './table.js';
import { waitForStatus } from '../event-stream.js';
import { ConflictError, NotFoundError } from '../../domain/errors.js';
import { z } from 'zod';
import { MACHINE_STATUSES, MACHINE_TYPES } from '../../domain/machines.js';
import { machineTypeSpec } from '../../domain/machine-types.js';
import { machineTypeAvailability } from '../../services/machine-types.js';
import { providerAvailability } from '../../store/compute.js';
import { artifactContent, listArtifacts } from '../../store/artifacts.js';
import { pageMachines, type Machine } from '../../store/machines.js';
import { callerOf, param, principalOf, type ApiContext } from '../context.js';
import { createdKey, decodeCursor, pageInMemory, pageOf, pageQuery } from '../pagination.js';
import { presentMachines, presentPrediction } from '../present.js';
import { listMachinesQuery } from '../../services/schemas.js';
import { checkpointMachine, extendMachine, requestMachine, requireMachine, terminateMachine } from '../../services/machines.js';

export function machineRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db, config } = ctx;

  const loadMachine = (id: string): Promise<Machine> => requireMachine(ctx, id);

  r.get('/providers', { permission: 'catalog.read', resource: 'none' }, { 200: R.machineProviders }, async (req, res) => {
    const { statuses } = await providerAvailability(db);
    const page = pageInMemory(statuses, pageQuery.parse(req.query), (s) => s.id);
    res.json({
      items: page.items.map((s) => ({ id: s.id, available: s.available, ...(s.reason ? { reason: s.reason } : {}), checkedAt: s.checkedAt })),
      nextCursor: page.nextCursor,
    });
  });

  r.get('/machine-types', { permission: 'catalog.read', resource: 'none' }, { 200: R.machineTypes }, (req, res) => {
    const page = pageInMemory([...MACHINE_TYPES], pageQuery.parse(req.query), (id) => id);
    res.json({
      nextCursor: page.nextCursor,
      items: page.items.map((id) => {
        const spec = machineTypeSpec(id);
        const availability = machineTypeAvailability(config, id);
        return {
          id,
          title: spec.title,
          available: availability.available,
          ...(availability.available ? {} : { reason: availability.reason }),
          capabilities: spec.capabilities,
          defaultModel: spec.defaultModel,
          prices: id === 'shell' ? {} : config.modelPrices[id],
          localInference: spec.localInference,
          dailyBudget: spec.dailyBudget ? { amount: spec.dailyBudget, currency: 'USD' } : null,
        };
      }),
    });
  });

  r.post(
    '/machines',
    { permission: 'machines.run', resource: [inBody('project', 'projectId'), inBody('cost-center', 'costCenterId')] },
    { 202: R.machineAccepted },
    async (req, res) => {
      const accepted = await requestMachine(ctx, callerOf(req), req.body);
      res.status(202).json({ ...accepted, prediction: presentPrediction(accepted.prediction) });
    },
  );

  r.get('/machines', { permission: 'machines.read', resource: inQuery('project', 'projectId') }, { 200: R.page(R.machine) }, async (req, res) => {
    const q = listMachinesQuery.parse(req.query);
    const rows = await pageMachines(db, {
      limit: q.limit + 1,
      after: decodeCursor(q.cursor, createdKey),
      ...(q.projectId ? { projectId: q.projectId } : {}),
      ...(q.status ? { status: q.status } : {}),
      projectIds: principalOf(req).projectIds,
    });
    const page = pageOf(rows, q.limit, (r) => r.key);
    res.json({
      items: await presentMachines(
        db,
        page.items.map((r) => r.item),
      ),
      nextCursor: page.nextCursor,
    });
  });

  r.get('/machines/:id', { permission: 'machines.read', resource: inPath('machine') }, { 200: R.machine }, waitForStatus.machine(db), async (req, res) => {
    res.json((await presentMachines(db, [await loadMachine(param(req, 'id'))]))[0]);
  });

  r.get('/machines/:id/artifacts', { permission: 'machines.read', resource: inPath('machine') }, { 200: R.page(R.artifact) }, async (req, res) => {
    const machine = await loadMachine(param(req, 'id'));
    const page = pageInMemory(await listArtifacts(db, machine.id), pageQuery.parse(req.query), (a) => a.name);
    res.json({ items: page.items.map(({ path: _path, ...a }) => a), nextCursor: page.nextCursor });
  });

  // Declared artifacts are named by their workspace path, so a name may hold '/'.
  r.get(
    '/machines/:id/artifacts/*name',
    { permission: 'machines.read', resource: inPath('machine') },
    { 200: R.raw('application/json', 'text/plain') },
    async (req, res) => {
      const machine = await loadMachine(param(req, 'id'));
      const name = param(req, 'name');
      // From the database, not this host's disk: the worker that wrote it may run elsewhere.
      const content = await artifactContent(db, machine.id, name);
      if (!content) throw new NotFoundError(`machine ${machine.id} has no artifact ${name}`);
      if (!content.ok) throw new ConflictError(content.reason, 'artifact_not_stored');
      res.type(name.endsWith('.json') ? 'application/json' : 'text/plain').send(content.content);
    },
  );

  r.post(
    '/machines/:id/terminate',
    { permission: 'machines.run', resource: inPath('machine') },
    { 202: R.statusOf(z.literal('terminating')) },
    async (req, res) => {
      res.status(202).json(await terminateMachine(ctx, callerOf(req), param(req, 'id')));
    },
  );

  r.post('/machines/:id/extend', { permission: 'machines.run', resource: inPath('machine') }, { 202: R.statusOf(z.literal('resuming')) }, async (req, res) => {
    res.status(202).json(await extendMachine(ctx, callerOf(req), param(req, 'id'), req.body));
  });

  r.post(
    '/machines/:id/checkpoint',
    { permission: 'machines.run', resource: inPath('machine') },
    { 202: R.statusOf(z.enum(MACHINE_STATUSES)) },
    async (req, res) => {
      res.status(202).json(await checkpointMachine(ctx, callerOf(req), param(req, 'id')));
    },
  );

  return r;
}
