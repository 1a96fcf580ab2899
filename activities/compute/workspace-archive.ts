/**
 * Moving a machine's files between the worker host's workspace and an instance that keeps its own
 * copy (aws-ec2, aws-ecs through the remote runner; kubernetes through pod exec): tar.gz archives
 * without `.git` (in a worktree it only points into the host's repository).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, _stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`)) : resolve(),
    );
  });
}

/** The workspace's files as a tar.gz in memory. */
export function packWorkspace(dir: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('tar', ['-C', dir, '--exclude=./.git', '-czf', '-', '.'], { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`tar of ${dir} failed: ${stderr.toString().trim() || err.message}`)) : resolve(stdout),
    );
  });
}

/** The workspace's files as a tar.gz file in a temporary folder of its own (the caller removes the folder). */
export async function packWorkspaceToFile(dir: string): Promise<string> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'autovibe-remote-'));
  const archive = path.join(tmp, 'workspace.tar.gz');
  await run('tar', ['-C', dir, '--exclude=./.git', '-czf', archive, '.']);
  return archive;
}

/**
 * Everything in `workspace` but .git is replaced by the archive's files (deleted there = deleted
 * here). The archive comes from an instance the machine's commands control, so it is unpacked
 * aside first (a broken archive leaves the workspace as it was), owned by the worker's user
 * whatever uid made the files, and without setuid/setgid bits (the worker may run as root).
 */
export async function replaceWorkspaceFiles(workspace: string, archive: Buffer): Promise<void> {
  // Beside the workspace, so the unpacked files move in by rename (same file system).
  const tmp = await fs.promises.mkdtemp(path.join(path.dirname(workspace), '.autovibe-collect-'));
  try {
    const file = path.join(tmp, 'workspace.tar.gz');
    await fs.promises.writeFile(file, archive);
    const unpacked = path.join(tmp, 'files');
    await fs.promises.mkdir(unpacked);
    await run('tar', ['-xzf', file, '--no-same-owner', '--exclude=./.git', '-C', unpacked]);
    await run('find', [unpacked, '-perm', '/6000', '-exec', 'chmod', 'ug-s', '{}', '+']);
    for (const entry of await fs.promises.readdir(workspace)) {
      if (entry !== '.git') await fs.promises.rm(path.join(workspace, entry), { recursive: true, force: true });
    }
    for (const entry of await fs.promises.readdir(unpacked)) {
      if (entry !== '.git') await fs.promises.rename(path.join(unpacked, entry), path.join(workspace, entry));
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true });
  }
}
