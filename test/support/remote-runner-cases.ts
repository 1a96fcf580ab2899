/**
 * The remote runner's behaviour, shared by the aws-ec2 and aws-ecs provider tests: each calls
 * `remoteRunnerCases` inside its describe block with a provider configured with a bucket at moto
 * and a way to start the STAND-IN (test/support/remote-stand-in.ts) for an instance it provisioned.
 */
import assert from 'node:assert/strict';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ComputeProvider, ExecRequest, ExecResult, Instance, ProvisionRequest } from '../../activities/compute/provider.js';
import type { RemoteStandIn } from './remote-stand-in.js';

export interface RemoteRunnerContext {
  provider: ComputeProvider;
  standIn(instance: Instance): Promise<RemoteStandIn>;
  /** An URL the host serves: reachable with network, not without. */
  reachableUrl: string;
  /** The S3 client and bucket the provider's runner uses (default folder prefix). */
  s3: S3Client;
  bucket: string;
  /** The provider's output segment size and segment count (small here, so tests span many). */
  segmentBytes: number;
  segments: number;
  /** Takes the instance away from outside, as a spot reclaim does (plain AWS client). */
  interrupt(instance: Instance): Promise<void>;
}

/** Objects under the machine's runner folder in the bucket, with their sizes in bytes. */
async function objectSizesOf(c: RemoteRunnerContext, instance: Instance): Promise<Map<string, number>> {
  const out = await c.s3.send(new ListObjectsV2Command({ Bucket: c.bucket, Prefix: `autovibe/machines/${instance.projectId}/${instance.machineId}/` }));
  return new Map((out.Contents ?? []).map((o) => [o.Key!, o.Size ?? 0]));
}

