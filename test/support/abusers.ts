import fs from 'node:fs';
import path from 'node:path';

/** Machines that misbehave on purpose, shared by the local and container limit tests. */
/** Small limits so the misbehaving machines hit them at once; the mechanism is the real one. */
export const SMALL_LIMITS = { lightweight: { memoryMiB: 64, pids: 48, diskMiB: 16 } };

/** Commands that each break one limit, and how the machine's error must name it. */
export const ABUSERS = {
  forkBomb: { command: 'f(){ f | f & }; f; sleep 600', error: /^process limit \(48 processes\) exceeded$/ },
  memoryHog: { command: `awk 'BEGIN { s = "x"; while (1) s = s s }'`, error: /^memory limit \(64 MiB\) exceeded$/ },
  // Many files (each under the per-file limit), so only the workspace total can stop it.
  diskFiller: { command: 'i=0; while :; do i=$((i+1)); head -c 1000000 /dev/zero > fill.$i; done', error: /^workspace disk limit \(16 MiB\) exceeded$/ },
} as const;

/** Directories of the cgroup v1 controllers (or the v2 root) where sandbox groups are made, by name. */
export function sandboxCgroupsOf(machineId: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(`machine-${machineId}-`)) found.push(path.join(dir, e.name));
      else walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}
