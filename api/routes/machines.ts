import * as R from '../responses.js';
import { RouteGroup, inPath, inBody, inQuery } from './table.js';
import { waitForStatus } from '../event-stream.js';
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors.js';
import { z } from 'zod';
import { DEFAULT_MACHINE_MINUTES, FINAL_MACHINE_STATUSES, MACHINE_STATUSES, MACHINE_TYPES } from '../../domain/machines.js';
import { machineTypeSpec } from '../../domain/machine-types.js';
import { machineTypeAvailability } from '../machine-types.js';
import { machineMoneyLimit } from '../money-limits.js';
import { providerAvailability } from '../../store/compute.js';
import { decidePlacement, withCapacity } from '../../domain/placement.js';
import { getPlacementPolicy, runningByProvider } from '../../store/compute.js';
import { formatAmount } from '../../domain/money.js';
import { appendAudit, listAudit } from '../../store/audit.js';
import { getCheckpoint, listCheckpoints, machineCheckpointIds } from '../../store/checkpoints.js';
import { listArtifacts } from '../../store/artifacts.js';
import { checkDeclaredArtifacts, resolveInputEntries } from '../../store/artifact-inputs.js';
import { hasInputs, resolveStepRefs } from '../../domain/artifacts.js';
import { costTotals } from '../../store/costs.js';
import { getCacheRecord } from '../../store/cache.js';
import { getCostCenter } from '../../store/cost-centers.js';
import { getMachine, pageMachines, updateMachine, type Machine } from '../../store/machines.js';
import { runVisibility } from '../../domain/search-attributes.js';
import { checkpointSignal, extendSignal, machineRun, reservationUpdate, terminateSignal } from '../../workflows/index.js';
import { actorOf, param, principalOf, type ApiContext } from '../context.js';
import { MESSAGES } from '../errors.js';
import { idFromIdempotencyKey } from '../idempotency.js';
import { placeAndRecordMachine } from '../../store/machine-requests.js';
import { createdKey, decodeCursor, pageInMemory, pageOf, pageQuery } from '../pagination.js';
import { presentCache, presentMachine } from '../present.js';
import { createMachineBody, extendMachineBody, listMachinesQuery } from '../schemas.js';
import { loadProject, parseAmountField } from './projects.js';

