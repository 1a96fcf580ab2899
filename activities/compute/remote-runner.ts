/**
 * The remote runner: how the platform runs commands on, and moves files to and from, an instance
 * it can only reach through S3 (an `aws-ec2` VM, an `aws-ecs` Fargate task). No inbound port, no
 * agent: a small POSIX sh script on the instance (curl + tar + sh) polls one object.
 *
 * Protocol. Every instance has a folder `<prefix><channel>/` in the bucket (`<project>/<machine>`,
 * or `pool/<uuid>` for a warm instance; see newChannel):
 * - `runner.sh`   the script below, fetched by the boot script.
 * - `control`     the current order. The instance holds a presigned GET URL of it, made at
 *                 provision time and polled every second with If-None-Match and the ETag of its
 *                 last copy: an unchanged order costs a 304 and no body (moto answers 304 too; a
 *                 store that ignores the condition sends the same order again, which the runner
 *                 skips by its seq). A presigned URL lives at most 7 days
 *                 (SigV4), or less when the signing credentials are temporary, and it cannot be
 *                 renewed once the instance booted: a machine must end within that (machine time
 *                 limits are far below it).
 * - `orders/<seq>-<uuid>/{stdout.<k>,stderr.<k>,status,archive}`  what the instance uploads for
 *                 order `seq`, through presigned PUT URLs carried in the order itself.
 *
 * An order is text a shell can read: `KEY=value` lines, a `---` line, then the script (exec only):
 *
 *     SEQ=12                  increasing; the runner acts once on each new seq, never on an older one
 *     KIND=exec               exec | cancel | collect | deliver
 *     NETWORK=0               exec: 0 runs the script in an empty network namespace (unshare --net)
 *     SEGMENT_BYTES=1048576   exec: S, the size of one output segment
 *     SEGMENTS=32             exec: N, segments per stream
 *     STDOUT_URL_<k>=https://…  exec, k = 0 … N-1: PUT segment k of stdout, bytes [k*S, (k+1)*S)
 *     STDERR_URL_<k>=https://…  exec: the same for stderr
 *     STATUS_URL=https://…    PUT once when the order is done: exec's exit code; collect/deliver
 *                             0 or 1; cancel `cancelled` (the command's session is dead)
 *     ARCHIVE_URL=https://…   collect: PUT a tar.gz of the working directory (without .git);
 *                             deliver: GET a tar.gz that replaces the working directory's files
 *     ---
 *     <script>
 *
 * exec starts the script in its own session (setsid) in the working directory and keeps polling;
 * `cancel` and `deliver` kill a running command's whole session first. `collect` may run while a
 * command runs (a checkpoint of the live files). The working directory is `$AUTOVIBE_WORKDIR`,
 * default /workspace.
 *
 * Output. S3 has no append, so each stream is cut into segments of S bytes: every second the
 * runner uploads what is new of the segment still filling (again, whole, as it grows) and each
 * segment that filled up once; a full segment is never sent again. Upload is thus linear in the
 * output, plus at most S per second per stream while a segment fills (re-uploading the whole
 * stream every second would cost ~9 GB for 10 MB printed over 30 minutes). Output beyond
 * (N-1)*S all goes into the last segment, which is re-uploaded whole as it grows: a command
 * printing more than N*S (32 MiB by default) costs that much upload per second, and such output
 * belongs in a file. On the platform side exec reads each stream from its offset with ranged GETs
 * of the segment holding it (offset / S), going on to the next once the current one is full, and
 * hands only the new bytes to `onOutput`; after the status object it reads to the end. So output
 * of any length arrives whole (SSM cut it at 24,000 characters). Each stream arrives in order;
 * how the two interleave is known only to the second.
 *
 * Order size: an exec order carries 2*N + 1 presigned URLs. Measured with N = 64, a real-length
 * bucket and keys: 78 KB with long-term keys, 227-265 KB with temporary credentials (their
 * session token is in every URL). Hence N = 32 by default (half of that), 32 MiB
 * per stream before the last segment takes the rest. The order is fetched once (then 304s).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ExecRequest, ExecResult, Instance } from './provider.js';
import { packWorkspaceToFile, replaceWorkspaceFiles } from './workspace-archive.js';

/** The longest a SigV4 presigned URL may live. */
export const PRESIGN_MAX_SECONDS = 7 * 24 * 3600;
/** exec checks the instance for an interruption every this many polls (5 s at the default interval). */
const INTERRUPTION_EVERY_POLLS = 5;
/** How long a cancel waits for the runner to confirm the command is dead. */
const CANCEL_CONFIRM_MS = 20_000;
/** Default size of one output segment (see the protocol above). */
export const SEGMENT_BYTES = 1024 * 1024;
/** Default number of segments per stream; the order carries a presigned URL for each (see Order size above). */
export const SEGMENTS = 32;

