import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardedLookup, postWebhook } from '../../activities/notify/webhooks.js';

/** The HTTP side of a webhook delivery: where a request may connect, on a real local server. */
describe('activities: webhook requests', () => {
  it('refuses at delivery a name that resolves to a refused address, before connecting', async () => {
    const lookup = guardedLookup(false);
    const err = await new Promise<Error | null>((resolve) => lookup('localhost', { all: true }, (e) => resolve(e)));
    assert.match(err?.message ?? '', /localhost resolves to .*loopback/);
    const allowed = guardedLookup(true);
    const ok = await new Promise<Error | null>((resolve) => allowed('localhost', { all: true }, (e) => resolve(e)));
    assert.equal(ok, null);

    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const refused = await postWebhook(`http://127.0.0.1:${port}/`, {}, '{}', 5_000, false);
      assert.equal(refused.statusCode, null);
      assert.match(refused.error ?? '', /loopback/);
      assert.equal(hits, 0, 'nothing reached the server');
      const sent = await postWebhook(`http://localhost:${port}/`, {}, '{}', 5_000, true);
      assert.equal(sent.statusCode, 204);
      assert.equal(hits, 1);
    } finally {
      server.close();
    }
  });
});
