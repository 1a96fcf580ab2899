import assert from 'node:assert/strict';
import { defaultPriceTables } from '../../domain/metering.js';
import { parseAmount } from '../../domain/money.js';
import {
  chooseMachineType,
  DEFAULT_CAPABILITIES,
  expectedTaskCost,
  posterior,
  routingSuccess,
  sampleBeta,
  type ArmEvidence,
  type Candidate,
} from '../../domain/routing/router.js';
import { loadConfig } from '../../config/index.js';
import { prng } from '../support/prng.js';

const prices = defaultPriceTables();
const candidates: Candidate[] = (['claude-code', 'deepseek-coder', 'local-llama'] as const).map((t) => ({
  type: t,
  expectedCost: expectedTaskCost(t, prices),
}));

function picks(n: number, opts: { quality: number; exploration?: number; evidence?: Map<string, ArmEvidence>; seed?: number }): Record<string, number> {
  const rand = prng(opts.seed ?? 7);
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const d = chooseMachineType({
      cls: 'feature',
      candidates,
      evidence: opts.evidence ?? new Map(),
      capabilities: DEFAULT_CAPABILITIES,
      settings: { quality: opts.quality, exploration: opts.exploration ?? 0 },
      rand,
    });
    out[d.chosen] = (out[d.chosen] ?? 0) + 1;
  }
  return out;
}

describe('routing: the router (Thompson sampling, quality vs cost)', () => {
  it('prices a typical task from the model price tables', () => {
    // claude-sonnet-4-5: 200k input at $3/M + 20k output at $15/M = $0.90
    assert.equal(expectedTaskCost('claude-code', prices), parseAmount('0.90', 'USD'));
    assert.equal(expectedTaskCost('local-llama', prices), 0n);
  });

  it('Beta sampling has the right mean', () => {
    const rand = prng(1);
    let sum = 0;
    for (let i = 0; i < 4000; i++) sum += sampleBeta(8, 2, rand);
    assert.ok(Math.abs(sum / 4000 - 0.8) < 0.02, `${sum / 4000}`);
  });

  it('the knob moves the choice: quality 1 takes the most capable, quality 0 the cheapest that might do', () => {
    // Weak priors (4 runs' worth): the most capable is picked most, not always.
    const best = picks(200, { quality: 1 });
    assert.ok(best['claude-code']! > 90 && best['claude-code']! > (best['deepseek-coder'] ?? 0) * 1.3, JSON.stringify(best));
    const cheap = picks(200, { quality: 0 });
    assert.ok((cheap['claude-code'] ?? 0) < 20, JSON.stringify(cheap));
  });

  it('learns from outcomes: a type that keeps failing stops being picked', () => {
    const evidence = new Map<string, ArmEvidence>([['claude-code', { successes: 0, failures: 40 }]]);
    const after = picks(200, { quality: 1, evidence });
    assert.ok((after['claude-code'] ?? 0) < 5, JSON.stringify(after));
    assert.ok(posterior(0.8, { successes: 0, failures: 40 }).mean < 0.2);
  });

  it('spends the exploration budget on uniform picks and says so', () => {
    const rand = prng(3);
    let explored = 0;
    for (let i = 0; i < 1000; i++) {
      const d = chooseMachineType({
        cls: 'tests',
        candidates,
        evidence: new Map(),
        capabilities: DEFAULT_CAPABILITIES,
        settings: { quality: 1, exploration: 0.2 },
        rand,
      });
      if (d.mode === 'explore') {
        explored++;
        assert.match(d.reason, /exploration \(20%/);
      } else assert.match(d.reason, /best quality-for-cost/);
    }
    assert.ok(explored > 150 && explored < 250, `${explored}`);
  });

  it('a single candidate is taken as the only one', () => {
    const d = chooseMachineType({
      cls: 'bugfix',
      candidates: candidates.slice(0, 1),
      evidence: new Map(),
      capabilities: {},
      settings: { quality: 0.5, exploration: 0.5 },
      rand: prng(1),
    });
    assert.equal(d.mode, 'only');
    assert.equal(d.chosen, 'claude-code');
  });

  it('counts completed as success, failures and limits as failure, refusals and terminations by request as nothing', () => {
    assert.equal(routingSuccess('completed', null), true);
    assert.equal(routingSuccess('failed', null), false);
    assert.equal(routingSuccess('terminated', 'money limit reached'), false);
    assert.equal(routingSuccess('terminated', 'time budget exceeded'), false);
    assert.equal(routingSuccess('terminated', 'terminated by request'), null);
    assert.equal(routingSuccess('refused', null), null);
  });
});

describe('routing: configuration', () => {
  it('reads capability overrides, the knob defaults and the candidate types, naming every problem', () => {
    const c = loadConfig({
      AUTOVIBE_ROUTING_CAPABILITIES: '{"aider":{"tests":0.95}}',
      AUTOVIBE_ROUTING_TYPES: 'aider,claude-code',
      AUTOVIBE_ROUTING_QUALITY: '0.8',
    });
    assert.equal(c.routing.capabilities.aider!.tests, 0.95);
    assert.equal(c.routing.capabilities.aider!.bugfix, DEFAULT_CAPABILITIES.aider!.bugfix);
    assert.deepEqual(c.routing.types, ['aider', 'claude-code']);
    assert.equal(c.routing.quality, 0.8);
    assert.equal(c.routing.exploration, 0.1);
    assert.equal(c.routing.refinement, 0.5, 'half the machines with failure patterns get the refined prompt by default');
    assert.equal(loadConfig({ AUTOVIBE_ROUTING_REFINEMENT: '1' }).routing.refinement, 1);
    assert.throws(() => loadConfig({ AUTOVIBE_ROUTING_REFINEMENT: '2' }), /AUTOVIBE_ROUTING_REFINEMENT must be between 0 and 1/);
    assert.throws(
      () => loadConfig({ AUTOVIBE_ROUTING_CAPABILITIES: '{"shell":{"tests":1},"aider":{"poetry":0.5,"tests":2}}' }),
      /shell: not an agent machine type.*aider\.poetry: not an operation class.*aider\.tests: must be a number between 0 and 1/,
    );
    assert.throws(() => loadConfig({ AUTOVIBE_ROUTING_TYPES: 'aider,nope' }), /AUTOVIBE_ROUTING_TYPES: not agent machine types: nope/);
  });
});
