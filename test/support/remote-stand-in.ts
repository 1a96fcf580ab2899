/**
 * A STAND-IN for the VM or Fargate task that moto never starts (the one fake of the remote
 * provider tests). It takes the real boot script the provider handed to AWS — the EC2 instance's
 * user data (DescribeInstanceAttribute) or the ECS task's container override command
 * (DescribeTasks) — and runs it as a host process with a temp dir as its working directory
 * (`AUTOVIBE_WORKDIR`, what /workspace is on a real instance). Everything else is real: curl
 * against moto's presigned S3 URLs, tar, the runner protocol. It watches the instance/task at moto
 * and kills its process group once it is terminated/stopped, so it cannot outlive the test.
 *
 * Its PATH starts with a COUNTING WRAPPER around curl (test only): it logs every call (bytes
 * uploaded, URL without the signature, the `-w` output such as an HTTP status) and then runs the
 * real curl unchanged, so tests can count what the runner sent (moto does not log it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { DescribeTasksCommand, ListTasksCommand, type ECSClient } from '@aws-sdk/client-ecs';

export interface RemoteStandIn {
  /** What /workspace is on the stand-in. */
  workdir: string;
  /** Whether its processes are gone. */
  stopped(): boolean;
  /** The boot script's own output (the runner logs to a file next to its script on EC2). */
  output(): string;
  /** Every curl call so far, in order (from the counting wrapper). */
  curlCalls(): CurlCall[];
  /** Kills it (safe to repeat) and removes its working directory. */
  stop(): Promise<void>;
}

export interface CurlCall {
  /** PUT (`-T file`) or GET. */
  method: 'PUT' | 'GET';
  /** Bytes of the uploaded file (PUT). */
  bytes: number;
  /** URL path without the query (the signature), e.g. `/bucket/…/orders/3-…/stdout.0`. */
  path: string;
  /** What curl printed for `-w` (the runner asks for the HTTP status), else ''. */
  writeOut: string;
  exitCode: number;
}

const WRAPPER = (realCurl: string, log: string): string => `#!/bin/sh
# COUNTING WRAPPER around curl (test only): logs the call, runs the real curl unchanged.
upload= url= wout= prev=
for a in "$@"; do
  case $prev in -T) upload=$a ;; esac
  case $a in -w) wout=1 ;; http://* | https://*) url=\${a%%\\?*} ;; esac
  prev=$a
done
bytes=0
[ -n "$upload" ] && bytes=$(wc -c <"$upload")
if [ -n "$wout" ]; then
  out=$('${realCurl}' "$@")
  rc=$?
  printf '%s' "$out"
else
  out=
  '${realCurl}' "$@"
  rc=$?
fi
printf '%s\\t%s\\t%s\\t%s\\t%s\\n' "\${upload:+PUT}" "$bytes" "$url" "$out" "$rc" >>'${log}'
exit $rc
`;

function findOnPath(command: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, command);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(`${command} is not on PATH`);
}

const WATCH_MS = 300;

function startStandIn(script: string, isGone: () => Promise<boolean>): RemoteStandIn {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-stand-in-'));
  // Outside the working directory, which collect sends back whole.
  const tools = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-stand-in-tools-'));
  const curlLog = path.join(tools, 'curl.log');
  fs.writeFileSync(curlLog, '');
  fs.mkdirSync(path.join(tools, 'bin'));
  fs.writeFileSync(path.join(tools, 'bin', 'curl'), WRAPPER(findOnPath('curl'), curlLog), { mode: 0o755 });
  // Detached: its own process group, which the runner started by the boot script stays in.
  const child: ChildProcess = spawn('/bin/sh', ['-c', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AUTOVIBE_WORKDIR: workdir, PATH: `${path.join(tools, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` },
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const pgid = child.pid!;
  let dead = false;
  let stopping: Promise<void> | undefined;
  const groupAlive = (): boolean => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const kill = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(watcher);
      try {
        process.kill(-pgid, 'SIGTERM'); // the runner's trap kills its command's session too
      } catch {
        // already gone
      }
      for (let i = 0; i < 50 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 100));
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone
      }
      dead = true;
    })());
  const watcher = setInterval(() => {
    isGone()
      .then((gone) => (gone ? kill() : undefined))
      .catch(() => undefined);
  }, WATCH_MS);
  return {
    workdir,
    stopped: () => dead,
    output: () => output,
    curlCalls: () =>
      fs
        .readFileSync(curlLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [method, bytes, url, writeOut, exitCode] = line.split('\t');
          return { method: method === 'PUT' ? 'PUT' : 'GET', bytes: Number(bytes), path: url ?? '', writeOut: writeOut ?? '', exitCode: Number(exitCode) };
        }),
    stop: async () => {
      await kill();
      fs.rmSync(workdir, { recursive: true, force: true });
      fs.rmSync(tools, { recursive: true, force: true });
    },
  };
}

/** Runs the EC2 instance's user data as the stand-in VM; stops when the instance is terminated. */
export async function standInForEc2Instance(ec2: EC2Client, instanceId: string): Promise<RemoteStandIn> {
  const attr = await ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }));
  const userData = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
  if (!userData) throw new Error(`instance ${instanceId} has no user data`);
  return startStandIn(userData, async () => {
    const found = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations?.[0]?.Instances?.[0];
    const state = found?.State?.Name;
    return !found || state === 'shutting-down' || state === 'terminated' || state === 'stopping' || state === 'stopped';
  });
}

/** Waits for the machine's instance to be launched (by the platform) and stands in for it. */
export async function standInForEc2Machine(ec2: EC2Client, machineId: string, timeoutMs = 60_000): Promise<{ instanceId: string; standIn: RemoteStandIn }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:autovibe:machine', Values: [machineId] },
          { Name: 'instance-state-name', Values: ['pending', 'running'] },
        ],
      }),
    );
    const id = out.Reservations?.flatMap((r) => r.Instances ?? [])[0]?.InstanceId;
    if (id) return { instanceId: id, standIn: await standInForEc2Instance(ec2, id) };
    if (Date.now() > until) throw new Error(`no instance of machine ${machineId} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the ECS task's container override command as the stand-in task; stops when the task stops. */
export async function standInForEcsTask(ecs: ECSClient, cluster: string, taskArn: string, containerName: string): Promise<RemoteStandIn> {
  const task = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }))).tasks?.[0];
  const command = task?.overrides?.containerOverrides?.find((c) => c.name === containerName)?.command;
  if (!command || command.length < 3 || command[0] !== 'sh' || command[1] !== '-c') {
    throw new Error(`task ${taskArn} has no ["sh", "-c", script] command override for ${containerName}: ${JSON.stringify(command)}`);
  }
  return startStandIn(command[2]!, async () => {
    const t = (await ecs.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }))).tasks?.[0];
    return !t || t.desiredStatus === 'STOPPED' || t.lastStatus === 'STOPPED';
  });
}

/** Waits for the machine's task to be started (by the platform) and stands in for it. */
export async function standInForEcsMachine(
  ecs: ECSClient,
  cluster: string,
  machineId: string,
  containerName: string,
  timeoutMs = 60_000,
): Promise<{ taskArn: string; standIn: RemoteStandIn }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const arn = (await ecs.send(new ListTasksCommand({ cluster, startedBy: machineId, desiredStatus: 'RUNNING' }))).taskArns?.[0];
    if (arn) return { taskArn: arn, standIn: await standInForEcsTask(ecs, cluster, arn, containerName) };
    if (Date.now() > until) throw new Error(`no task of machine ${machineId} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
