import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { bubblewrapPath, seccompProgramFile } from '../../activities/compute/local-sandbox.js';
import { blockedSyscalls, NAMESPACE_FLAGS } from '../../activities/compute/seccomp.js';

/**
 * The seccomp program on its own (no --disable-userns, no other flag of ours): loaded by the real
 * bwrap, it refuses what it names, and the same probe without it succeeds (so the probe can tell).
 */
describe('seccomp filter of the local sandbox', () => {
  const probe = (withFilter: boolean, script: string) => {
    const args = ['--unshare-all', '--unshare-user', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
    const fd = withFilter ? fs.openSync(seccompProgramFile()!, 'r') : null;
    try {
      const r = spawnSync(bubblewrapPath(), [...args, ...(fd !== null ? ['--seccomp', '3'] : []), '--', '/bin/sh', '-c', script], {
        stdio: ['ignore', 'pipe', 'pipe', ...(fd !== null ? [fd] : [])],
        encoding: 'utf8',
      });
      return r.stdout.trim();
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
  };

  it('refuses a nested user namespace that the sandbox alone would allow', () => {
    const script = 'unshare -U true 2>/dev/null && echo allowed || echo refused';
    assert.equal(probe(false, script), 'allowed');
    assert.equal(probe(true, script), 'refused');
  });

  it('refuses clone with namespace flags but lets ordinary processes and threads start', () => {
    const script = [
      'python3 -c "',
      'import ctypes, os, threading',
      'libc = ctypes.CDLL(None, use_errno=True)',
      // raw clone(flags=CLONE_NEWUSER|SIGCHLD): x86_64 56, arm64 220
      `nr = 220 if os.uname().machine == 'aarch64' else 56`,
      `r = libc.syscall(nr, 0x10000000 | 17, 0, 0, 0, 0)`,
      `print('clone-newuser', 'refused' if r == -1 and ctypes.get_errno() == 1 else 'allowed')`,
      `t = threading.Thread(target=lambda: None); t.start(); t.join(); print('thread ok')`,
      `pid = os.fork()`,
      `os._exit(0) if pid == 0 else print('fork ok', os.waitpid(pid, 0)[1])`,
      '"',
    ].join('\n');
    assert.deepEqual(probe(true, script).split('\n'), ['clone-newuser refused', 'thread ok', 'fork ok 0']);
  });

  it('names the calls it refuses, covering namespaces, keyrings, ptrace, bpf, perf, mount and kexec', () => {
    const blocked = blockedSyscalls();
    for (const name of [
      'setns',
      'keyctl',
      'add_key',
      'request_key',
      'ptrace',
      'bpf',
      'perf_event_open',
      'mount',
      'kexec_load',
      'kexec_file_load',
      'init_module',
    ]) {
      assert.ok(blocked.includes(name), name);
    }
    assert.equal(NAMESPACE_FLAGS & 0x10000000, 0x10000000, 'CLONE_NEWUSER is among the refused clone flags');
  });
});
