/**
 * A local HTTP server that replays Kubernetes API server responses (JSON in the shapes a 1.31
 * API server returns, from test/fixtures/kubernetes/) in the order a test scripts them, and
 * records every request. It stands in for a cluster, which cannot run here; it does no
 * Kubernetes logic of its own. The pod exec subresource is served over a websocket speaking
 * the v4.channel.k8s.io framing (first byte: 1 stdout, 2 stderr, 3 final status).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface Replay {
  status: number;
  body: unknown;
}

export interface ExecReplay {
  stdout?: string | Buffer;
  stderr?: string | Buffer;
  /** The final status message (channel 3); absent = the stream just closes. */
  status?: unknown;
  /** Keep the stream open this long before the output (ms). */
  delayMs?: number;
  /**
   * Answer only after reading N bytes of stdin (channel 0), N taken from the command's
   * `head -c N`, as the shell in the pod would; the bytes land in `stdinReceived`.
   */
  readStdin?: boolean;
}

export class KubeReplayServer {
  readonly requests: RecordedRequest[] = [];
  readonly execRequests: RecordedRequest[] = [];
  readonly stdinReceived: Buffer[] = [];
  /** Every request and exec in arrival order, as `METHOD /path` (exec: `EXEC /path`). */
  readonly log: string[] = [];
  private readonly scripts = new Map<string, Replay[]>();
  private readonly execScripts: ExecReplay[] = [];
  private server?: http.Server;
  private wss?: WebSocketServer;

  get url(): string {
    const address = this.server?.address() as AddressInfo | null;
    if (!address) throw new Error('replay server not started');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Queues responses for `METHOD /path`; the last one repeats once the queue is down to it. */
  on(method: string, path: string, ...responses: Replay[]): this {
    const key = `${method.toUpperCase()} ${path}`;
    this.scripts.set(key, [...(this.scripts.get(key) ?? []), ...responses]);
    return this;
  }

  onExec(...replays: ExecReplay[]): this {
    this.execScripts.push(...replays);
    return this;
  }

  reset(): void {
    this.scripts.clear();
    this.execScripts.length = 0;
    this.requests.length = 0;
    this.execRequests.length = 0;
    this.stdinReceived.length = 0;
    this.log.length = 0;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (raw += chunk));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://replay');
        let body: unknown;
        try {
          body = raw ? JSON.parse(raw) : undefined;
        } catch {
          body = raw;
        }
        this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body });
        this.log.push(`${req.method ?? 'GET'} ${url.pathname}`);
        const key = `${req.method ?? 'GET'} ${url.pathname}`;
        const queue = this.scripts.get(key);
        const reply: Replay =
          queue && queue.length > 0
            ? queue.length > 1
              ? queue.shift()!
              : queue[0]!
            : {
                status: 500,
                body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `no replay scripted for ${key}`, code: 500 },
              };
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply.body));
      });
    });
    this.wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (protocols) => (protocols.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
    });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://replay');
      this.execRequests.push({ method: 'GET', path: url.pathname, query: url.searchParams, body: undefined });
      this.log.push(`EXEC ${url.pathname}`);
      const replay = this.execScripts.shift();
      if (!replay || !url.pathname.endsWith('/exec')) {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      this.wss!.handleUpgrade(req, socket, head, (ws) => {
        const frame = (channel: number, data: string | Buffer): Buffer => Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);
        const answer = (): void => {
          setTimeout(() => {
            if (replay.stdout) ws.send(frame(1, replay.stdout));
            if (replay.stderr) ws.send(frame(2, replay.stderr));
            if (replay.status !== undefined) ws.send(frame(3, JSON.stringify(replay.status)));
            ws.close(1000);
          }, replay.delayMs ?? 0);
        };
        if (!replay.readStdin) {
          answer();
          return;
        }
        const want = Number(/head -c (\d+)/.exec(url.searchParams.getAll('command').join(' '))?.[1] ?? Number.NaN);
        const chunks: Buffer[] = [];
        let got = 0;
        ws.on('message', (data: Buffer) => {
          if (data[0] !== 0 || got >= want) return;
          chunks.push(data.subarray(1));
          got += data.length - 1;
          if (got >= want) {
            this.stdinReceived.push(Buffer.concat(chunks));
            answer();
          }
        });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const client of this.wss?.clients ?? []) client.terminate();
    this.wss?.close();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
