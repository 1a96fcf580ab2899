import assert from 'node:assert/strict';
import { Connection } from '@temporalio/client';
import pg from 'pg';

function requiredEnv(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set; test/support/global-setup.ts should have set it`);
  return value;
}

describe('test services', function () {
  it('PostgreSQL answers at TEST_DATABASE_URL', async function () {
    const client = new pg.Client({ connectionString: requiredEnv('TEST_DATABASE_URL'), connectionTimeoutMillis: 5_000 });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number }>('select 1 as one');
      assert.deepEqual(rows, [{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('Temporal answers at TEST_TEMPORAL_ADDRESS with the default namespace', async function () {
    const connection = await Connection.connect({ address: requiredEnv('TEST_TEMPORAL_ADDRESS'), connectTimeout: 5_000 });
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'getSystemInfo returned no server version');
      const { namespaces } = await connection.workflowService.listNamespaces({});
      const names = namespaces.map((ns) => ns.namespaceInfo?.name);
      assert.ok(names.includes('default'), `namespace "default" missing; got ${JSON.stringify(names)}`);
    } finally {
      await connection.close();
    }
  });
});
