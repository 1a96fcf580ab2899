import assert from 'node:assert/strict';
import { replicateWhenReady } from '../../activities/instance-snapshots.js';
import type { DiskSnapshotReplica } from '../../activities/compute/provider.js';

/**
 * The wait for a fresh disk snapshot before its copies can start. moto completes snapshots at once,
 * so the original's "still being made" phase is played here by a scripted replicate function.
 */
describe('replicateWhenReady (waiting for a disk snapshot to complete before copying it)', () => {
  const scripted = (states: string[][]) => {
    let calls = 0;
    const replicate = async (): Promise<DiskSnapshotReplica[]> => {
      const step = states[Math.min(calls, states.length - 1)]!;
      calls += 1;
      return step.map((state, i) => ({ region: `region-${i}`, state }));
    };
    return { replicate, calls: () => calls };
  };

  it('asks again while a copy waits for its original, heartbeating before each pause, until every copy started', async () => {
    const script = scripted([
      ['waiting-for-source', 'waiting-for-source'],
      ['waiting-for-source', 'waiting-for-source'],
      ['pending', 'completed'],
    ]);
    const sleeps: number[] = [];
    let beats = 0;
    const replicas = await replicateWhenReady(script.replicate, {
      until: Date.now() + 60_000,
      pollMs: 5_000,
      heartbeat: () => (beats += 1),
      sleep: async (ms) => void sleeps.push(ms),
    });
    assert.deepEqual(
      replicas.map((r) => r.state),
      ['pending', 'completed'],
    );
    assert.equal(script.calls(), 3);
    assert.equal(beats, 2);
    assert.deepEqual(sleeps, [5_000, 5_000]);
  });

  it('returns at once when no copy waits (started, completed or missing for good)', async () => {
    const script = scripted([['completed', 'missing']]);
    let slept = false;
    const replicas = await replicateWhenReady(script.replicate, { until: Date.now() + 60_000, pollMs: 10, sleep: async () => void (slept = true) });
    assert.equal(script.calls(), 1);
    assert.equal(slept, false);
    assert.deepEqual(
      replicas.map((r) => r.state),
      ['completed', 'missing'],
    );
  });

  it('gives up when the time is up and returns what it saw last', async () => {
    const script = scripted([['waiting-for-source']]);
    const started = Date.now();
    const replicas = await replicateWhenReady(script.replicate, { until: started + 100, pollMs: 30 });
    assert.equal(replicas[0]?.state, 'waiting-for-source');
    assert.ok(script.calls() >= 2 && script.calls() <= 5, `asked ${script.calls()} times within 100 ms at 30 ms intervals`);
    assert.ok(Date.now() - started < 1_000);
  });
});
