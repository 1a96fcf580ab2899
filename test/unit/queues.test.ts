import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../config/index.js';
import { hostQueue, machineQueue } from '../../domain/queues.js';
import { servedQueues } from '../../workers/worker.js';

const base = { AUTOVIBE_HOME: path.join(os.tmpdir(), 'autovibe-queues-unit'), TEMPORAL_TASK_QUEUE: 'av' };

describe('task queues and worker configuration', () => {
  it('names machine queues after the control queue, per provider and per host', () => {
    assert.equal(machineQueue('autovibe-machines', 'local'), 'autovibe-machines-local');
    assert.equal(hostQueue('autovibe-machines', 'container', 'host1'), 'autovibe-machines-container@host1');
  });

  it('serves the control queue and the machine queues of every given provider by default (npm start)', () => {
    const config = loadConfig(base);
    assert.deepEqual(config.worker.roles, ['control', 'machines']);
    const host = config.worker.host;
    assert.deepEqual(
      servedQueues(config, ['local', 'container']).map((q) => q.name),
      ['av', 'av-local', `av-local@${host}`, 'av-container', `av-container@${host}`],
    );
    assert.equal(config.worker.controlConcurrency, 100);
    assert.equal(config.worker.hostQueueWaitSeconds, 120);
  });

  it('gives two homes on one machine two host names, one home always the same', () => {
    const a = loadConfig({ ...base, AUTOVIBE_HOME: '/tmp/autovibe-a' }).worker.host;
    assert.notEqual(a, loadConfig({ ...base, AUTOVIBE_HOME: '/tmp/autovibe-b' }).worker.host);
    assert.equal(a, loadConfig({ ...base, AUTOVIBE_HOME: '/tmp/autovibe-a' }).worker.host);
    assert.equal(loadConfig({ ...base, AUTOVIBE_WORKER_HOST: 'host1' }).worker.host, 'host1');
  });

  it('serves one role only when told', () => {
    const control = loadConfig({ ...base, AUTOVIBE_WORKER_ROLES: 'control' });
    assert.deepEqual(
      servedQueues(control, ['local']).map((q) => q.name),
      ['av'],
    );
    const machines = loadConfig({
      ...base,
      AUTOVIBE_WORKER_ROLES: 'machines',
      AUTOVIBE_WORKER_HOST: 'h2',
      AUTOVIBE_WORKER_PROVIDERS: 'local',
      AUTOVIBE_WORKER_MACHINE_CONCURRENCY: '1',
    });
    assert.deepEqual(machines.worker.providers, ['local']);
    assert.equal(machines.worker.machineConcurrency, 1);
    assert.deepEqual(
      servedQueues(machines, ['local']).map((q) => [q.name, q.role, q.host]),
      [
        ['av-local', 'machines', null],
        ['av-local@h2', 'machines', 'h2'],
      ],
    );
  });

  it('refuses bad worker settings, naming the variable', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ AUTOVIBE_WORKER_ROLES: 'api' }, /AUTOVIBE_WORKER_ROLES must be control, machines or control,machines/],
      [{ AUTOVIBE_WORKER_PROVIDERS: 'local,moon' }, /AUTOVIBE_WORKER_PROVIDERS must be comma-separated providers of: local, container/],
      [{ AUTOVIBE_WORKER_HOST: 'host 1' }, /AUTOVIBE_WORKER_HOST must be letters, digits/],
      [{ AUTOVIBE_WORKER_MACHINE_CONCURRENCY: '0' }, /AUTOVIBE_WORKER_MACHINE_CONCURRENCY must be at least 1/],
    ];
    for (const [env, message] of bad) {
      assert.throws(
        () => loadConfig({ ...base, ...env }),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
      );
    }
  });
});