interface Output {
  stdout: string;
  stderr: string;
  /** Time of the first stdout chunk. */
  firstStdoutAt: number | null;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The sizes of one stream's output segments in the bucket, by segment number (one exec order on the instance). */
function segmentSizes(objects: Map<string, number>, stream: 'stdout' | 'stderr'): number[] {
  const sizes: number[] = [];
  for (const [key, size] of objects) {
    const m = new RegExp(`/orders/[^/]+/${stream}\\.(\\d+)$`).exec(key);
    if (m) sizes[Number(m[1])] = size;
  }
  return sizes;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function remoteRunnerCases(ctx: () => RemoteRunnerContext, projectId: string): void {
  const started: Array<{ instance: Instance; standIn: RemoteStandIn }> = [];
  const dirs: string[] = [];

  const hostWorkspace = (files: Record<string, string>): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-remote-host-'));
    dirs.push(dir);
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), content);
    }
    return dir;
  };

  const launch = async (workspace: string): Promise<{ instance: Instance; standIn: RemoteStandIn }> => {
    const req: ProvisionRequest = {
      machineId: `machine-${crypto.randomUUID()}`,
      projectId,
      profile: 'lightweight',
      spot: false,
      workspace,
      tags: {},
    };
    const instance = await ctx().provider.provision(req);
    const standIn = await ctx().standIn(instance);
    const entry = { instance, standIn };
    started.push(entry);
    return entry;
  };

  const exec = async (instance: Instance, request: Omit<ExecRequest, 'onOutput'>): Promise<ExecResult & Output> => {
    const out: Output = { stdout: '', stderr: '', firstStdoutAt: null };
    const result = await ctx().provider.exec(instance, {
      ...request,
      onOutput: (chunk, stream) => {
        if (stream === 'stdout') {
          out.firstStdoutAt ??= Date.now();
          out.stdout += chunk.toString('utf8');
        } else out.stderr += chunk.toString('utf8');
      },
    });
    return { ...result, ...out };
  };

  afterEach(async () => {
    for (const { instance, standIn } of started.splice(0)) {
      await ctx().provider.terminate(instance);
      await standIn.stop();
    }
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('boots with the checkpoint files (without .git) and exec streams stdout and stderr, in order, with the exit code', async () => {
    const workspace = hostWorkspace({ 'README.md': '# project\n', 'src/main.ts': 'export const x = 1;\n', '.git': 'gitdir: /host/only/path\n' });
    const { instance, standIn } = await launch(workspace);
    const result = await exec(instance, {
      command: 'cat README.md src/main.ts; echo "err one" >&2; echo "[$GREETING]"; sleep 3; echo late; echo "err two" >&2; exit 3',
      env: { GREETING: "it's here" },
      network: true,
      deadline: Date.now() + 60_000,
    });
    const ended = Date.now();
    assert.equal(result.stopReason, null);
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, "# project\nexport const x = 1;\n[it's here]\nlate\n");
    assert.equal(result.stderr, 'err one\nerr two\n');
    assert.ok(result.firstStdoutAt !== null && ended - result.firstStdoutAt >= 1_500, 'the first output arrived while the command still ran');
    assert.ok(!fs.existsSync(path.join(standIn.workdir, '.git')), "the worktree's .git link stays on the host");
    // An argv command runs without a shell's word splitting.
    const argv = await exec(instance, { command: ['printf', '%s|', 'a b', "c'd"], network: true, deadline: Date.now() + 60_000 });
    assert.equal(argv.stdout, "a b|c'd|");
    assert.equal(argv.exitCode, 0);
  });

  it('output far beyond 24,000 characters arrives whole', async () => {
    const { instance } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    const result = await exec(instance, {
      command: 'i=0; while [ $i -lt 30000 ]; do echo "line $i"; i=$((i+1)); done',
      network: true,
      deadline: Date.now() + 60_000,
    });
    const expected = Array.from({ length: 30_000 }, (_, i) => `line ${i}\n`).join('');
    assert.ok(expected.length > 200_000);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout.length, expected.length);
    assert.equal(result.stdout, expected);
    // Beyond segments × size it all went into the last segment.
    const { segmentBytes: size, segments } = ctx();
    assert.ok(expected.length > segments * size, 'the output overflows the segments');
    const sizes = segmentSizes(await objectSizesOf(ctx(), instance), 'stdout');
    assert.deepEqual(sizes, [...Array<number>(segments - 1).fill(size), expected.length - (segments - 1) * size]);
  });

  it('output over several segments arrives whole and in order; each full segment is uploaded once; the control object is fetched only when it changed', async () => {
    const { instance, standIn } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    const { segmentBytes: size } = ctx();
    // Written over about 3 s, so the runner sees segments while they fill.
    const result = await exec(instance, {
      command: 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; echo "e$i" >&2; i=$((i+1)); [ $((i % 200)) = 0 ] && sleep 0.3; done; exit 0',
      network: true,
      deadline: Date.now() + 60_000,
    });
    const stdout = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join('');
    const stderr = Array.from({ length: 2000 }, (_, i) => `e${i}\n`).join('');
    assert.ok(stdout.length > 3 * size && stderr.length > 2 * size, 'more than 3 segments of stdout, more than 2 of stderr');
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, stdout);
    assert.equal(result.stderr, stderr);

    const objects = await objectSizesOf(ctx(), instance);
    const calls = standIn.curlCalls();
    for (const [stream, text] of [
      ['stdout', stdout],
      ['stderr', stderr],
    ] as const) {
      const full = Math.floor(text.length / size);
      const expected = [...Array<number>(full).fill(size), ...(text.length % size ? [text.length % size] : [])];
      assert.deepEqual(segmentSizes(objects, stream), expected, `${stream} segments in the bucket`);
      let uploaded = 0;
      for (let k = 0; k < expected.length; k++) {
        const puts = calls.filter((c) => c.method === 'PUT' && c.exitCode === 0 && c.path.endsWith(`/${stream}.${k}`)).map((c) => c.bytes);
        uploaded += puts.reduce((a, b) => a + b, 0);
        // A segment is sent again only while it grows, and once it is full never again.
        assert.ok(puts.length > 0, `${stream}.${k} was uploaded`);
        for (let j = 1; j < puts.length; j++) assert.ok(puts[j]! > puts[j - 1]!, `${stream}.${k} uploads grow: ${puts.join(', ')}`);
        assert.equal(puts.at(-1), expected[k], `${stream}.${k}'s last upload is the whole segment`);
        if (expected[k] === size) assert.equal(puts.filter((b) => b === size).length, 1, `full ${stream}.${k} uploaded once`);
      }
      // Linear: the output once, plus at most one partial segment per upload round.
      const rounds = calls.filter((c) => c.path.endsWith('/control')).length;
      assert.ok(uploaded <= text.length + rounds * size, `${stream}: ${uploaded} bytes uploaded for ${text.length}`);
    }

    // The control object: a body only for a new order (the boot's and this exec's), a 304 otherwise.
    const control = calls.filter((c) => c.path.endsWith('/control') && c.writeOut !== '');
    const codes = control.map((c) => c.writeOut);
    assert.ok(codes.filter((c) => c === '304').length >= 2, `304s while the command ran: ${codes.join(' ')}`);
    assert.ok(codes.filter((c) => c === '200').length <= 2, `bodies only for new orders: ${codes.join(' ')}`);
    assert.deepEqual([...new Set(codes)].sort(), ['200', '304']);
  });

  it('a deadline and an abort stop the remote command', async () => {
    const { instance, standIn } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    const deadlineRun = await exec(instance, {
      command: 'echo $$ > pid.txt; echo started; sleep 30; echo late > late.txt',
      network: true,
      deadline: Date.now() + 3_000,
    });
    assert.equal(deadlineRun.stopReason, 'deadline');
    assert.equal(deadlineRun.exitCode, null);
    const pid = Number(fs.readFileSync(path.join(standIn.workdir, 'pid.txt'), 'utf8'));
    assert.ok(pid > 0);
    assert.equal(alive(pid), false, 'the command was killed when exec returned');

    const controller = new AbortController();
    const running = exec(instance, {
      command: 'echo $$ > pid2.txt; sleep 30; echo late > late.txt',
      network: true,
      deadline: Date.now() + 60_000,
      signal: controller.signal,
    });
    const pid2 = await waitFor('the second command to start', () => {
      const file = path.join(standIn.workdir, 'pid2.txt');
      return fs.existsSync(file) && Number(fs.readFileSync(file, 'utf8')) > 0 ? Number(fs.readFileSync(file, 'utf8')) : undefined;
    });
    controller.abort();
    const aborted = await running;
    assert.equal(aborted.stopReason, 'aborted');
    assert.equal(alive(pid2), false, 'the aborted command was killed');
    assert.ok(!fs.existsSync(path.join(standIn.workdir, 'late.txt')));
    // The runner goes on taking orders.
    const after = await exec(instance, { command: 'echo still here', network: true, deadline: Date.now() + 60_000 });
    assert.deepEqual([after.exitCode, after.stdout], [0, 'still here\n']);
  });

  it('a command without network cannot reach the host; with network it can', async () => {
    const { instance } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    const probe = `if curl -fsS -m 5 -o /dev/null '${ctx().reachableUrl}'; then echo reachable; else echo unreachable; fi`;
    const offline = await exec(instance, { command: probe, network: false, deadline: Date.now() + 60_000 });
    assert.equal(offline.stdout, 'unreachable\n');
    const online = await exec(instance, { command: probe, network: true, deadline: Date.now() + 60_000 });
    assert.equal(online.stdout, 'reachable\n');
  });

  it('collect brings back new, modified and deleted files, the executable bit and symlinks; deliver puts the host files back', async () => {
    const workspace = hostWorkspace({ 'keep.txt': 'old\n', 'gone.txt': 'bye\n', 'dir/inner.txt': 'inner\n', '.git': 'gitdir: /host/only/path\n' });
    const { instance, standIn } = await launch(workspace);
    const changes = [
      'echo new > new.txt',
      'echo changed > keep.txt',
      'rm gone.txt',
      "printf '#!/bin/sh\\necho hi\\n' > tool.sh && chmod 755 tool.sh",
      'ln -s keep.txt link',
      'mkdir -p made/deep && echo deep > made/deep/file.txt',
    ].join(' && ');
    assert.equal((await exec(instance, { command: changes, network: true, deadline: Date.now() + 60_000 })).exitCode, 0);
    const { collectWorkspace, deliverWorkspace } = ctx().provider;
    assert.ok(collectWorkspace && deliverWorkspace, 'the provider moves files both ways');
    await collectWorkspace.call(ctx().provider, instance, workspace, Date.now() + 60_000);
    assert.equal(fs.readFileSync(path.join(workspace, 'new.txt'), 'utf8'), 'new\n');
    assert.equal(fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8'), 'changed\n');
    assert.equal(fs.existsSync(path.join(workspace, 'gone.txt')), false, 'deleted on the instance = deleted here');
    assert.equal(fs.statSync(path.join(workspace, 'tool.sh')).mode & 0o111, 0o111, 'the executable bit survives');
    assert.equal(fs.readlinkSync(path.join(workspace, 'link')), 'keep.txt');
    assert.equal(fs.readFileSync(path.join(workspace, 'made/deep/file.txt'), 'utf8'), 'deep\n');
    assert.equal(fs.readFileSync(path.join(workspace, 'dir/inner.txt'), 'utf8'), 'inner\n');
    assert.equal(fs.readFileSync(path.join(workspace, '.git'), 'utf8'), 'gitdir: /host/only/path\n', "the host's .git is untouched");

    // deliver: the instance's files become the host's again (a retried command starts clean).
    fs.rmSync(path.join(workspace, 'new.txt'));
    fs.writeFileSync(path.join(workspace, 'fresh.txt'), 'fresh\n');
    await deliverWorkspace.call(ctx().provider, instance, workspace, Date.now() + 60_000);
    assert.equal(fs.existsSync(path.join(standIn.workdir, 'new.txt')), false);
    assert.equal(fs.readFileSync(path.join(standIn.workdir, 'fresh.txt'), 'utf8'), 'fresh\n');
    assert.equal(fs.existsSync(path.join(standIn.workdir, '.git')), false);
    const listing = await exec(instance, { command: 'ls -A | LC_ALL=C sort | tr "\\n" " "', network: true, deadline: Date.now() + 60_000 });
    const hostFiles = fs
      .readdirSync(workspace)
      .filter((f) => f !== '.git')
      .sort()
      .map((f) => `${f} `)
      .join('');
    assert.ok(hostFiles.includes('fresh.txt ') && !hostFiles.includes('new.txt '));
    assert.equal(listing.stdout, hostFiles, 'the instance holds exactly the host files');
  });

  it('exec reports an interruption when the instance is taken away from outside mid-command', async () => {
    const { instance, standIn } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    const running = exec(instance, { command: 'echo $$ > pid.txt; sleep 30', network: true, deadline: Date.now() + 60_000 });
    await waitFor('the command to start', () => fs.existsSync(path.join(standIn.workdir, 'pid.txt')));
    await ctx().interrupt(instance);
    const result = await running;
    assert.equal(result.stopReason, 'interrupted');
    assert.equal(result.exitCode, null);
  });

  it('a warm instance (started for no machine) keeps its channel when a machine claims it, and gets the files by deliver', async () => {
    const pool: ProvisionRequest = { machineId: '', projectId: '', profile: 'lightweight', spot: false, workspace: hostWorkspace({}), tags: { pool: 'test' } };
    const warm = await ctx().provider.provision(pool);
    const standIn = await ctx().standIn(warm);
    // What the warm pool hands out: the same instance under the claiming machine's ids.
    const claimed: Instance = { ...warm, machineId: `machine-${crypto.randomUUID()}`, projectId };
    started.push({ instance: claimed, standIn });
    const workspace = hostWorkspace({ 'from-checkpoint.txt': 'files\n' });
    await ctx().provider.deliverWorkspace!(claimed, workspace, Date.now() + 60_000);
    const result = await exec(claimed, { command: 'cat from-checkpoint.txt', network: true, deadline: Date.now() + 60_000 });
    assert.deepEqual([result.exitCode, result.stdout], [0, 'files\n']);
  });

  it('terminate stops the instance (and the stand-in with it) and removes its folder in the bucket', async () => {
    const { instance, standIn } = await launch(hostWorkspace({ 'a.txt': 'a\n' }));
    assert.equal((await exec(instance, { command: 'true', network: true, deadline: Date.now() + 60_000 })).exitCode, 0);
    assert.ok((await objectSizesOf(ctx(), instance)).size > 0);
    await ctx().provider.terminate(instance);
    await waitFor('the stand-in to stop', () => standIn.stopped());
    assert.deepEqual([...(await objectSizesOf(ctx(), instance)).keys()], []);
    await ctx().provider.terminate(instance);
  });
}