export function machineRoutes(ctx: ApiContext): RouteGroup {
  const r = new RouteGroup(ctx);
  const { db, temporal, config } = ctx;

  async function loadMachine(id: string): Promise<Machine> {
    const m = await getMachine(db, id);
    if (!m) throw new NotFoundError(MESSAGES.notFound('machine', id));
    return m;
  }

  async function present(m: Machine) {
    const project = await loadProject(ctx, m.projectId);
    const totals = await costTotals(db, { machineId: m.id });
    const cost = Object.values(totals).reduce((a, b) => a + b, 0n);
    const events = (await listAudit(db, { subjectId: m.id, limit: 200 })).map((a) => ({ at: a.at, action: a.action, actor: a.actor, details: a.details }));
    return { ...presentMachine(m, cost, project.currency, await machineCheckpointIds(db, m.id)), cache: presentCache(await getCacheRecord(db, m.id)), events };
  }

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
      const body = createMachineBody.parse(req.body);
      const project = await loadProject(ctx, body.projectId).catch(() => {
        throw new InputError(`projectId: project ${body.projectId} not found`, { field: 'projectId' });
      });
      let checkpointId = body.checkpointId;
      if (checkpointId) {
        const checkpoint = await getCheckpoint(db, checkpointId);
        if (!checkpoint || checkpoint.projectId !== project.id) {
          throw new InputError(`checkpointId: ${checkpointId} is not a checkpoint of project ${project.id}`, { field: 'checkpointId' });
        }
      } else {
        // Without a checkpoint, a machine continues from the project's newest one.
        checkpointId = (await listCheckpoints(db, project.id)).at(-1)!.id;
      }
      if (body.costCenterId && !(await getCostCenter(db, body.costCenterId))) {
        throw new InputError(`costCenterId: cost center ${body.costCenterId} not found`, { field: 'costCenterId' });
      }
      const moneyLimit = body.limits.money ? parseAmountField('limits.money', body.limits.money, project.currency) : project.defaultMachineMoney;
      if (moneyLimit <= 0n) throw new InputError('limits.money: must be more than zero', { field: 'limits.money' });
      const limits = {
        money: formatAmount(moneyLimit, project.currency),
        minutes: body.limits.minutes ?? DEFAULT_MACHINE_MINUTES,
        ...(body.limits.apiCalls ? { apiCalls: body.limits.apiCalls } : {}),
      };
      if (body.type !== 'shell') {
        const availability = machineTypeAvailability(config, body.type);
        if (!availability.available) throw new ConflictError(`type: ${body.type} is unavailable: ${availability.reason}`, 'machine_type_unavailable');
      }
      // Artifact passing: every referenced file / history / artifact must exist in this project now.
      if (body.inputs) await resolveInputEntries(db, project, body.inputs, 'inputs');
      const inputs = hasInputs(body.inputs) ? resolveStepRefs(body.inputs!, {}) : null;
      const artifacts = body.artifacts?.length ? checkDeclaredArtifacts(body.artifacts, 'artifacts') : null;

      const { availability: reported } = await providerAvailability(db);
      const availability = withCapacity(reported, await runningByProvider(db), config.providerCapacity);
      const placement = decidePlacement(
        (await getPlacementPolicy(db, project.id))?.policy ?? null,
        {
          type: body.type,
          minutes: limits.minutes,
          ...(body.provider ? { provider: body.provider } : {}),
          ...(body.profile ? { profile: body.profile } : {}),
          ...(body.spot !== undefined ? { spot: body.spot } : {}),
        },
        availability,
      );
      if (!placement.ok) {
        throw new InputError(`${body.provider ? 'provider: ' : ''}${placement.reason}`, { field: 'provider', skipped: placement.skipped });
      }
      // The limit must cover one worst-case model call plus the compute, or the first call is refused.
      const limit = await machineMoneyLimit(ctx, project, {
        ...body,
        requested: body.limits.money ? moneyLimit : null,
        minutes: limits.minutes,
        profile: placement.profile,
      });
      limits.money = formatAmount(limit, project.currency);

      const id = idFromIdempotencyKey('machine', principalOf(req).apiKeyId, req.get('idempotency-key'));
      // Placed again under the placement lock, with the row and its audit record in one
      // transaction: the same request path objectives and pipelines take.
      const placed = await placeAndRecordMachine(db, config.providerCapacity, {
        id,
        projectId: project.id,
        objectiveId: null,
        type: body.type,
        minutes: limits.minutes,
        ...(body.provider ? { provider: body.provider } : {}),
        profile: placement.profile,
        ...(body.spot !== undefined ? { spot: body.spot } : {}),
        command: body.command ?? null,
        prompt: body.prompt ?? null,
        parentCheckpointId: checkpointId,
        limits,
        workflowId: id,
        createdBy: principalOf(req).userId,
        costCenterId: body.costCenterId ?? null,
        actor: actorOf(req),
        details: { profile: body.profile, ...(inputs ? { inputs } : {}), ...(artifacts ? { artifacts } : {}) },
      });
      if (!placed.ok) throw new InputError(`${body.provider ? 'provider: ' : ''}${placed.reason}`, { field: 'provider', skipped: placed.skipped });
      const handle = await temporal.workflow
        .start(machineRun, {
          workflowId: id,
          taskQueue: config.taskQueue,
          ...runVisibility(
            'machine',
            {
              project: project.id,
              machineType: body.type,
              provider: placed.provider,
              status: 'pending',
              costCenter: body.costCenterId ?? project.costCenterId,
            },
            { searchAttributes: config.searchAttributes, details: { machine: id, profile: placed.profile, requestedBy: principalOf(req).name } },
          ),
          args: [
            {
              machineId: id,
              projectId: project.id,
              type: body.type,
              command: body.command ?? '',
              prompt: body.prompt ?? null,
              model: body.model ?? null,
              parentCheckpointId: checkpointId,
              profile: placed.profile,
              provider: placed.provider,
              spot: placed.spot,
              limits,
              heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
              limitPolicy: placed.limitPolicy,
              ...(body.checkpointEveryMinutes ? { checkpointEveryMinutes: body.checkpointEveryMinutes } : {}),
              ...(inputs ? { inputs } : {}),
              ...(artifacts ? { artifacts } : {}),
              ...(body.cache === false ? { cache: false } : {}),
            },
          ],
          workflowIdConflictPolicy: 'USE_EXISTING',
        })
        .catch(async (err) => {
          await updateMachine(db, id, { status: 'failed', error: `could not start: ${(err as Error).message}`, endedAt: new Date() });
          throw err;
        });
      // The workflow owns the reservation; wait for its verdict so a refusal is a 409 now.
      try {
        const outcome = await handle.executeUpdate(reservationUpdate);
        if (!outcome.ok) {
          throw new ConflictError(outcome.message, outcome.code, { remaining: outcome.remaining ?? null, currency: outcome.currency, machineId: id });
        }
      } catch (err) {
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || err instanceof WorkflowUpdateFailedError) {
          // Still deciding (or already past it): the machine is accepted and its status tells the outcome.
          ctx.log.warn({ machineId: id, err: (err as Error).message }, 'reservation outcome not yet known');
        } else throw err;
      }
      const machine = await loadMachine(id);
      res.status(202).json({ id, workflowId: id, status: machine.status === 'pending' ? 'running' : machine.status });
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
    res.json({ items: await Promise.all(page.items.map((r) => present(r.item))), nextCursor: page.nextCursor });
  });

  r.get('/machines/:id', { permission: 'machines.read', resource: inPath('machine') }, { 200: R.machine }, waitForStatus.machine(db), async (req, res) => {
    res.json(await present(await loadMachine(param(req, 'id'))));
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
      const artifact = (await listArtifacts(db, machine.id)).find((a) => a.name === param(req, 'name'));
      if (!artifact) throw new NotFoundError(`machine ${machine.id} has no artifact ${param(req, 'name')}`);
      res.type(artifact.name.endsWith('.json') ? 'application/json' : 'text/plain').sendFile(artifact.path);
    },
  );

  r.post(
    '/machines/:id/terminate',
    { permission: 'machines.run', resource: inPath('machine') },
    { 202: R.statusOf(z.literal('terminating')) },
    async (req, res) => {
      const machine = await loadMachine(param(req, 'id'));
      if (FINAL_MACHINE_STATUSES.includes(machine.status)) {
        throw new ConflictError(`machine ${machine.id} already ended (${machine.status})`, 'machine_ended');
      }
      await temporal.workflow.getHandle(machine.workflowId).signal(terminateSignal, { by: actorOf(req) });
      await appendAudit(db, {
        actor: actorOf(req),
        action: 'machine.terminate_requested',
        subjectType: 'machine',
        subjectId: machine.id,
        projectId: machine.projectId,
      });
      res.status(202).json({ id: machine.id, status: 'terminating' });
    },
  );

  r.post('/machines/:id/extend', { permission: 'machines.run', resource: inPath('machine') }, { 202: R.statusOf(z.literal('resuming')) }, async (req, res) => {
    const machine = await loadMachine(param(req, 'id'));
    const body = extendMachineBody.parse(req.body);
    const project = await loadProject(ctx, machine.projectId);
    if (body.money) {
      const more = parseAmountField('money', body.money, project.currency);
      if (more <= 0n) throw new InputError('money: must be more than zero', { field: 'money' });
    }
    if (machine.status !== 'paused') {
      throw new ConflictError(`machine ${machine.id} is ${machine.status}; only a paused machine can be extended`, 'machine_not_paused');
    }
    await temporal.workflow.getHandle(machine.workflowId).signal(extendSignal, { ...body, by: actorOf(req) });
    await appendAudit(db, {
      actor: actorOf(req),
      action: 'machine.extend_requested',
      subjectType: 'machine',
      subjectId: machine.id,
      projectId: machine.projectId,
      details: body,
    });
    res.status(202).json({ id: machine.id, status: 'resuming' });
  });

  r.post(
    '/machines/:id/checkpoint',
    { permission: 'machines.run', resource: inPath('machine') },
    { 202: R.statusOf(z.enum(MACHINE_STATUSES)) },
    async (req, res) => {
      const machine = await loadMachine(param(req, 'id'));
      if (FINAL_MACHINE_STATUSES.includes(machine.status)) {
        throw new ConflictError(
          `machine ${machine.id} already ended (${machine.status}); its final checkpoint is in GET /v1/machines/${machine.id}`,
          'machine_ended',
        );
      }
      await temporal.workflow.getHandle(machine.workflowId).signal(checkpointSignal, { by: actorOf(req) });
      await appendAudit(db, {
        actor: actorOf(req),
        action: 'machine.checkpoint_requested',
        subjectType: 'machine',
        subjectId: machine.id,
        projectId: machine.projectId,
      });
      res.status(202).json({ id: machine.id, status: machine.status });
    },
  );

  return r;
}
