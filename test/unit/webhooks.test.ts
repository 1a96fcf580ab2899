import assert from 'node:assert/strict';
import {
  addressProblem,
  eventKindsProblem,
  kindSubscribed,
  signature,
  signatureMatches,
  signedHeaders,
  slackMessage,
  webhookUrlProblem,
} from '../../domain/webhooks.js';

describe('webhooks: where they may go, signatures, kinds, Slack bodies', () => {
  it('refuses loopback, link-local and private addresses unless allowed, and metadata services always', () => {
    const local = [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '10.0.0.8',
      '172.16.5.4',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.10.10',
      '100.64.0.1',
      '0.0.0.0',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a00:1',
      '224.0.0.1',
      '::',
    ];
    for (const ip of local) {
      assert.ok(addressProblem(ip, false), `${ip} refused`);
      assert.equal(addressProblem(ip, true), null, `${ip} allowed with AUTOVIBE_WEBHOOK_ALLOW_PRIVATE=1`);
    }
    for (const ip of ['169.254.169.254', 'fd00:ec2::254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '100.100.100.200']) {
      assert.match(addressProblem(ip, true) ?? '', /metadata/, `${ip} is refused even when private addresses are allowed`);
    }
    for (const ip of ['93.184.216.34', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111']) assert.equal(addressProblem(ip, false), null, `${ip} is public`);
  });

  it('checks URLs: http(s) only, no credentials, no local names or addresses (in any spelling)', () => {
    assert.equal(webhookUrlProblem('https://hooks.example.com/autovibe', false), null);
    assert.equal(webhookUrlProblem('https://hooks.slack.com/services/T0/B0/x', false), null);
    for (const url of [
      'http://localhost:8080/x',
      'http://LOCALHOST./x',
      'http://api.localhost/x',
      'http://2130706433/',
      'http://0x7f.1/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://10.1.1.1/',
      'http://printer.local/',
    ]) {
      assert.match(webhookUrlProblem(url, false) ?? '', /loopback|private|local/, url);
    }
    assert.equal(webhookUrlProblem('http://127.0.0.1:9000/x', true), null);
    assert.match(webhookUrlProblem('http://metadata.google.internal/computeMetadata/v1/', true) ?? '', /metadata/);
    assert.match(webhookUrlProblem('http://169.254.169.254/latest/', true) ?? '', /metadata/);
    assert.match(webhookUrlProblem('file:///etc/passwd', true) ?? '', /scheme "file"/);
    assert.match(webhookUrlProblem('https://u:p@example.com/', true) ?? '', /credentials/);
    assert.match(webhookUrlProblem('example.com/hook', true) ?? '', /not a URL/);
  });

  it('signs as the Standard Webhooks spec says (its published test vector), with one signature per secret', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    assert.equal(signature(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, body), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const headers = signedHeaders([secret, other], 'evt_1', 1700000000, body);
    assert.equal(headers['webhook-id'], 'evt_1');
    assert.equal(headers['webhook-timestamp'], '1700000000');
    assert.equal(headers['webhook-signature']!.split(' ').length, 2);
    assert.ok(signatureMatches(secret, 'evt_1', 1700000000, body, headers['webhook-signature']!));
    assert.ok(signatureMatches(other, 'evt_1', 1700000000, body, headers['webhook-signature']!));
    assert.ok(!signatureMatches(secret, 'evt_2', 1700000000, body, headers['webhook-signature']!));
  });

  it('accepts event families, their kinds and "*"; refuses the rest', () => {
    assert.equal(eventKindsProblem(['machine.*', 'alert.budget_threshold', 'pipeline.status', '*']), null);
    assert.match(eventKindsProblem([]) ?? '', /at least one/);
    for (const bad of ['machines.*', 'machine', 'machine.**', 'Machine.status', 'audit.*']) assert.ok(eventKindsProblem([bad]), bad);
    assert.ok(kindSubscribed('machine.status', ['machine.*']));
    assert.ok(kindSubscribed('alert.payment_failed', ['*']));
    assert.ok(!kindSubscribed('machinery.status', ['machine.*']));
  });

  it('makes a Block Kit message: header, fields, context, a button to the machine page; escapes mrkdwn', () => {
    const e = {
      seq: 9,
      at: '2026-12-07T00:00:00.000Z',
      kind: 'machine.status',
      projectId: 'project-1',
      subjectId: 'machine-1',
      data: { status: 'failed', error: 'a <b> & c' },
    };
    const msg = slackMessage(e, {
      projectName: 'demo',
      machine: { id: 'machine-1', type: 'shell', status: 'failed', cost: { amount: '0.01', currency: 'USD' } },
      publicUrl: 'https://av.example.com/',
    }) as any;
    assert.equal(msg.blocks[0].type, 'header');
    assert.equal(msg.blocks[0].text.text, 'Machine failed: shell');
    const texts = msg.blocks[1].fields.map((f: any) => f.text);
    assert.deepEqual(texts.slice(0, 4), ['*Project*\ndemo (project-1)', '*Machine*\nmachine-1', '*Status*\nfailed', '*Cost*\n0.01 USD']);
    assert.ok(texts.includes('*Error*\na &lt;b&gt; &amp; c'));
    assert.equal(msg.blocks[3].elements[0].url, 'https://av.example.com/#/machines/machine-1');
    const long = slackMessage(
      { ...e, kind: 'alert.budget_threshold', data: { message: 'x'.repeat(400) } },
      { projectName: null, machine: null, publicUrl: 'http://a' },
    ) as any;
    assert.ok(long.blocks[0].text.text.length <= 150);
    const resolved = slackMessage(
      { ...e, kind: 'alert.resolved', data: { message: 'resolved: machine machine-1 is paused', resolution: 'the machine is running' } },
      { projectName: null, machine: null, publicUrl: 'http://a' },
    ) as any;
    assert.equal(resolved.blocks[0].text.text, 'Resolved: machine machine-1 is paused');
    assert.equal(long.blocks[3].elements[0].url, 'http://a/#/');
  });
});
