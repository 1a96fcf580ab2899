import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../support/platform.js';

/**
 * Incoming hooks have no API key, so they have their own limit: per integration URL, before the
 * body is read. Past it, 429 with Retry-After; another integration's URL is not affected.
 */
describe('incoming hooks: rate limit per integration', function () {
  this.timeout(120_000);
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ label: 'hook-limit', worker: false, env: { AUTOVIBE_HOOK_RATE_LIMIT: '3' } });
  });
  after(async () => {
    await p?.stop();
  });

  const send = (id: string) =>
    fetch(`${p.apiUrl}/hooks/github/${id}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'ping' }, body: '{}' });

  it('answers the first hooks as usual, then 429 with Retry-After, and other integrations still as usual', async () => {
    const id = 'integration-00000000-0000-4000-8000-000000000001';
    const first = [];
    for (let i = 0; i < 3; i++) first.push((await send(id)).status);
    // An integration that does not exist: refused as such (never 429) while under the limit.
    assert.ok(
      first.every((s) => s !== 429 && s >= 400 && s < 500),
      first.join(),
    );
    const over = await send(id);
    assert.equal(over.status, 429);
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    const body = (await over.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'rate_limited');
    assert.match(body.error.message, /per integration/);
    assert.notEqual((await send('integration-00000000-0000-4000-8000-000000000002')).status, 429);
  });
});
