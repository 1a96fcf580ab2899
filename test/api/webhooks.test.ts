import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { createUserWithKey } from '../../store/auth.js';
import { startSlackPeer } from '../support/slack-peer.js';
import { startWebhookReceiver as startReceiver } from '../support/webhook-receiver.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * A receiver's own Standard Webhooks verification, written from the spec and not from the
 * platform's code: base64-decode the secret after `whsec_`, HMAC-SHA256 of `id.timestamp.body`,
 * compare with each space-separated `v1,<base64>` of the header, refuse timestamps over 5 minutes off.
 */
function verify(secret: string, headers: http.IncomingHttpHeaders, body: string, nowS = Math.floor(Date.now() / 1000)): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return false;
  if (!/^\d+$/.test(ts) || Math.abs(nowS - Number(ts)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  return sig.split(' ').some((part) => {
    const [version, b64] = part.split(',');
    if (version !== 'v1' || !b64) return false;
    const got = Buffer.from(b64, 'base64');
    return got.length === expected.length && crypto.timingSafeEqual(got, expected);
  });
}

describe('api: outgoing webhooks and Slack (real platform, Temporal, Postgres)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let slack: Awaited<ReturnType<typeof startSlackPeer>>;
  const BOT_TOKEN = 'xoxb-1234-5678-abcdefghijklmnop';
  let projectA: string;
  let projectB: string;

  before(async () => {
    receiver = await startReceiver();
    slack = await startSlackPeer({ token: BOT_TOKEN, channels: ['#builds'] });
    p = await startTestPlatform({
      label: 'webhooks',
      env: {
        AUTOVIBE_WEBHOOK_ALLOW_PRIVATE: '1',
        AUTOVIBE_WEBHOOK_MAX_ATTEMPTS: '3',
        AUTOVIBE_WEBHOOK_RETRY_INITIAL_MS: '100',
        AUTOVIBE_WEBHOOK_RETRY_MAX_S: '1',
        AUTOVIBE_WEBHOOK_DISABLE_AFTER_FAILURES: '2',
        AUTOVIBE_PUBLIC_URL: 'https://autovibe.example.com/',
      },
    });
    projectA = await projectWithBudget(p, '5.00');
    projectB = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
    await receiver?.close();
    await slack?.close();
  });

  const create = async (body: Record<string, unknown>, key?: string) => {
    const res = await p.api('POST', '/v1/webhooks', body, key ? { key } : {});
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { id: string; secret: string; status: string; events: string[] };
  };
  const setBudget = async (projectId: string, amount: string) => {
    const res = await p.api('PUT', `/v1/projects/${projectId}/budget`, { amount, currency: 'USD', period: 'daily' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };

  it('verifies the Standard Webhooks test vector with the receiver’s own implementation', () => {
    // https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
    const headers = {
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    };
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    assert.equal(verify(secret, headers, '{"test": 2432232314}', 1614265330), true);
    assert.equal(verify(secret, headers, '{"test": 2432232315}', 1614265330), false, 'another body');
    assert.equal(verify(secret, headers, '{"test": 2432232314}', 1614265330 + 3600), false, 'an old timestamp');
  });

  it('refuses a URL webhooks may not go to, and unknown event kinds, with a 400 naming the field', async () => {
    for (const url of [
      'not a url',
      'ftp://example.com/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[fd00:ec2::254]/',
      'http://user:pw@example.com/x',
    ]) {
      const res = await p.api('POST', '/v1/webhooks', { projectId: projectA, url, events: ['machine.*'] });
      assert.equal(res.status, 400, `${url}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, /^url: /, url);
    }
    const kinds = await p.api('POST', '/v1/webhooks', { projectId: projectA, url: `${receiver.url}/ok/x`, events: ['machines.*'] });
    assert.equal(kinds.status, 400, JSON.stringify(kinds.body));
    assert.match(kinds.body.error.message, /events/);
    const none = await p.api('POST', '/v1/webhooks', { projectId: projectA, url: `${receiver.url}/ok/x`, events: [] });
    assert.equal(none.status, 400, JSON.stringify(none.body));
  });

  it('delivers matching events in order, signed, with a stable webhook-id, and logs each delivery', async () => {
    const hook = await create({ projectId: projectA, url: `${receiver.url}/ok/a`, events: ['budget.*'], description: 'budgets of A' });
    assert.match(hook.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
    assert.equal(hook.status, 'active');
    for (const amount of ['6.00', '7.00', '8.00']) await setBudget(projectA, amount);
    await setBudget(projectB, '9.00'); // another project's: never sent to A's endpoint
    const got = await waitFor(async () => (receiver.at('/ok/a').length >= 3 ? receiver.at('/ok/a') : null), 'three deliveries');
    assert.equal(got.length, 3, 'nothing beyond the three of project A');
    const bodies = got.map((r) => JSON.parse(r.body));
    assert.deepEqual(
      bodies.map((b) => b.data.limit),
      ['6.00', '7.00', '8.00'],
    );
    assert.ok(bodies.every((b) => b.type === 'budget.set' && b.projectId === projectA && typeof b.timestamp === 'string'));
    const seqs = bodies.map((b) => b.seq as number);
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      seqs,
      'in seq order',
    );
    for (const [i, r] of got.entries()) {
      assert.equal(r.headers['webhook-id'], `evt_${seqs[i]}`);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.ok(verify(hook.secret, r.headers, r.body), 'the signature verifies');
      assert.ok(!verify(hook.secret, r.headers, r.body.replace('budget.set', 'budget.sex')), 'a changed body does not');
    }
    const log = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
    assert.equal(log.status, 200, JSON.stringify(log.body));
    assert.equal(log.body.items.length, 3);
    for (const d of log.body.items) {
      assert.equal(d.status, 'succeeded');
      assert.equal(d.attemptLog.length, 1);
      assert.equal(d.attemptLog[0].statusCode, 204);
      assert.equal(typeof d.attemptLog[0].durationMs, 'number');
    }
    const shown = await p.api('GET', `/v1/webhooks/${hook.id}`);
    assert.equal(shown.body.cursor, seqs[2], 'the cursor is past the last delivered event');
    assert.equal(shown.body.secret, undefined, 'the secret is shown only at creation');
  });

  it('retries a failing receiver with backoff: the same webhook-id until it succeeds; redelivery sends it again', async () => {
    const hook = await create({ projectId: projectA, url: `${receiver.url}/flaky/a`, events: ['budget.set'] });
    await setBudget(projectA, '10.00');
    const got = await waitFor(async () => (receiver.at('/flaky/a').some((r) => r.status < 300) ? receiver.at('/flaky/a') : null), 'the third attempt');
    assert.deepEqual(
      got.map((r) => r.status),
      [503, 503, 204],
    );
    assert.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'one webhook-id across the retries');
    assert.ok(got.every((r) => verify(hook.secret, r.headers, r.body)));
    const log = await waitFor(async () => {
      const res = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return res.body.items[0]?.status === 'succeeded' ? res.body : null;
    }, 'the delivery logged');
    const [d] = log.items;
    assert.equal(d.attempts, 3);
    assert.deepEqual(
      d.attemptLog.map((a: any) => a.statusCode),
      [503, 503, 204],
    );
    assert.equal(d.attemptLog[0].error, 'HTTP 503');

    const again = await p.api('POST', `/v1/webhooks/${hook.id}/deliveries/${d.id}/redeliver`, {});
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal(again.body.redeliveryOf, d.id);
    assert.equal(again.body.messageId, d.messageId);
    const redelivered = await waitFor(async () => (receiver.at('/flaky/a').length >= 4 ? receiver.at('/flaky/a') : null), 'the redelivery');
    assert.equal(redelivered[3]!.headers['webhook-id'], got[0]!.headers['webhook-id']);
    assert.equal(redelivered[3]!.body, got[0]!.body, 'the same body');
    const after = await waitFor(async () => {
      const res = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return res.body.items.length === 2 && res.body.items[0].status === 'succeeded' ? res.body : null;
    }, 'the redelivery logged');
    assert.equal(after.items[0].redeliveryOf, d.id);
    const missing = await p.api('POST', `/v1/webhooks/${hook.id}/deliveries/999999/redeliver`, {});
    assert.equal(missing.status, 404);
  });

  it('disables an endpoint whose every attempt fails, with a webhook.disabled event and an alert; PATCH re-enables it', async () => {
    const hook = await create({ projectId: projectA, url: `${receiver.url}/down/a`, events: ['budget.*'] });
    await setBudget(projectA, '11.00');
    await setBudget(projectA, '12.00');
    const disabled = await waitFor(async () => {
      const res = await p.api('GET', `/v1/webhooks/${hook.id}`);
      return res.body.status === 'disabled' ? res.body : null;
    }, 'the endpoint disabled');
    assert.match(disabled.disabledReason, /2 events in a row/);
    assert.equal(receiver.at('/down/a').length, 6, 'three attempts of each of the two events');
    const log = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
    assert.deepEqual(
      log.body.items.map((d: any) => d.status),
      ['failed', 'failed'],
    );
    const events = await p.api('GET', `/v1/events?projectId=${projectA}&kinds=webhook.*,alert.webhook_disabled&cursor=0`);
    assert.equal(events.status, 200, JSON.stringify(events.body));
    const kinds = events.body.items.filter((e: any) => e.subjectId === hook.id).map((e: any) => e.kind);
    assert.deepEqual(kinds, ['webhook.disabled', 'alert.webhook_disabled']);
    const alerts = await p.api('GET', `/v1/alerts?projectId=${projectA}`);
    assert.ok(alerts.body.items.some((a: any) => a.kind === 'webhook_disabled' && a.subjectId === hook.id));

    // While disabled, nothing is sent; re-enabled (at a working URL) it goes on with what came since.
    await setBudget(projectA, '13.00');
    const patched = await p.api('PATCH', `/v1/webhooks/${hook.id}`, { enabled: true, url: `${receiver.url}/ok/reenabled` });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.status, 'active');
    assert.equal(patched.body.consecutiveFailures, 0);
    const got = await waitFor(async () => receiver.at('/ok/reenabled')[0], 'the delivery after re-enabling');
    assert.equal(JSON.parse(got.body).data.limit, '13.00');
    assert.equal(receiver.at('/down/a').length, 6, 'nothing more to the old URL');
  });

  it('signs with the old and the new secret for a while after a rotation', async () => {
    const hook = await create({ projectId: projectA, url: `${receiver.url}/ok/rotated`, events: ['budget.*'] });
    const rotated = await p.api('POST', `/v1/webhooks/${hook.id}/rotate-secret`, {});
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    assert.notEqual(rotated.body.secret, hook.secret);
    await setBudget(projectA, '14.00');
    const got = await waitFor(async () => receiver.at('/ok/rotated')[0], 'a delivery');
    assert.equal(String(got.headers['webhook-signature']).split(' ').length, 2);
    assert.ok(verify(rotated.body.secret, got.headers, got.body));
    assert.ok(verify(hook.secret, got.headers, got.body));
  });

  it("scopes endpoints by the key's projects and roles", async () => {
    const hook = await create({ projectId: projectA, url: `${receiver.url}/ok/scoped`, events: ['machine.*'] });
    const ownerB = (await createUserWithKey(p.db, 'owner-of-b', 'owner', [projectB])).key;
    const viewerA = (await createUserWithKey(p.db, 'viewer-of-a', 'viewer', [projectA])).key;
    const operatorA = (await createUserWithKey(p.db, 'operator-of-a', 'operator', [projectA])).key;
    const hookB = await create({ projectId: projectB, url: `${receiver.url}/ok/b`, events: ['machine.*'] }, ownerB);

    const listB = await p.api('GET', '/v1/webhooks', undefined, { key: ownerB });
    assert.deepEqual(
      listB.body.items.map((e: any) => e.id),
      [hookB.id],
    );
    assert.equal((await p.api('GET', `/v1/webhooks/${hook.id}`, undefined, { key: ownerB })).status, 404);
    assert.equal((await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`, undefined, { key: ownerB })).status, 404);
    assert.equal((await p.api('DELETE', `/v1/webhooks/${hook.id}`, undefined, { key: ownerB })).status, 404);
    assert.equal((await p.api('GET', `/v1/webhooks?projectId=${projectA}`, undefined, { key: ownerB })).status, 404);
    const foreign = await p.api('POST', '/v1/webhooks', { projectId: projectA, url: `${receiver.url}/ok/x`, events: ['machine.*'] }, { key: ownerB });
    assert.equal(foreign.status, 422, JSON.stringify(foreign.body));
    const deployment = await p.api('POST', '/v1/webhooks', { url: `${receiver.url}/ok/x`, events: ['machine.*'] }, { key: ownerB });
    assert.equal(deployment.status, 403, JSON.stringify(deployment.body));

    const listA = await p.api('GET', '/v1/webhooks', undefined, { key: viewerA });
    assert.ok(listA.body.items.some((e: any) => e.id === hook.id));
    assert.ok(!listA.body.items.some((e: any) => e.id === hookB.id));
    assert.equal((await p.api('PATCH', `/v1/webhooks/${hook.id}`, { description: 'x' }, { key: operatorA })).status, 403);

    // An admin's deployment-wide endpoint: seen by deployment-wide keys only.
    const wide = await create({ url: `${receiver.url}/ok/wide`, events: ['budget.*'] });
    assert.equal((await p.api('GET', `/v1/webhooks/${wide.id}`, undefined, { key: viewerA })).status, 404);
    assert.equal((await p.api('GET', `/v1/webhooks/${wide.id}`)).body.projectId, null);

    assert.equal((await p.api('DELETE', `/v1/webhooks/${hookB.id}`, undefined, { key: ownerB })).status, 204);
    assert.equal((await p.api('GET', `/v1/webhooks/${hookB.id}`, undefined, { key: ownerB })).status, 404);
  });

  it('sends Slack endpoints a Block Kit message with the project, machine, status, cost and a dashboard link', async () => {
    await create({ projectId: projectA, kind: 'slack', url: `${receiver.url}/slack/a`, events: ['machine.status'] });
    const m = await p.api('POST', '/v1/machines', {
      projectId: projectA,
      type: 'shell',
      command: 'echo hi > hi.txt',
      cache: false,
      limits: { money: '0.05', minutes: 2 },
    });
    assert.equal(m.status, 202, JSON.stringify(m.body));
    const machine = await waitForMachine(p, m.body.id);
    assert.equal(machine.status, 'completed');
    const messages = await waitFor(async () => {
      const all = receiver.at('/slack/a').map((r) => JSON.parse(r.body));
      return all.some((msg) => JSON.stringify(msg).includes('completed')) ? all : null;
    }, 'the completed message');
    for (const r of receiver.at('/slack/a')) assert.equal(r.headers['webhook-signature'], undefined, 'Slack posts carry no webhook signature');
    const msg = messages.find((x) => x.blocks[0].text.text.includes('completed'))!;
    // Block Kit's structure (https://api.slack.com/reference/block-kit/blocks).
    assert.equal(typeof msg.text, 'string', 'a fallback text for notifications');
    assert.ok(Array.isArray(msg.blocks) && msg.blocks.length <= 50);
    const [header, section, context, actions] = msg.blocks;
    assert.deepEqual(Object.keys(header).sort(), ['text', 'type']);
    assert.equal(header.type, 'header');
    assert.equal(header.text.type, 'plain_text');
    assert.ok(header.text.text.length <= 150);
    assert.equal(section.type, 'section');
    assert.ok(section.fields.length >= 1 && section.fields.length <= 10);
    for (const f of section.fields) {
      assert.equal(f.type, 'mrkdwn');
      assert.ok(f.text.length <= 2000);
    }
    const fields = Object.fromEntries(section.fields.map((f: any) => f.text.split('\n')).map(([k, v]: string[]) => [k!.replace(/\*/g, ''), v]));
    assert.match(fields.Project, new RegExp(projectA));
    assert.equal(fields.Machine, m.body.id);
    assert.equal(fields.Status, 'completed');
    assert.match(fields.Cost, /^\d+\.\d+ USD$/, 'the exact amount, as the api shows it');
    assert.equal(context.type, 'context');
    assert.equal(context.elements[0].type, 'mrkdwn');
    assert.equal(actions.type, 'actions');
    assert.equal(actions.elements[0].type, 'button');
    assert.equal(actions.elements[0].text.type, 'plain_text');
    assert.equal(actions.elements[0].url, `https://autovibe.example.com/#/machines/${m.body.id}`);
  });

  it('posts through a Slack bot token to chat.postMessage with the channel and Block Kit, never showing the token back', async () => {
    // Bad input names the field to fix.
    for (const [body, field] of [
      [{ projectId: projectA, kind: 'slack-bot', url: slack.url, events: ['budget.*'], channel: '#builds' }, 'token'],
      [{ projectId: projectA, kind: 'slack-bot', url: slack.url, events: ['budget.*'], token: BOT_TOKEN }, 'channel'],
      [
        { projectId: projectA, kind: 'slack-bot', url: slack.url, events: ['budget.*'], channel: '#builds', token: 'https://hooks.slack.com/services/T/B/X' },
        'token',
      ],
      [{ projectId: projectA, kind: 'webhook', url: `${receiver.url}/ok/x`, events: ['budget.*'], channel: '#builds' }, 'channel'],
    ] as const) {
      const res = await p.api('POST', '/v1/webhooks', body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.ok(JSON.stringify(res.body).includes(field), `names ${field}: ${JSON.stringify(res.body)}`);
    }
    const hook = await create({ projectId: projectA, kind: 'slack-bot', url: slack.url, channel: '#builds', token: BOT_TOKEN, events: ['budget.*'] });
    const shown = await p.api('GET', `/v1/webhooks/${hook.id}`);
    assert.equal(shown.body.channel, '#builds');
    assert.ok(!JSON.stringify(shown.body).includes(BOT_TOKEN), 'the token is never shown back');
    const audit = await p.api('GET', `/v1/audit?projectId=${projectA}&limit=500`);
    assert.ok(!JSON.stringify(audit.body).includes(BOT_TOKEN), 'nor audited');

    await setBudget(projectA, '21.00');
    const post = await waitFor(async () => slack.posts[0], 'the post');
    assert.equal(post.body.channel, '#builds');
    assert.match(JSON.stringify(post.body.blocks), /budget\.set/);
    assert.equal(post.headers.authorization, `Bearer ${BOT_TOKEN}`);
    assert.match(String(post.headers['content-type']), /^application\/json/);
    assert.equal(post.answer.ok, true);
    assert.equal(typeof post.body.text, 'string', 'a fallback text for notifications');
    assert.equal(post.body.blocks[0].type, 'header');
    const delivered = await waitFor(async () => {
      const log = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return log.body.items.find((d: any) => d.status === 'succeeded');
    }, 'a succeeded delivery');
    assert.equal(delivered.attemptLog.length, 1);

    // A revoked token: Slack answers 200 with ok: false, which is a failure, and one retrying cannot fix.
    const changed = await p.api('PATCH', `/v1/webhooks/${hook.id}`, { token: 'xoxb-0000-0000-revokedtoken' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.ok(!JSON.stringify(changed.body).includes('revokedtoken'));
    await setBudget(projectA, '22.00');
    const failed = await waitFor(async () => {
      const log = await p.api('GET', `/v1/webhooks/${hook.id}/deliveries`);
      return log.body.items.find((d: any) => d.status === 'failed');
    }, 'the failed delivery');
    assert.equal(failed.attemptLog.length, 1, 'not retried: a bad token stays bad');
    assert.equal(failed.attemptLog[0].statusCode, 200);
    assert.equal(failed.attemptLog[0].error, 'slack: invalid_auth');
    assert.equal(slack.posts.filter((x) => x.answer.error === 'invalid_auth').length, 1);
    // Back to a good token: the next event goes through again.
    assert.equal((await p.api('PATCH', `/v1/webhooks/${hook.id}`, { token: BOT_TOKEN })).status, 200);
    await setBudget(projectA, '23.00');
    await waitFor(async () => slack.posts.slice(2).find((x) => x.answer.ok === true), 'the post after the fix');
  });
});
