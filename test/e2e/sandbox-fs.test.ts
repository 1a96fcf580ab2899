import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkpointFileRoute } from '../../activities/machines/checkpoint-files.js';
import { getProject } from '../../store/projects.js';
import { ChunkStore, getManifest, readSnapshotFile } from '../../store/snapshots.js';
import { projectWithBudget, startTestPlatform, waitFor, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * The sandbox holds, file system side, through the real platform (Temporal, Postgres, git,
 * bubblewrap): a machine that keeps swapping directories and files for links to host files while
 * checkpoints are taken never gets a host file's bytes into a checkpoint, a snapshot or a file
 * response; FIFOs, sockets and a 3 GiB sparse file neither hang the machine nor enter its
 * checkpoints, and the machine still ends, settles and leaves no workspace behind.
 */
describe('sandbox file system: checkpoints of a live workspace (real Temporal, Postgres, git, bubblewrap)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let hostDir: string;
  const marker = `HOSTSECRET-${crypto.randomBytes(8).toString('hex')}`;
  const FILES = 30;

  before(async () => {
    p = await startTestPlatform({ label: 'sandbox-fs' });
    // Host files the machine names by absolute path: outside its sandbox they hold the marker.
    hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-host-secret-'));
    for (let i = 1; i <= FILES; i++) fs.writeFileSync(path.join(hostDir, `f${i}`), `${marker} f${i}\n`);
    fs.writeFileSync(path.join(hostDir, 'passwd'), `${marker} passwd\n`);
  });
  after(async () => {
    await p?.stop();
    if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
  });

  const start = async (projectId: string, command: string) => {
    const res = await p.api('POST', '/v1/machines', { projectId, type: 'shell', command });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const workspaceOf = (machineId: string) => path.join(p.config.workspacesDir, machineId);
  /** Asks for `n` checkpoints of the running machine, one after the other. */
  const checkpointWhileRunning = async (machineId: string, n: number) => {
    for (let i = 0; i < n; i++) {
      const before = (await p.api('GET', `/v1/machines/${machineId}`)).body.checkpoints.length;
      const res = await p.api('POST', `/v1/machines/${machineId}/checkpoint`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await waitFor(async () => (await p.api('GET', `/v1/machines/${machineId}`)).body.checkpoints.length > before, `checkpoint ${i + 1} of ${machineId}`);
    }
  };
  const hostContent = (bytes: Buffer) => {
    const text = bytes.toString('latin1');
    return text.includes(marker) || text.includes('root:x:0:0');
  };
  /** Settled reservation, one cost event, no workspace and no frozen copy left. */
  const assertCleanEnd = async (machineId: string) => {
    const reservations = await p.db('reservations').where({ id: `machine:${machineId}` });
    assert.ok(reservations.length > 0);
    assert.ok(
      reservations.every((r) => r.status === 'settled'),
      JSON.stringify(reservations),
    );
    assert.equal((await p.db('cost_events').where({ idempotency_key: `machine:${machineId}:compute` })).length, 1);
    assert.equal(fs.existsSync(workspaceOf(machineId)), false, 'the workspace is removed');
    assert.deepEqual(
      fs.readdirSync(p.config.workspacesDir).filter((n) => n.startsWith('.autovibe-frozen-')),
      [],
      'no frozen copy is left',
    );
  };

  it('never lets a host file into a checkpoint, a snapshot or a file response while the machine swaps directories and links', async () => {
    const projectId = await projectWithBudget(p);
    // d: a directory of benign files ⇄ a link to the host directory with the same names;
    // f: a benign file ⇄ a link to a host file; e: a directory with a benign passwd ⇄ a link to /etc.
    // Syscalls in a loop (perl, no process per step), so each state holds about half the time and
    // changes between any two reads of a checkpoint; the benign files' ctimes move now and then, so
    // no cache of an earlier read (git's index, the snapshot's memory) spares reading them again.
    const swapper = `
my ($h, $n) = (shift, 0);
while (!-e "stop") {
  if ($n % 20 == 0) { utime undef, undef, map { "d/f$_" } 1..${FILES}; utime undef, undef, "f", "e/passwd"; }
  rename "d", "d.away"; symlink $h, "d"; rename "f", "f.away"; symlink "$h/f1", "f"; rename "e", "e.away"; symlink "/etc", "e";
  select(undef, undef, undef, 0.0005);
  unlink "d"; rename "d.away", "d"; unlink "f"; rename "f.away", "f"; unlink "e"; rename "e.away", "e";
  select(undef, undef, undef, 0.0005);
  $n++;
}
open(my $o, ">", "swaps.txt") or die; print $o "$n\n";
`;
    const command = [
      'mkdir d e',
      `for i in $(seq 1 ${FILES}); do echo benign > d/f$i; done`,
      'echo benign > e/passwd',
      'echo benign > f',
      `cat > swap.pl <<'EOF'${swapper}EOF`,
      'touch ready',
      `perl swap.pl ${hostDir}`,
    ].join('\n');
    const machineId = await start(projectId, command);
    await waitFor(async () => fs.existsSync(path.join(workspaceOf(machineId), 'ready')), 'the machine to start swapping');
    await checkpointWhileRunning(machineId, 8);
    fs.writeFileSync(path.join(workspaceOf(machineId), 'stop'), '');
    const m = await waitForMachine(p, machineId);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.ok(m.checkpoints.length >= 9, JSON.stringify(m.checkpoints));
    const final = m.checkpoints.at(-1) as string;
    const swaps = Number((await p.api('GET', `/v1/checkpoints/${final}/files/swaps.txt`)).body);
    assert.ok(swaps > 0, `the machine swapped ${swaps} times`);

    // Every file of every checkpoint, through the api, the in-sandbox file server and the snapshot.
    const serve = checkpointFileRoute(p.db, { machineId, projectId });
    let served = 0;
    for (const id of m.checkpoints as string[]) {
      const cp = (await p.api('GET', `/v1/checkpoints/${id}`)).body;
      for (const f of cp.files as Array<{ path: string }>) {
        const url = `/v1/checkpoints/${id}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`;
        const res = await fetch(`${p.apiUrl}${url}`, { headers: { authorization: `Bearer ${p.adminKey}` } });
        assert.equal(res.status, 200, url);
        assert.ok(!hostContent(Buffer.from(await res.arrayBuffer())), `${url} served a host file`);
        const local = await serve('GET', `/autovibe${url}`);
        assert.equal(local?.status, 200);
        assert.ok(!hostContent(Buffer.from(local.body)), `the in-sandbox file server served a host file at ${url}`);
        served += 1;
      }
      const manifest = await waitFor(() => getManifest(p.db, id), `the snapshot of ${id}`);
      for (const e of manifest) {
        if (e.type !== 'file') continue;
        const bytes = await readSnapshotFile(p.db, p.config.snapshotRegions, id, e.path);
        assert.ok(bytes && !hostContent(bytes), `snapshot of ${id} holds a host file at ${e.path}`);
      }
    }
    // Mid-swap checkpoints hold d as a link (or d.away); the final one, taken after the loop, all of d.
    const finalFiles = ((await p.api('GET', `/v1/checkpoints/${final}`)).body.files as Array<{ path: string }>).map((f) => f.path);
    for (let i = 1; i <= FILES; i++) assert.ok(finalFiles.includes(`d/f${i}`), JSON.stringify(finalFiles));
    assert.ok(served >= m.checkpoints.length * 2 + FILES, `served ${served} files`);

    // Nothing anywhere: not one object of the project's repository, not one chunk in any region.
    const repo = (await getProject(p.db, projectId))!.repoPath;
    const objects = execFileSync('git', ['--git-dir', repo, 'cat-file', '--batch-all-objects', '--batch'], { maxBuffer: 256 * 1024 * 1024 });
    assert.ok(!hostContent(objects), 'a git object holds a host file');
    let chunks = 0;
    for (const region of Object.values(p.config.snapshotRegions)) {
      const dir = path.join(region, 'chunks');
      if (!fs.existsSync(dir)) continue;
      const store = new ChunkStore(region);
      for (const sub of fs.readdirSync(dir)) {
        // A replication still running may have a chunk half written under its temporary name.
        for (const name of fs.readdirSync(path.join(dir, sub)).filter((n) => /^[0-9a-f]{64}\.zst$/.test(n))) {
          chunks += 1;
          assert.ok(!hostContent(await store.read(name.slice(0, 64))), `chunk ${name} holds a host file`);
        }
      }
    }
    assert.ok(chunks > 0);
    await assertCleanEnd(machineId);
  });

  it('leaves FIFOs, sockets and a 3 GiB sparse file out of its checkpoints with the reasons recorded, and the machine ends, settles and is cleaned up', async () => {
    const projectId = await projectWithBudget(p);
    const command = [
      'mkfifo pipe',
      'truncate -s 3G huge.bin',
      `perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => IO::Socket::UNIX::SOCK_STREAM(), Local => "sock", Listen => 1) or die "socket: $!"'`,
      '(mknod dev c 1 3 2>/dev/null || true)',
      'echo ok > ok.txt',
      'touch ready',
      // A file that keeps turning into a FIFO nobody writes to while checkpoints read it.
      'while [ ! -e stop ]; do rm -f swap; mkfifo swap; rm -f swap; echo x > swap; done',
    ].join(' && ');
    const machineId = await start(projectId, command);
    await waitFor(async () => fs.existsSync(path.join(workspaceOf(machineId), 'ready')), 'the machine to make its odd files');
    await checkpointWhileRunning(machineId, 3);
    fs.writeFileSync(path.join(workspaceOf(machineId), 'stop'), '');
    const m = await waitForMachine(p, machineId);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    assert.equal(m.checkpoints.length, 4, JSON.stringify(m.checkpoints));

    for (const id of m.checkpoints as string[]) {
      const files = ((await p.api('GET', `/v1/checkpoints/${id}`)).body.files as Array<{ path: string }>).map((f) => f.path);
      assert.ok(files.includes('ok.txt'), JSON.stringify(files));
      for (const odd of ['pipe', 'huge.bin', 'sock', 'dev']) assert.ok(!files.includes(odd), `${odd} in ${id}: ${JSON.stringify(files)}`);
      const manifest = (await getManifest(p.db, id))!.map((e) => e.path);
      for (const odd of ['pipe', 'huge.bin', 'sock', 'dev']) assert.ok(!manifest.includes(odd), `${odd} in the snapshot of ${id}`);
      assert.equal((await p.api('GET', `/v1/checkpoints/${id}/files/huge.bin`)).status, 404);

      const audit = (await p.api('GET', `/v1/audit?subjectId=${id}`)).body.items.find((a: any) => a.action === 'checkpoint.entries_skipped');
      assert.ok(audit, `checkpoint ${id} records what it left out`);
      const reasons = Object.fromEntries((audit.details.skipped as Array<{ path: string; reason: string }>).map((s) => [s.path, s.reason]));
      assert.match(reasons['pipe'] ?? '', /FIFO/);
      assert.match(reasons['sock'] ?? '', /socket/);
      assert.match(reasons['huge.bin'] ?? '', /larger than \d+ bytes \(3221225472\)/);
    }
    await assertCleanEnd(machineId);
  });
});