export const RUNNER_SCRIPT = String.raw`#!/bin/sh
# AutoVibe remote runner: see activities/compute/remote-runner.ts for the protocol.
control_url=$1
workdir=${'$'}{AUTOVIBE_WORKDIR:-/workspace}
interval=${'$'}{AUTOVIBE_POLL_SECONDS:-1}
state=$(mktemp -d)
last=0
pid=
cmd_status_url=
trap 'stop_cmd; exit 0' TERM INT HUP

put() { curl -fsS --retry 3 -T "$1" "$2" >/dev/null; }
say() { printf '%s\n' "$1" >"$state/say"; put "$state/say" "$2"; }

stop_cmd() {
  [ -n "$pid" ] || return 0
  sid=$(cat "$state/sid" 2>/dev/null)
  if [ -n "$sid" ]; then kill -TERM -"$sid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
  sleep 1
  [ -n "$sid" ] && kill -KILL -"$sid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}

# Uploads what is new of stream $1 (out | err): each segment once it is full, the growing one
# again while it grows; the last segment takes everything beyond (segments - 1) * bytes.
# Fails when an upload failed (what is left goes next time).
flush_stream() {
  ok=0
  n=$(wc -c <"$state/$1")
  eval "k=\$seg_$1 sent=\$sent_$1"
  while [ "$c_segs" -gt 0 ]; do
    start=$((k * c_bytes))
    len=$((n - start))
    if [ "$k" -lt $((c_segs - 1)) ] && [ "$len" -gt "$c_bytes" ]; then len=$c_bytes; fi
    [ "$len" -gt "$sent" ] || break
    tail -c +$((start + 1)) "$state/$1" | head -c "$len" >"$state/seg"
    eval "url=\$c_$1_$k"
    put "$state/seg" "$url" || {
      ok=1
      break
    }
    sent=$len
    { [ "$k" -lt $((c_segs - 1)) ] && [ "$sent" -eq "$c_bytes" ]; } || break
    k=$((k + 1))
    sent=0
  done
  eval "seg_$1=\$k sent_$1=\$sent"
  return $ok
}

flush() {
  flush_stream out
  f=$?
  flush_stream err && [ "$f" = 0 ]
}

# The control object, only when it changed (If-None-Match with its last ETag: 304, no body).
# A store that ignores the condition answers 200 with the same order, which the seq skips.
fetch_control() {
  if [ -s "$state/etag" ]; then
    code=$(curl -sS -o "$state/control" -D "$state/headers" -w '%{http_code}' -H "If-None-Match: $(cat "$state/etag")" "$control_url" 2>/dev/null) || return 1
  else
    code=$(curl -sS -o "$state/control" -D "$state/headers" -w '%{http_code}' "$control_url" 2>/dev/null) || return 1
  fi
  [ "$code" = 200 ] || return 1
  sed -n 's/^[Ee][Tt][Aa][Gg]:[[:space:]]*//p' "$state/headers" | tr -d '\r' >"$state/etag"
}

read_order() {
  o_seq= o_kind= o_net=1 o_status= o_archive= o_bytes=0 o_segs=0
  {
    while IFS= read -r line; do
      case $line in
        ---) break ;;
        SEQ=*) o_seq=${'$'}{line#SEQ=} ;;
        KIND=*) o_kind=${'$'}{line#KIND=} ;;
        NETWORK=*) o_net=${'$'}{line#NETWORK=} ;;
        SEGMENT_BYTES=*) o_bytes=${'$'}{line#SEGMENT_BYTES=} ;;
        SEGMENTS=*) o_segs=${'$'}{line#SEGMENTS=} ;;
        STDOUT_URL_*=* | STDERR_URL_*=*)
          name=${'$'}{line%%=*}
          k=${'$'}{name#*_URL_}
          case $name in STDOUT*) s=out ;; *) s=err ;; esac
          # k is digits only before it becomes part of a variable name.
          val=${'$'}{line#*=}
          case $k in '' | *[!0-9]*) ;; *) eval "o_$s""_$k=\$val" ;; esac
          ;;
        STATUS_URL=*) o_status=${'$'}{line#STATUS_URL=} ;;
        ARCHIVE_URL=*) o_archive=${'$'}{line#ARCHIVE_URL=} ;;
      esac
    done
    cat >"$state/order.sh"
  } <"$1"
  case $o_bytes in '' | *[!0-9]*) o_bytes=0 ;; esac
  case $o_segs in '' | *[!0-9]*) o_segs=0 ;; esac
  [ "$o_bytes" -gt 0 ] || o_segs=0
  case $o_seq in '' | *[!0-9]*) return 1 ;; esac
}

start_exec() {
  mv "$state/order.sh" "$state/cmd.sh"
  : >"$state/out"
  : >"$state/err"
  rm -f "$state/rc" "$state/sid"
  seg_out=0 sent_out=0 seg_err=0 sent_err=0
  c_bytes=$o_bytes c_segs=$o_segs cmd_status_url=$o_status
  i=0
  while [ "$i" -lt "$c_segs" ]; do
    eval "c_out_$i=\$o_out_$i c_err_$i=\$o_err_$i"
    i=$((i + 1))
  done
  wrap=
  if [ "$o_net" = 0 ]; then
    # root on the VM; anyone else needs a user namespace to get a network namespace.
    if [ "$(id -u)" = 0 ]; then wrap='unshare --net --'; else wrap='unshare --user --map-root-user --net --'; fi
  fi
  (
    cd "$workdir" || exit
    # Its own session, so a cancel kills everything the command started.
    if command -v setsid >/dev/null 2>&1; then
      setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$state/sid" $wrap sh "$state/cmd.sh" >"$state/out" 2>"$state/err"
    else
      $wrap sh "$state/cmd.sh" >"$state/out" 2>"$state/err"
    fi
    echo $? >"$state/rc.tmp"
    mv "$state/rc.tmp" "$state/rc"
  ) &
  pid=$!
}

clear_workdir() {
  mkdir -p "$workdir"
  rm -rf "$workdir"/* "$workdir"/.[!.]* "$workdir"/..?*
}

while :; do
  if fetch_control && read_order "$state/control" && [ "$o_seq" -gt "$last" ]; then
    last=$o_seq
    case $o_kind in
      exec)
        stop_cmd
        start_exec
        ;;
      cancel)
        stop_cmd
        say cancelled "$o_status"
        ;;
      collect)
        if tar -C "$workdir" --exclude=./.git -czf "$state/collect.tar.gz" . && put "$state/collect.tar.gz" "$o_archive"; then rc=0; else rc=1; fi
        rm -f "$state/collect.tar.gz"
        say "$rc" "$o_status"
        ;;
      deliver)
        stop_cmd
        clear_workdir
        if curl -fsS --retry 3 -o "$state/deliver.tar.gz" "$o_archive" && tar -xzf "$state/deliver.tar.gz" -C "$workdir"; then rc=0; else rc=1; fi
        rm -f "$state/deliver.tar.gz"
        say "$rc" "$o_status"
        ;;
    esac
  fi
  if [ -n "$pid" ]; then
    if [ -f "$state/rc" ]; then
      wait "$pid" 2>/dev/null
      # The status only once all output is up: after it the platform reads to the end and stops.
      if flush && put "$state/rc" "$cmd_status_url"; then pid=; fi
    else
      flush
    fi
  fi
  sleep "$interval"
done
`;

