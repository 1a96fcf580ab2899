import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ConfigError, loadConfig } from '../../config/index.js';
import { describeTemporalConnection, temporalConnectionOptions } from '../../config/temporal.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/temporal-tls');
const fixture = (name: string) => path.join(FIXTURES, name);
const read = (name: string) => fs.readFileSync(fixture(name));
const config = (env: Record<string, string>) => loadConfig({ TEMPORAL_ADDRESS: 'temporal.example:7233', ...env });

describe('Temporal connection options (config/temporal.ts)', function () {
  it('connects plainly when nothing about TLS is configured', function () {
    assert.deepEqual(temporalConnectionOptions(config({})), { address: 'temporal.example:7233' });
  });

  it('an API key turns TLS on with the system roots (Temporal Cloud)', function () {
    const options = temporalConnectionOptions(config({ AUTOVIBE_TEMPORAL_API_KEY: 'tc-key-123' }));
    assert.deepEqual(options, { address: 'temporal.example:7233', tls: {}, apiKey: 'tc-key-123' });
  });

  it('mTLS from files: client pair, private CA and server name override', function () {
    const options = temporalConnectionOptions(
      config({
        AUTOVIBE_TEMPORAL_TLS_CERT: fixture('client.pem'),
        AUTOVIBE_TEMPORAL_TLS_KEY: fixture('client.key'),
        AUTOVIBE_TEMPORAL_TLS_CA: fixture('ca.pem'),
        AUTOVIBE_TEMPORAL_SERVER_NAME: 'temporal.test',
      }),
    );
    assert.deepEqual(options, {
      address: 'temporal.example:7233',
      tls: {
        serverNameOverride: 'temporal.test',
        serverRootCACertificate: read('ca.pem'),
        clientCertPair: { crt: read('client.pem'), key: read('client.key') },
      },
    });
  });

  it('takes the PEM text itself (a secret injected as an environment variable)', function () {
    const options = temporalConnectionOptions(
      config({ AUTOVIBE_TEMPORAL_TLS_CERT: read('client.pem').toString(), AUTOVIBE_TEMPORAL_TLS_KEY: read('client.key').toString() }),
    );
    assert.deepEqual(options.tls?.clientCertPair, { crt: read('client.pem'), key: read('client.key') });
  });

  it('TLS can be asked for without anything else, and turned off explicitly', function () {
    assert.deepEqual(temporalConnectionOptions(config({ AUTOVIBE_TEMPORAL_TLS: 'on' })).tls, {});
    assert.equal(temporalConnectionOptions(config({ AUTOVIBE_TEMPORAL_TLS: 'off' })).tls, undefined);
  });

  it('refuses a half configuration at start, naming what to set', function () {
    assert.throws(
      () => config({ AUTOVIBE_TEMPORAL_TLS_CERT: fixture('client.pem') }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /AUTOVIBE_TEMPORAL_TLS_KEY: is required when AUTOVIBE_TEMPORAL_TLS_CERT is set/);
        return true;
      },
    );
    assert.throws(
      () => config({ AUTOVIBE_TEMPORAL_TLS_KEY: fixture('client.key') }),
      /AUTOVIBE_TEMPORAL_TLS_CERT: is required when AUTOVIBE_TEMPORAL_TLS_KEY is set/,
    );
    assert.throws(
      () => config({ AUTOVIBE_TEMPORAL_TLS: 'off', AUTOVIBE_TEMPORAL_API_KEY: 'k' }),
      /AUTOVIBE_TEMPORAL_TLS: is off but AUTOVIBE_TEMPORAL_API_KEY is set/,
    );
    assert.throws(() => config({ AUTOVIBE_TEMPORAL_TLS: 'yes' }), /AUTOVIBE_TEMPORAL_TLS must be on or off/);
  });

  it('refuses an unreadable certificate file, naming the variable and the path', function () {
    const c = config({ AUTOVIBE_TEMPORAL_TLS_CA: '/nonexistent/ca.pem' });
    assert.throws(
      () => temporalConnectionOptions(c),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^AUTOVIBE_TEMPORAL_TLS_CA: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
        return true;
      },
    );
  });

  it('describes a connection for the logs without key material', function () {
    const options = temporalConnectionOptions(
      config({
        AUTOVIBE_TEMPORAL_TLS_CERT: fixture('client.pem'),
        AUTOVIBE_TEMPORAL_TLS_KEY: fixture('client.key'),
        AUTOVIBE_TEMPORAL_API_KEY: 'tc-key-secret',
      }),
    );
    const described = describeTemporalConnection(options);
    assert.deepEqual(described, { address: 'temporal.example:7233', tls: true, mtls: true, apiKey: true });
    assert.doesNotMatch(JSON.stringify(described), /tc-key-secret|PRIVATE KEY/);
  });
});

describe('Temporal over mTLS (a TLS-terminating proxy in front of the test server)', function () {
  let proxy: tls.Server;
  let address: string;
  const clients: string[] = [];

  before(async function () {
    const [host, port] = process.env.TEST_TEMPORAL_ADDRESS!.split(':');
    proxy = tls.createServer(
      { key: read('server.key'), cert: read('server.pem'), ca: read('ca.pem'), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
      (socket) => {
        clients.push(String(socket.getPeerCertificate().subject?.CN));
        const upstream = net.connect(Number(port), host!);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      },
    );
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  });

  after(async function () {
    await new Promise((resolve) => proxy.close(resolve));
  });

  const mtlsEnv = () => ({
    TEMPORAL_ADDRESS: address,
    AUTOVIBE_TEMPORAL_TLS_CERT: fixture('client.pem'),
    AUTOVIBE_TEMPORAL_TLS_KEY: fixture('client.key'),
    AUTOVIBE_TEMPORAL_TLS_CA: fixture('ca.pem'),
    AUTOVIBE_TEMPORAL_SERVER_NAME: 'temporal.test',
  });

  it('the client (api) connects with the client certificate, the private CA and the server name', async function () {
    clients.length = 0;
    const connection = await Connection.connect(temporalConnectionOptions(loadConfig(mtlsEnv())));
    try {
      const info = await connection.workflowService.getSystemInfo({});
      assert.ok(info.serverVersion, 'the Temporal server answered through TLS');
    } finally {
      await connection.close();
    }
    assert.ok(clients.includes('autovibe-worker'), `the proxy saw client certificates ${JSON.stringify(clients)}`);
  });

  it('the worker (NativeConnection) connects the same way', async function () {
    clients.length = 0;
    const connection = await NativeConnection.connect(temporalConnectionOptions(loadConfig(mtlsEnv())));
    await connection.close();
    assert.ok(clients.includes('autovibe-worker'), `the proxy saw client certificates ${JSON.stringify(clients)}`);
  });

  it('without the client certificate the server refuses the connection', async function () {
    const { AUTOVIBE_TEMPORAL_TLS_CERT: _c, AUTOVIBE_TEMPORAL_TLS_KEY: _k, ...tlsOnly } = mtlsEnv();
    await assert.rejects(Connection.connect({ ...temporalConnectionOptions(loadConfig(tlsOnly)), connectTimeout: 2_000 }));
  });
});
