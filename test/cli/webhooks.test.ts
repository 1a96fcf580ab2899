import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { projectWithBudget, startTestPlatform, waitFor, type TestPlatform } from '../support/platform.js';
import { json, runCli, type Run } from './run.js';

/** `autovibe webhooks …` (the real binary) against the real platform and a local receiver. */
describe('cli: autovibe webhooks', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let server: http.Server;
  let url: string;
  const received: Array<{ id: string; body: string }> = [];
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(args, { env: { ...env, XDG_CONFIG_HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-cli-hooks-')) } });
  const explain = (r: Run) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ id: String(req.headers['webhook-id']), body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cli`;
    p = await startTestPlatform({ label: 'cli-webhooks', env: { AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1' } });
    env = { AUTOVIBE_API_URL: p.apiUrl, AUTOVIBE_API_KEY: p.adminKey };
  });
  after(async () => {
    await p?.stop();
    server?.close();
  });

  it('creates (secret printed once), lists, delivers, shows the log, redelivers, disables, enables and deletes', async () => {
    const projectId = await projectWithBudget(p, '5.00');
    const made = await cli(['webhooks', 'create', '--project', projectId, '--url', url, '--events', 'budget.*,machine.*', '--description', 'from the cli']);
    assert.equal(made.code, 0, explain(made));
    assert.match(made.stdout, /^whsec_\S+\n$/, 'only the secret on stdout');
    assert.match(made.stderr, /shown only now/);
    const id = /^(webhook-\S+)$/m.exec(made.stderr)![1]!;

    const list = json(await cli(['webhooks', 'list', '--project', projectId, '--json']));
    assert.deepEqual(
      list.items.map((w: any) => [w.id, w.events]),
      [[id, ['budget.*', 'machine.*']]],
    );
    const table = await cli(['webhooks', 'list']);
    assert.match(table.stdout, new RegExp(`${id}.*active`));

    assert.equal((await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount: '6.00', currency: 'USD', period: 'daily' })).status, 200);
    await waitFor(async () => received.length >= 1, 'the delivery');
    const log = json(await cli(['webhooks', 'deliveries', id, '--json']));
    assert.equal(log.items[0].status, 'succeeded');
    assert.equal(log.items[0].messageId, received[0]!.id);

    const again = await cli(['webhooks', 'redeliver', id, log.items[0].id]);
    assert.equal(again.code, 0, explain(again));
    await waitFor(async () => received.length >= 2, 'the redelivery');
    assert.equal(received[1]!.id, received[0]!.id);

    assert.equal(json(await cli(['webhooks', 'disable', id, '--json'])).status, 'disabled');
    assert.equal(json(await cli(['webhooks', 'enable', id, '--json'])).status, 'active');
    const bad = await cli(['webhooks', 'update', id, '--url', 'http://169.254.169.254/']);
    assert.equal(bad.code, 2, explain(bad));
    assert.match(bad.stderr, /url: .*metadata/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack');
    const rotated = await cli(['webhooks', 'rotate-secret', id]);
    assert.match(rotated.stdout, /^whsec_\S+\n$/);
    assert.notEqual(rotated.stdout, made.stdout);

    assert.equal((await cli(['webhooks', 'delete', id])).code, 0);
    assert.equal((await cli(['webhooks', 'get', id])).code, 4);
  });
});