/** POSIX single-quoting. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command as a shell script: exported environment, then the command. */
export function shellScript(request: Pick<ExecRequest, 'command' | 'env'>): string {
  const lines = Object.entries(request.env ?? {}).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    return `export ${k}=${shellQuote(v)}`;
  });
  lines.push(typeof request.command === 'string' ? request.command : request.command.map(shellQuote).join(' '));
  return lines.join('\n');
}

export interface RemoteRunnerConfig {
  s3: S3Client;
  bucket: string;
  /** Key prefix of every instance's folder; default `autovibe/machines/`. */
  prefix?: string;
  /** How often the platform polls the runner's uploads; default 1000 ms. */
  pollIntervalMs?: number;
  /** Size of one output segment; default SEGMENT_BYTES (1 MiB). */
  segmentBytes?: number;
  /** Segments per stream (the last one takes any output beyond); default SEGMENTS (32). */
  segments?: number;
}

/** The runner settings of the aws-ec2 and aws-ecs provider configurations (see AwsEc2Config). */
export interface RemoteRunnerSettings {
  workspacePrefix?: string;
  pollIntervalMs?: number;
  outputSegmentBytes?: number;
  outputSegments?: number;
}

/** The runner a provider with a workspace bucket uses, from its configuration's settings. */
export function remoteRunnerFor(s3: S3Client, bucket: string, settings: RemoteRunnerSettings): RemoteRunner {
  return new RemoteRunner({
    s3,
    bucket,
    ...(settings.workspacePrefix ? { prefix: settings.workspacePrefix } : {}),
    ...(settings.pollIntervalMs ? { pollIntervalMs: settings.pollIntervalMs } : {}),
    ...(settings.outputSegmentBytes ? { segmentBytes: settings.outputSegmentBytes } : {}),
    ...(settings.outputSegments ? { segments: settings.outputSegments } : {}),
  });
}

