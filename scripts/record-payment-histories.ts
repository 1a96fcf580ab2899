import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/index.js';
import { startPlatform } from './platform.js';
import { call, until } from './recording.js';
import { startPostgres } from './services/postgres.js';
import { startStripeMock } from './services/stripe-mock.js';
import { ensureTemporalBinary, startTemporalDevServer } from './services/temporal.js';

/**
 * Records paymentCascade histories for the replay test (test/workflows/replay.test.ts), apart from
 * scripts/record-histories.ts so the machine and objective histories need not be re-recorded:
 * `npx tsx scripts/record-payment-histories.ts`. Scenarios: free credits too low, the card
 * declined (stripe-mock), then a manual approval; and a budget-window renewal (renewalTopup).
 */
const OUT = path.resolve('test/workflows/histories');

async function main() {
  const pg = await startPostgres();
  const temporal = await startTemporalDevServer({ uiPort: null });
  const stripe = await startStripeMock();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-record-payments-'));
  const config = loadConfig({
    AUTOVIBE_HOME: home,
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporal.address,
    PORT: '0',
    LOG_LEVEL: 'warn',
    STRIPE_SECRET_KEY: 'sk_test_recording',
    STRIPE_API_BASE: stripe.url,
  });
  const p = await startPlatform({ config });
  try {
    const project = await call(p, 'POST', '/v1/projects', { name: 'payment histories' });
    await call(p, 'PUT', `/v1/projects/${project.id}/budget`, { amount: '1.00', currency: 'USD', period: 'total' });
    await call(p, 'PUT', `/v1/projects/${project.id}/payment-methods`, {
      methods: [{ kind: 'credits' }, { kind: 'card', customer: 'cus_recording', paymentMethod: 'pm_card_visa' }, { kind: 'manual', timeoutSeconds: 600 }],
    });
    const { paymentId } = await call(p, 'POST', `/v1/projects/${project.id}/topups`, { amount: '5.00', currency: 'USD' });
    await until(p, `/v1/payments/${paymentId}`, (b) => b.status === 'manual_required');
    await call(p, 'POST', `/v1/payments/${paymentId}/approve`);
    await until(p, `/v1/payments/${paymentId}`, (b) => b.status === 'succeeded');

    // A budget-window renewal: the auto-top-up schedule fires, renewalTopup starts the window's cascade.
    const renewing = await call(p, 'POST', '/v1/projects', { name: 'renewal history' });
    await call(p, 'PUT', `/v1/projects/${renewing.id}/budget`, { amount: '1.00', currency: 'USD', period: 'daily' });
    await call(p, 'POST', `/v1/projects/${renewing.id}/credits`, { amount: '5.00', currency: 'USD', expiresAt: '2099-01-01T00:00:00Z' });
    await call(p, 'PUT', `/v1/projects/${renewing.id}/payment-methods`, { methods: [{ kind: 'credits' }] });
    const { scheduleId } = await call(p, 'PUT', `/v1/projects/${renewing.id}/auto-topup`, { amount: '2.00', currency: 'USD' });
    const schedule = p.temporal.schedule.getHandle(scheduleId);
    await schedule.trigger();
    let action;
    while (!(action = (await schedule.describe()).info.recentActions[0]?.action)) await new Promise((r) => setTimeout(r, 200));
    const renewal = await p.temporal.workflow.getHandle(action.workflow.workflowId).result();
    await until(p, `/v1/payments/${renewal.paymentId}`, (b) => b.status === 'succeeded');
    await schedule.delete();

    const cli = await ensureTemporalBinary();
    for (const [name, workflowId] of [
      ['payment-declined-then-approved', paymentId],
      ['payment-renewal-topup', action.workflow.workflowId],
    ] as const) {
      const json = execFileSync(cli, ['workflow', 'show', '--address', temporal.address, '-w', workflowId, '--output', 'json'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      fs.writeFileSync(path.join(OUT, `${name}.json`), json);
      console.log(`recorded ${name} (${JSON.parse(json).events.length} events)`);
    }
  } finally {
    await p.stop();
    await stripe.stop();
    await temporal.stop();
    await pg.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
