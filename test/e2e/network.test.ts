import assert from 'node:assert/strict';
import http from 'node:http';
import { startPodman, type PodmanService } from '../../scripts/services/podman.js';
import { installAgentClis, toolsDir } from '../support/llm/agent-clis.js';
import { shellScript, startScriptedEndpoint, type ScriptedEndpoint } from '../support/llm/endpoint.js';
import { startNpmRegistryPeer, type NpmRegistryPeer } from '../support/npm-registry-peer.js';
import { projectWithBudget, startTestPlatform, waitForMachine, type TestPlatform } from '../support/platform.js';

/**
 * Machine network by policy, end to end: the real platform with real shell machines (bubblewrap on
 * `local`, podman on `container`) reaching a loopback npm registry peer through their egress proxy.
 * The registry's address is allowed by the deployment (AUTOVIBE_NETWORK_ALLOW_PRIVATE) and by the
 * project's allowlist; a second loopback server is on the allowlist but not allowed by the
 * deployment (host loopback), the metadata address is on the allowlist too, and a name off the
 * allowlist is refused before it is resolved.
 */
describe('network policy (egress proxy, real sandboxes)', function () {
  this.timeout(300_000);
  let p: TestPlatform;
  let registry: NpmRegistryPeer;
  let forbidden: http.Server;
  let forbiddenPort: number;
  let forbiddenHits = 0;
  let projectId: string;

  const file = async (checkpointId: string, name: string) => String((await p.api('GET', `/v1/checkpoints/${checkpointId}/files/${name}`)).body);
  const key = async (role: string, projectIds: string[]) => {
    const r = await p.api('POST', '/v1/keys', { name: `${role}-key`, role, projectIds });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.key as string;
  };

  /** The machine's shell command: each probe writes its outcome to a file of the checkpoint. */
  const probes = () =>
    [
      'env | grep -i _proxy | sort > proxy-env.txt',
      // Allowed: plain http (absolute URI) and a CONNECT tunnel (-p) to the registry.
      `curl -sS -o hello.txt http://${registry.host}:${registry.port}/hello; echo "exit=$?" > hello-exit.txt`,
      `curl -sS -p -o tunnel.txt http://${registry.host}:${registry.port}/hello; echo "exit=$?" > tunnel-exit.txt`,
      // On the allowlist, but host loopback without the deployment's allowance.
      `curl -sS -o /dev/null -w '%{http_code}' http://${registry.host}:${forbiddenPort}/secret > loopback-code.txt 2>/dev/null`,
      // The metadata service (on the allowlist too).
      `curl -sS -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/ > metadata-code.txt 2>/dev/null`,
      // Not on the allowlist at all, through CONNECT (https).
      `curl -sS -o /dev/null https://example.org/ 2> https-err.txt; echo "exit=$?" > https-exit.txt`,
      // A real package install from the loopback registry, through the proxy.
      `npm install --no-audit --no-fund --no-update-notifier --registry ${registry.url}/ ${registry.packageName} > npm.log 2>&1; echo "exit=$?" > npm-exit.txt`,
      `node -e 'console.log(require("${registry.packageName}"))' > required.txt 2>&1`,
    ].join('; ');

  before(async () => {
    registry = await startNpmRegistryPeer({ host: '127.0.0.2' });
    forbidden = http.createServer((_req, res) => {
      forbiddenHits += 1;
      res.end('secret');
    });
    await new Promise<void>((r) => forbidden.listen(0, '127.0.0.2', () => r()));
    forbiddenPort = (forbidden.address() as { port: number }).port;
    p = await startTestPlatform({ label: 'network', env: { AUTOVIBE_NETWORK_ALLOW_PRIVATE: `${registry.host}:${registry.port}` } });
    projectId = await projectWithBudget(p, '5.00');
  });
  after(async () => {
    await p?.stop();
    await registry?.stop();
    forbidden?.closeAllConnections();
    await new Promise((r) => forbidden?.close(r));
  });

  it('sets a project network policy (owners only), checks its hosts, and keeps requests within it', async () => {
    const none = await p.api('GET', `/v1/projects/${projectId}/network-policy`);
    assert.equal(none.status, 200, JSON.stringify(none.body));
    assert.equal(none.body.mode, 'none');
    assert.ok(none.body.registryHosts.includes('registry.npmjs.org'));

    const bad = await p.api('PUT', `/v1/projects/${projectId}/network-policy`, { mode: 'allowlist', hosts: ['bad host!'] });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /hosts: "bad host!" is not a host/);
    const empty = await p.api('PUT', `/v1/projects/${projectId}/network-policy`, { mode: 'allowlist', hosts: [] });
    assert.equal(empty.status, 422);
    assert.match(empty.body.error.message, /at least one host/);

    const operator = await key('operator', [projectId]);
    const byOperator = await p.api('PUT', `/v1/projects/${projectId}/network-policy`, { mode: 'registries' }, { key: operator });
    assert.equal(byOperator.status, 403, JSON.stringify(byOperator.body));

    const set = await p.api('PUT', `/v1/projects/${projectId}/network-policy`, {
      mode: 'allowlist',
      hosts: [`${registry.host}:${registry.port}`, `${registry.host}:${forbiddenPort}`, '169.254.169.254', 'Registry.NPMJS.org.'],
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.hosts, [`${registry.host}:${registry.port}`, `${registry.host}:${forbiddenPort}`, '169.254.169.254', 'registry.npmjs.org']);
    assert.match(set.body.updatedBy, /^user:/);
    const audit = (await p.api('GET', `/v1/audit?projectId=${projectId}`)).body.items.find((e: any) => e.action === 'project.network_policy_set');
    assert.ok(audit, 'the change is audited');

    // An operator may narrow the project's policy, not reach beyond it; an owner (here: admin) may.
    const shell = { projectId, type: 'shell', command: 'true', limits: { money: '0.10', minutes: 2 } };
    const wider = await p.api('POST', '/v1/machines', { ...shell, network: { mode: 'registries' } }, { key: operator });
    assert.equal(wider.status, 403, JSON.stringify(wider.body));
    assert.match(wider.body.error.message, /network: .*reach beyond the project's network policy/);
    const narrower = await p.api('POST', '/v1/machines', { ...shell, network: { mode: 'allowlist', hosts: ['registry.npmjs.org:443'] } }, { key: operator });
    assert.equal(narrower.status, 202, JSON.stringify(narrower.body));
    const m = await waitForMachine(p, narrower.body.id);
    assert.deepEqual(m.network, { mode: 'allowlist', hosts: ['registry.npmjs.org:443'], connections: 0, refused: 0, bytesUp: 0, bytesDown: 0 });

    // A provider that cannot enforce a policy is refused at request time, never run unenforced.
    const aws = await p.api('POST', '/v1/machines', { ...shell, provider: 'aws-ec2' });
    assert.equal(aws.status, 422, JSON.stringify(aws.body));
    assert.match(aws.body.error.message, /cannot enforce network policy "allowlist"/);
  });

  it('a local shell machine reaches the allowed registry (curl and npm install) and nothing else; every connection audited', async () => {
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      command: probes(),
      limits: { money: '0.25', minutes: 5 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id, 180_000);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    await assertProbes(m);
  });

  it('policy none: no proxy, no network at all', async () => {
    const before = registry.hits.get('/hello') ?? 0;
    const start = await p.api('POST', '/v1/machines', {
      projectId,
      type: 'shell',
      provider: 'local',
      network: { mode: 'none' },
      command: `env | grep -i _proxy > proxy-env.txt; curl -sS --max-time 5 http://${registry.host}:${registry.port}/hello > out.txt 2> err.txt; echo "exit=$?" > exit.txt`,
      limits: { money: '0.10', minutes: 2 },
    });
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const m = await waitForMachine(p, start.body.id);
    assert.equal(m.status, 'completed', JSON.stringify(m));
    const cp = m.checkpoints.at(-1);
    assert.equal(await file(cp, 'proxy-env.txt'), '');
    assert.notEqual(await file(cp, 'exit.txt'), 'exit=0\n');
    assert.match(await file(cp, 'err.txt'), /Couldn't connect|Connection refused|Failed to connect/);
    assert.equal(registry.hits.get('/hello') ?? 0, before, 'the registry was not reached');
    assert.deepEqual(m.network, { mode: 'none', hosts: [], connections: 0, refused: 0, bytesUp: 0, bytesDown: 0 });
    assert.equal(m.events.filter((e: any) => e.action.startsWith('network.')).length, 0);
  });

  /** What the probes of one machine must show: allowed ones worked, refused ones did not, all audited. */
  async function assertProbes(m: any) {
    const cp = m.checkpoints.at(-1);
    assert.match(await file(cp, 'proxy-env.txt'), /^HTTPS_PROXY=http:\/\/127\.0\.0\.1:3128$/m);
    assert.match(await file(cp, 'proxy-env.txt'), /^NO_PROXY=localhost,127\.0\.0\.1,::1$/m);
    assert.equal(await file(cp, 'hello-exit.txt'), 'exit=0\n');
    assert.equal(await file(cp, 'hello.txt'), 'hello from the registry\n');
    assert.equal(await file(cp, 'tunnel-exit.txt'), 'exit=0\n');
    assert.equal(await file(cp, 'tunnel.txt'), 'hello from the registry\n');
    assert.equal(await file(cp, 'loopback-code.txt'), '403');
    assert.equal(await file(cp, 'metadata-code.txt'), '403');
    assert.notEqual(await file(cp, 'https-exit.txt'), 'exit=0\n');
    assert.match(await file(cp, 'https-err.txt'), /403/);
    assert.equal(await file(cp, 'npm-exit.txt'), 'exit=0\n', await file(cp, 'npm.log'));
    assert.equal(await file(cp, 'required.txt'), `${registry.packageText}\n`);
    assert.equal(forbiddenHits, 0, 'the loopback server outside the allowance was never reached');

    const connections = m.events.filter((e: any) => e.action === 'network.connection');
    const refused = m.events.filter((e: any) => e.action === 'network.refused');
    const toRegistry = connections.filter((e: any) => e.details.host === registry.host && e.details.port === registry.port);
    assert.ok(
      toRegistry.some((e: any) => e.details.kind === 'http' && e.details.bytesDown > 0),
      JSON.stringify(connections),
    );
    assert.ok(
      toRegistry.some((e: any) => e.details.kind === 'connect' && e.details.bytesDown > 0 && e.details.bytesUp > 0),
      JSON.stringify(connections),
    );
    const tarball = toRegistry.find((e: any) => e.details.method === 'GET' && e.details.bytesDown > 200);
    assert.ok(tarball, 'npm fetched through the proxy');
    for (const e of toRegistry) {
      assert.equal(e.details.decision, 'allowed');
      assert.equal(e.details.address, registry.host);
      assert.equal(typeof e.details.durationMs, 'number');
    }
    const reasonFor = (host: string, port: number) => refused.find((e: any) => e.details.host === host && e.details.port === port)?.details.reason;
    assert.match(reasonFor(registry.host, forbiddenPort), /loopback, link-local or private address/);
    assert.match(reasonFor('169.254.169.254', 80), /cloud metadata address/);
    assert.match(reasonFor('example.org', 443), /not on this machine's allowlist/);
    assert.equal(m.network.mode, 'allowlist');
    assert.equal(m.network.connections, connections.length);
    assert.equal(m.network.refused, refused.length);
    assert.equal(
      m.network.bytesDown,
      connections.reduce((a: number, e: any) => a + e.details.bytesDown, 0),
    );
    assert.ok(m.network.bytesUp > 0);
  }

  describe('an agent machine (real Claude Code CLI against a scripted model endpoint)', () => {
    let llm: ScriptedEndpoint;
    let a: TestPlatform;
    before(async function () {
      this.timeout(1_800_000);
      await installAgentClis();
      llm = await startScriptedEndpoint();
      a = await startTestPlatform({
        label: 'network-agent',
        env: {
          AUTOVIBE_TOOLS_DIR: toolsDir(),
          ANTHROPIC_API_KEY: 'test-anthropic-key',
          ANTHROPIC_BASE_URL: llm.url,
          AUTOVIBE_NETWORK_ALLOW_PRIVATE: `${registry.host}:${registry.port}`,
        },
      });
    });
    after(async () => {
      await a?.stop();
      await llm?.stop();
    });

    it('installs a package from the registry through its egress proxy while its model calls still go to the metering proxy', async () => {
      const projectId = await projectWithBudget(a, '5.00');
      const set = await a.api('PUT', `/v1/projects/${projectId}/network-policy`, { mode: 'allowlist', hosts: [`${registry.host}:${registry.port}`] });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      const before = registry.hits.get(`/${registry.packageName}`) ?? 0;
      llm.setScript(
        shellScript('claude', {
          command: `npm install --no-audit --no-fund --no-update-notifier --registry ${registry.url}/ ${registry.packageName} > npm.log 2>&1; node -e 'console.log(require("${registry.packageName}"))' > required.txt`,
        }),
      );
      const start = await a.api('POST', '/v1/machines', { projectId, type: 'claude-code', prompt: 'install the package', limits: { money: '2.00' } });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const m = await waitForMachine(a, start.body.id, 240_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      const cp = m.checkpoints.at(-1);
      const read = async (name: string) => String((await a.api('GET', `/v1/checkpoints/${cp}/files/${name}`)).body);
      assert.equal(await read('required.txt'), `${registry.packageText}\n`, await read('npm.log'));
      assert.ok((registry.hits.get(`/${registry.packageName}`) ?? 0) > before, 'the registry served the package document');
      assert.ok(m.usage.apiCalls >= 2, 'the model calls went through the metering proxy');
      const connections = m.events.filter((e: any) => e.action === 'network.connection');
      assert.ok(
        connections.some((e: any) => e.details.host === registry.host && e.details.bytesDown > 200),
        JSON.stringify(m.events.map((e: any) => e.action)),
      );
      assert.equal(m.network.connections, connections.length);
    });
  });

  describe('on the container provider (real podman)', () => {
    let podman: PodmanService;
    let c: TestPlatform;
    let containerProject: string;
    before(async () => {
      podman = await startPodman();
      c = await startTestPlatform({
        label: 'network-container',
        env: {
          AUTOVIBE_CONTAINER_SOCKET: podman.socketPath,
          AUTOVIBE_CONTAINER_IMAGE: podman.image,
          AUTOVIBE_NETWORK_ALLOW_PRIVATE: `${registry.host}:${registry.port}`,
        },
      });
      containerProject = await projectWithBudget(c, '5.00');
      const set = await c.api('PUT', `/v1/projects/${containerProject}/network-policy`, {
        mode: 'allowlist',
        hosts: [`${registry.host}:${registry.port}`, `${registry.host}:${forbiddenPort}`, '169.254.169.254'],
      });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    });
    after(async () => {
      await c?.stop();
      await podman?.stop();
    });

    it('a container shell machine has no route out but reaches the allowed registry through the same proxy', async () => {
      const start = await c.api('POST', '/v1/machines', {
        projectId: containerProject,
        type: 'shell',
        provider: 'container',
        command: `ls /sys/class/net > net.txt; ${probes()}`,
        limits: { money: '0.25', minutes: 5 },
      });
      assert.equal(start.status, 202, JSON.stringify(start.body));
      const m = await waitForMachine(c, start.body.id, 180_000);
      assert.equal(m.status, 'completed', JSON.stringify(m));
      assert.equal(m.provider, 'container');
      const cp = m.checkpoints.at(-1);
      assert.equal(String((await c.api('GET', `/v1/checkpoints/${cp}/files/net.txt`)).body), 'lo\n', 'only loopback: no network route');
      const saved = p;
      p = c;
      try {
        await assertProbes(m);
      } finally {
        p = saved;
      }
    });
  });
});