/**
 * The name of an instance's folder: `<project>/<machine>` for a machine's own instance, a fresh
 * `pool/<uuid>` for a warm one started before any machine claimed it. Providers keep it on the
 * instance (a tag), since a claimed warm instance keeps its folder under its new machine.
 */
export function newChannel(request: Pick<Instance, 'machineId' | 'projectId'>): string {
  return request.machineId ? `${request.projectId}/${request.machineId}` : `pool/${crypto.randomUUID()}`;
}
/** Whether the instance was taken away (spot reclaim, stopped from outside). */
export type InterruptionCheck = () => Promise<boolean>;
type OrderKind = 'exec' | 'cancel' | 'collect' | 'deliver';

export class RemoteRunner {
  private readonly s3: S3Client;
  readonly bucket: string;
  private readonly prefix: string;
  private readonly interval: number;
  readonly segmentBytes: number;
  readonly segments: number;

  constructor(config: RemoteRunnerConfig) {
    this.s3 = config.s3;
    this.bucket = config.bucket;
    this.prefix = config.prefix ?? 'autovibe/machines/';
    this.interval = config.pollIntervalMs ?? 1_000;
    this.segmentBytes = config.segmentBytes ?? SEGMENT_BYTES;
    this.segments = config.segments ?? SEGMENTS;
    for (const [name, value] of [
      ['segmentBytes', this.segmentBytes],
      ['segments', this.segments],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`RemoteRunnerConfig.${name} must be a positive integer, got ${value}`);
    }
  }

  /** The instance's folder in the bucket. */
  folder(channel: string): string {
    return `${this.prefix}${channel}/`;
  }

  /**
   * Uploads the runner and the workspace (when there is one) and returns the boot script: it
   * unpacks the files into `$AUTOVIBE_WORKDIR` (default /workspace), runs `extra`, then starts the
   * runner: in the foreground (a container's command) or detached (VM user data must end).
   */
  async bootScript(channel: string, options: { workspace?: string; foreground: boolean; extra?: string }): Promise<string> {
    const base = this.folder(channel);
    await this.put(`${base}runner.sh`, Buffer.from(RUNNER_SCRIPT), 'text/x-shellscript');
    // The sequence goes on from any earlier instance's orders: a new runner skips to it.
    const seq = await this.currentSeq(base);
    await this.put(`${base}control`, Buffer.from(`SEQ=${seq}\nKIND=none\n---\n`), 'text/plain');
    const runnerUrl = await this.presign('get', `${base}runner.sh`, PRESIGN_MAX_SECONDS);
    const controlUrl = await this.presign('get', `${base}control`, PRESIGN_MAX_SECONDS);
    const lines = ['#!/bin/sh', 'set -e', 'w=${AUTOVIBE_WORKDIR:-/workspace}', 'mkdir -p "$w"'];
    if (options.workspace && isDirectory(options.workspace)) {
      await this.putFile(`${base}workspace.tar.gz`, await packWorkspaceToFile(options.workspace));
      const url = await this.presign('get', `${base}workspace.tar.gz`, PRESIGN_MAX_SECONDS);
      lines.push(`curl -fsS --retry 5 ${shellQuote(url)} | tar -xz -C "$w"`);
    }
    if (options.extra) lines.push(options.extra);
    lines.push('r=$(mktemp)', `curl -fsS --retry 5 -o "$r" ${shellQuote(runnerUrl)}`, 'export AUTOVIBE_WORKDIR="$w"');
    lines.push(options.foreground ? `exec sh "$r" ${shellQuote(controlUrl)}` : `nohup sh "$r" ${shellQuote(controlUrl)} >"$r.log" 2>&1 </dev/null &`);
    return lines.join('\n');
  }

