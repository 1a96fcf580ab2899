/**
 * The metering proxy's socket is reachable only by the machine it serves: two agent machines'
 * proxies run side by side; from inside machine A's real bubblewrap sandbox (its agent mounts),
 * A's socket answers, B's socket (or any other) is nowhere to be found, and A cannot replace its
 * own. On the host, each socket is 0600 in a 0700 directory.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSandbox } from '../../activities/compute/local-sandbox.js';
import { agentDirs, agentMounts, SOCKET_DIR_TARGET } from '../../activities/machines/agent-mounts.js';
import { startMeteringProxy, type MeteringProxy, type Refusal } from '../../activities/machines/metering-proxy.js';
import { loadConfig } from '../../config/index.js';

/** Runs inside the sandbox: what it can see and reach, as one JSON line. */
const PROBE = String.raw`
const fs = require('fs'), http = require('http');
const [own, other] = process.argv.slice(1);
const out = { list: fs.readdirSync('/run/autovibe'), otherVisible: fs.existsSync(other), sockets: [] };
try { fs.writeFileSync('/run/autovibe/api.sock.new', 'x'); out.write = 'ok'; } catch (e) { out.write = e.code; }
try { fs.rmSync(own); out.remove = 'ok'; } catch (e) { out.remove = e.code; }
(function walk(dir) {
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
  for (const e of entries) {
    const p = (dir === '/' ? '' : dir) + '/' + e.name;
    if (['/proc', '/sys', '/dev', '/usr'].includes(p)) continue;
    if (e.isSocket()) out.sockets.push(p);
    else if (e.isDirectory()) walk(p);
  }
})('/');
http.get({ socketPath: own, path: '/v1/models' }, (res) => {
  let body = '';
  res.on('data', (c) => (body += c));
  res.on('end', () => { out.status = res.statusCode; out.body = body; console.log(JSON.stringify(out)); });
}).on('error', (e) => { out.status = e.code; console.log(JSON.stringify(out)); });
`;

describe("the metering proxy's socket: reachable only from the machine it serves (real bubblewrap)", function () {
  this.timeout(60_000);
  let home: string;
  const proxies: MeteringProxy[] = [];
  const refused: Record<string, Refusal[]> = { a: [], b: [] };

  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'metering-socket-'));
  });
  after(async () => {
    for (const p of proxies) await p.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("serves machine A inside A's sandbox; B's socket is absent there; both are private on the host", async () => {
    const toolsDir = path.join(home, 'tools');
    fs.mkdirSync(toolsDir);
    const config = loadConfig({ AUTOVIBE_HOME: home, AUTOVIBE_TOOLS_DIR: toolsDir });
    const mountsA = agentMounts(config, 'machine-a');
    agentMounts(config, 'machine-b');
    for (const id of ['a', 'b'] as const) {
      proxies.push(
        await startMeteringProxy({
          socketPath: path.join(agentDirs(config, `machine-${id}`).runDir, 'api.sock'),
          upstream: 'http://127.0.0.1:9',
          dialect: 'anthropic',
          headers: {},
          admit: () => ({ ok: true }),
          completed: async () => undefined,
          refused: async (r) => void refused[id]!.push(r),
        }),
      );
    }
    const sockA = path.join(agentDirs(config, 'machine-a').runDir, 'api.sock');
    const sockB = path.join(agentDirs(config, 'machine-b').runDir, 'api.sock');
    for (const sock of [sockA, sockB]) {
      assert.equal(fs.statSync(sock).mode & 0o777, 0o600, `${sock} is 0600`);
      assert.equal(fs.statSync(path.dirname(sock)).mode & 0o777, 0o700, `${path.dirname(sock)} is 0700`);
    }
    assert.equal(fs.statSync(config.machinesDir).mode & 0o777, 0o700);

    const workspace = path.join(home, 'ws-a');
    fs.mkdirSync(workspace);
    const child = startSandbox({
      machineId: 'machine-a',
      workspace,
      command: ['/usr/bin/node', '-e', PROBE, `${SOCKET_DIR_TARGET}/api.sock`, sockB],
      network: false,
      mounts: mountsA,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, stderr);
    const seen = JSON.parse(stdout.trim());
    assert.deepEqual(seen.list, ['api.sock']);
    assert.equal(seen.otherVisible, false, "machine B's socket path does not exist in A's sandbox");
    assert.deepEqual(seen.sockets, ['/run/autovibe/api.sock'], 'the only socket in the sandbox is its own');
    assert.equal(seen.write, 'EROFS');
    assert.equal(seen.remove, 'EROFS');
    // Reached A's proxy (which refused the non-model endpoint), not B's.
    assert.equal(seen.status, 403);
    assert.match(seen.body, /GET \/v1\/models is not a model endpoint/);
    assert.deepEqual(
      refused.a!.map((r) => [r.method, r.path, r.code]),
      [['GET', '/v1/models', 'endpoint_not_allowed']],
    );
    assert.deepEqual(refused.b, []);
  });
});
