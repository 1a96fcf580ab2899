import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { liveSandboxPids } from '../../activities/compute/local-sandbox.js';
import { ABUSERS, SMALL_LIMITS, sandboxCgroupsOf } from '../support/abusers.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Resource limits and the seccomp filter of the `local` provider (bubblewrap), end to end: real
 * shell machines on the real platform that fork-bomb, eat memory and fill the disk each end as a
 * failed machine whose error names the limit, while a well-behaved machine beside them completes.
 */
describe('local sandbox: resource limits and kernel attack surface', function () {
  this.timeout(240_000);
  let p: TestPlatform;
  let projectId: string;
  /** Every machine starts from the empty root, not from what the machines before it left. */
  let root: string;

  before(async () => {
    p = await startTestPlatform({ label: 'sandbox-limits', env: { AUTOVIBE_PROFILE_LIMITS: JSON.stringify(SMALL_LIMITS) } });
    projectId = await projectWithBudget(p, '5.00');
    root = (await p.api('GET', `/v1/projects/${projectId}`)).body.rootCheckpointId;
    assert.match(root, /^checkpoint-/);
  });
  after(async () => {
    await p?.stop();
  });

  const start = async (command: string) => {
    const res = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      command,
      checkpointId: root,
      limits: { money: '0.10', minutes: 3 },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };

  it('fails a fork bomb, a memory hog and a disk filler with the limit named, while a machine beside them completes', async () => {
    const ids = Object.fromEntries(await Promise.all(Object.entries(ABUSERS).map(async ([name, a]) => [name, await start(a.command)] as const)));
    // The neighbour runs while the others misbehave: it forks a few processes, uses memory and disk.
    const neighbour = await start(
      'for i in 1 2 3 4 5 6; do (sleep 1; echo $i) & done; wait > /dev/null; head -c 4000000 /dev/urandom > blob; seq 1 6 > ok.txt',
    );

    for (const [name, abuser] of Object.entries(ABUSERS)) {
      const m = await waitForMachine(p, ids[name]!, 120_000);
      assert.equal(m.status, 'failed', `${name}: ${JSON.stringify(m)}`);
      assert.match(m.error, abuser.error, name);
      assert.match(m.stopReason, abuser.error, name);
      // It ended cleanly: settled, its workspace and its sandbox gone, its cgroups removed.
      const costs = (await p.api('GET', `/v1/projects/${projectId}/costs`)).body.items.filter((e: any) => e.machineId === m.id);
      assert.equal(costs.length, 1, `${name}: one cost event`);
      assert.equal(fs.existsSync(path.join(p.config.workspacesDir, m.id)), false, `${name}: workspace removed`);
      assert.deepEqual(liveSandboxPids(m.id), [], `${name}: no sandbox left`);
    }
    const ok = await waitForMachine(p, neighbour, 120_000);
    assert.equal(ok.status, 'completed', JSON.stringify(ok));
    assert.equal((await p.api('GET', `/v1/checkpoints/${ok.checkpoints[0]}/files/ok.txt`)).body, '1\n2\n3\n4\n5\n6\n');
    // The platform itself still answers, and no sandbox group of any of them is left.
    assert.equal((await p.api('GET', `/v1/machines/${neighbour}`)).status, 200);
    for (const id of [...Object.values(ids), neighbour]) {
      await waitForEmpty(() => sandboxCgroupsOf(id!), `cgroups of ${id}`);
    }
  });

  it('stops a single file at the disk limit (RLIMIT_FSIZE) and fails the machine', async () => {
    const m = await waitForMachine(p, await start('head -c 100000000 /dev/zero > big'), 120_000);
    assert.equal(m.status, 'failed', JSON.stringify(m));
    assert.match(m.error, /^workspace disk limit \(16 MiB\) exceeded$/);
    // The file was cut at the limit by the kernel, never larger.
    const { files } = (await p.api('GET', `/v1/checkpoints/${m.checkpoints.at(-1)}`)).body;
    const big = files.find((f: any) => f.path === 'big');
    assert.equal(big?.size, 16 * 1024 * 1024, JSON.stringify(files));
  });

  it('refuses nested user namespaces, keyrings, ptrace, bpf, perf, mount and kexec inside the sandbox', async () => {
    const probe = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None, use_errno=True)',
      // x86_64 numbers; arm64 in the second column.
      'calls = {"keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218), "ptrace": (101, 117), "bpf": (321, 280),',
      '  "perf_event_open": (298, 241), "mount": (165, 40), "umount2": (166, 39), "kexec_load": (246, 104), "setns": (308, 268),',
      '  "init_module": (175, 105), "pivot_root": (155, 41), "userfaultfd": (323, 282), "io_uring_setup": (425, 425), "getppid": (110, 173)}',
      'arm = os.uname().machine == "aarch64"',
      'for name, nrs in calls.items():',
      '    r = libc.syscall(nrs[1] if arm else nrs[0], 0, 0, 0, 0, 0)',
      '    print(name, "refused" if r == -1 and ctypes.get_errno() == 1 else "allowed")',
    ].join('\n');
    const command = [
      `python3 -c '${probe}' > calls.txt`,
      '(unshare -U true 2>/dev/null && echo allowed || echo refused) > unshare-user.txt',
      '(unshare -r -n true 2>/dev/null && echo allowed || echo refused) > unshare-root.txt',
      'grep -E "^(Seccomp|NoNewPrivs|CapEff):" /proc/self/status > status.txt',
    ].join('; ');
    const m = await waitForMachine(p, await start(command), 120_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const file = async (name: string) => String((await p.api('GET', `/v1/checkpoints/${m.checkpoints[0]}/files/${name}`)).body);
    assert.equal(await file('unshare-user.txt'), 'refused\n');
    assert.equal(await file('unshare-root.txt'), 'refused\n');
    const calls = Object.fromEntries(
      (await file('calls.txt'))
        .trim()
        .split('\n')
        .map((l) => l.split(' ')),
    );
    for (const name of [
      'keyctl',
      'add_key',
      'request_key',
      'ptrace',
      'bpf',
      'perf_event_open',
      'mount',
      'umount2',
      'kexec_load',
      'setns',
      'init_module',
      'pivot_root',
      'userfaultfd',
      'io_uring_setup',
    ]) {
      assert.equal(calls[name], 'refused', `${name}: ${JSON.stringify(calls)}`);
    }
    // The filter refuses only what it names: an ordinary call still works.
    assert.equal(calls.getppid, 'allowed');
    const status = await file('status.txt');
    assert.match(status, /^Seccomp:\s+2$/m, 'a seccomp filter is in force');
    assert.match(status, /^CapEff:\s+0+$/m, 'no capabilities');
  });
});

async function waitForEmpty<T>(fn: () => T[], what: string): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const left = fn();
    if (left.length === 0) return;
    if (Date.now() > until) assert.fail(`${what} still there: ${JSON.stringify(left)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