  /** Runs the command on the instance; see ComputeProvider.exec for the contract. */
  async exec(channel: string, request: ExecRequest, interrupted: InterruptionCheck): Promise<ExecResult> {
    if (await interrupted()) return { exitCode: null, stopReason: 'interrupted' };
    if (request.signal?.aborted) return { exitCode: null, stopReason: 'aborted' };
    if (Date.now() >= request.deadline) return { exitCode: null, stopReason: 'deadline' };
    const size = this.segmentBytes;
    const last = this.segments - 1;
    const segmentPuts: Array<[string, string]> = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      for (let k = 0; k <= last; k++) segmentPuts.push([`${stream.toUpperCase()}_URL_${k}`, segmentKey(stream, k)]);
    }
    const order = await this.order(channel, 'exec', {
      puts: [...segmentPuts, ['STATUS_URL', 'status']],
      fields: { NETWORK: request.network ? '1' : '0', SEGMENT_BYTES: String(size), SEGMENTS: String(this.segments) },
      script: shellScript(request),
      until: request.deadline,
    });
    const offsets = { stdout: 0, stderr: 0 };
    // Each stream from its offset: the segment holding it, then the next ones while they are full.
    const pump = async (): Promise<void> => {
      for (const stream of ['stdout', 'stderr'] as const) {
        for (;;) {
          const offset = offsets[stream];
          const k = Math.min(Math.floor(offset / size), last);
          let chunk = await this.getFrom(`${order.folder}${segmentKey(stream, k)}`, offset - k * size);
          if (!chunk || chunk.length === 0) break;
          // A segment before the last never holds more than its size.
          if (k < last && offset + chunk.length > (k + 1) * size) chunk = chunk.subarray(0, (k + 1) * size - offset);
          offsets[stream] += chunk.length;
          request.onOutput?.(chunk, stream);
          if (k === last || offsets[stream] < (k + 1) * size) break;
        }
      }
    };
    let polls = 0;
    for (;;) {
      await pump();
      const status = await this.getText(`${order.folder}status`);
      if (status !== undefined) {
        await pump(); // everything written before the exit code
        const code = Number.parseInt(status.trim(), 10);
        return { exitCode: Number.isNaN(code) ? null : code, stopReason: null };
      }
      if (request.signal?.aborted) {
        await this.cancel(channel, interrupted);
        return { exitCode: null, stopReason: 'aborted' };
      }
      if (Date.now() >= request.deadline) {
        await this.cancel(channel, interrupted);
        return { exitCode: null, stopReason: 'deadline' };
      }
      // The instance itself is asked less often than S3: describe calls are rate-limited per account.
      if (++polls % INTERRUPTION_EVERY_POLLS === 0 && (await interrupted())) return { exitCode: null, stopReason: 'interrupted' };
      await sleepUnless(Math.min(this.interval, Math.max(0, request.deadline - Date.now())), request.signal);
    }
  }

  /** Kills the running command, waiting (a bounded while) for the runner to confirm it. */
  async cancel(channel: string, interrupted: InterruptionCheck): Promise<void> {
    const order = await this.order(channel, 'cancel', { puts: [['STATUS_URL', 'status']], until: Date.now() + CANCEL_CONFIRM_MS });
    await this.waitStatus(order.folder, Date.now() + CANCEL_CONFIRM_MS, interrupted).catch(() => undefined);
  }

  /** Replaces the host `workspace`'s files (all but .git) with the instance's working directory. */
  async collect(channel: string, workspace: string, deadline: number, interrupted: InterruptionCheck): Promise<void> {
    const order = await this.order(channel, 'collect', {
      puts: [
        ['STATUS_URL', 'status'],
        ['ARCHIVE_URL', 'archive'],
      ],
      until: deadline,
    });
    const status = await this.waitStatus(order.folder, deadline, interrupted);
    if (status !== '0') throw new Error(`collecting the files of ${channel} failed on the instance (status ${status})`);
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: `${order.folder}archive` }));
    const archive = Buffer.from(await out.Body!.transformToByteArray());
    await replaceWorkspaceFiles(workspace, archive);
  }

  /** Replaces the instance's working directory with the host `workspace`'s files; stops a running command first. */
  async deliver(channel: string, workspace: string, deadline: number, interrupted: InterruptionCheck): Promise<void> {
    const key = `${this.folder(channel)}deliver.tar.gz`;
    await this.putFile(key, await packWorkspaceToFile(workspace));
    const order = await this.order(channel, 'deliver', { puts: [['STATUS_URL', 'status']], gets: { archive: key }, until: deadline });
    const status = await this.waitStatus(order.folder, deadline, interrupted);
    if (status !== '0') throw new Error(`delivering the files of ${channel} failed on the instance (status ${status})`);
  }

  /** Deletes the instance's folder (runner, orders, archives). Safe to repeat. */
  async remove(channel: string): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.folder(channel), ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Writes the next order (seq one above the current one) into the control object. */
  private async order(
    channel: string,
    kind: OrderKind,
    opts: {
      /** `[field, name]`: the order's field gets a presigned PUT URL of `<order folder><name>`. */
      puts: Array<[string, string]>;
      gets?: { archive: string };
      fields?: Record<string, string>;
      script?: string;
      until: number;
    },
  ): Promise<{ seq: number; folder: string }> {
    const base = this.folder(channel);
    const seq = (await this.currentSeq(base)) + 1;
    // Never the folder of an earlier order with the same seq (a folder left by a former instance).
    const folder = `${base}orders/${seq}-${crypto.randomUUID()}/`;
    // Until the order's end, plus room for the last uploads; never past the SigV4 maximum.
    const expires = Math.min(PRESIGN_MAX_SECONDS, Math.max(600, Math.ceil((opts.until - Date.now()) / 1000) + 600));
    const lines = [`SEQ=${seq}`, `KIND=${kind}`, ...Object.entries(opts.fields ?? {}).map(([k, v]) => `${k}=${v}`)];
    for (const [field, name] of opts.puts) lines.push(`${field}=${await this.presign('put', `${folder}${name}`, expires)}`);
    if (opts.gets) lines.push(`ARCHIVE_URL=${await this.presign('get', opts.gets.archive, expires)}`);
    lines.push('---', opts.script ?? '');
    await this.put(`${base}control`, Buffer.from(`${lines.join('\n')}\n`), 'text/plain');
    return { seq, folder };
  }

  private async currentSeq(base: string): Promise<number> {
    const current = await this.getText(`${base}control`);
    return Number(/^SEQ=(\d+)$/m.exec(current ?? '')?.[1] ?? '0');
  }

  private async waitStatus(folder: string, deadline: number, interrupted: InterruptionCheck): Promise<string> {
    for (;;) {
      const status = await this.getText(`${folder}status`);
      if (status !== undefined) return status.trim();
      if (Date.now() >= deadline) throw new Error(`the instance did not answer order ${folder} in time`);
      if (await interrupted()) throw new Error(`the instance went away before answering order ${folder}`);
      await sleepUnless(Math.min(this.interval, Math.max(0, deadline - Date.now())));
    }
  }

  private presign(method: 'get' | 'put', key: string, expiresIn: number): Promise<string> {
    const command = method === 'get' ? new GetObjectCommand({ Bucket: this.bucket, Key: key }) : new PutObjectCommand({ Bucket: this.bucket, Key: key });
    return getSignedUrl(this.s3, command, { expiresIn });
  }

  private async put(key: string, body: Buffer, contentType: string): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }));
  }

  private async putFile(key: string, file: string): Promise<void> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: fs.createReadStream(file),
          ContentLength: (await fs.promises.stat(file)).size,
          ContentType: 'application/gzip',
        }),
      );
    } finally {
      await fs.promises.rm(path.dirname(file), { recursive: true, force: true });
    }
  }

  /** The object's bytes from `offset` on; undefined when it does not exist (yet). */
  private async getFrom(key: string, offset: number): Promise<Buffer | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if (isMissing(err) || isBeyondEnd(err)) return undefined;
      throw err;
    }
  }

  private async getText(key: string): Promise<string | undefined> {
    return (await this.getFrom(key, 0))?.toString('utf8');
  }
}

/** The object of segment `k` of a stream, in the order's folder. */
export function segmentKey(stream: 'stdout' | 'stderr', k: number): string {
  return `${stream}.${k}`;
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** A range starting at the object's end: nothing new yet. */
function isBeyondEnd(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416;
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Waits `ms`, or less when `signal` aborts first. */
export function sleepUnless(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
