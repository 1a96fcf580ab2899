/**
 * The subscribers of the event-delivery benchmark, in their own process (so parsing a thousand
 * streams is not on the api's event loop): `count` clients of the event feed of one project, half
 * Server-Sent Events (GET /v1/events) and half WebSocket (/v1/events/ws). Each notes the wall
 * clock at which every event arrives.
 *
 * Protocol (IPC with the parent): start with env EVENT_CLIENTS = JSON {apiUrl, key, projectId,
 * count}; sends {ready: n} once every client is subscribed; on {report: true} sends
 * {report: [{kind, events: [[seq, receivedAtMs], ...]}, ...]} (what arrived since the last
 * report); exits on {stop: true}.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

interface Setup {
  apiUrl: string;
  key: string;
  projectId: string;
  count: number;
}

const setup = JSON.parse(process.env.EVENT_CLIENTS ?? '{}') as Setup;
const now = () => performance.timeOrigin + performance.now();
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

interface Client {
  kind: 'sse' | 'ws';
  events: Array<[number, number]>;
  close(): void;
}

/** An SSE subscriber; resolves once the stream's first comment (`: from <seq>`) arrived. */
function sse(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client: Client = { kind: 'sse', events: [], close: () => req.destroy() };
    const url = `${setup.apiUrl}/v1/events?projectId=${encodeURIComponent(setup.projectId)}`;
    const req = http.get(url, { agent, headers: { accept: 'text/event-stream', authorization: `Bearer ${setup.key}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /v1/events: ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      let subscribed = false;
      res.on('data', (chunk: string) => {
        const at = now();
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!subscribed && frame.startsWith(': from ')) {
            subscribed = true;
            resolve(client);
          }
          const id = /^id: (\d+)$/m.exec(frame);
          if (id) client.events.push([Number(id[1]), at]);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

/** A WebSocket subscriber; subscribed once open (the server places its cursor before the 101). */
function ws(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const url = `${setup.apiUrl.replace(/^http/, 'ws')}/v1/events/ws?projectId=${encodeURIComponent(setup.projectId)}`;
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${setup.key}` } });
    const client: Client = { kind: 'ws', events: [], close: () => socket.terminate() };
    socket.on('open', () => resolve(client));
    socket.on('error', reject);
    socket.on('message', (data) => {
      const at = now();
      client.events.push([(JSON.parse(String(data)) as { seq: number }).seq, at]);
    });
  });
}

async function main() {
  const clients: Client[] = [];
  // Connected in small batches: a thousand simultaneous key look-ups is a connect storm, not the subject.
  for (let i = 0; i < setup.count; i += 50) {
    const batch = Array.from({ length: Math.min(50, setup.count - i) }, (_, k) => ((i + k) % 2 === 0 ? sse() : ws()));
    clients.push(...(await Promise.all(batch)));
  }
  process.send!({ ready: clients.length });
  process.on('message', (m: { report?: boolean; stop?: boolean }) => {
    if (m.stop) {
      for (const c of clients) c.close();
      process.exit(0);
    }
    if (!m.report) return;
    // What arrived since the last report; the clients stay subscribed for the next phase.
    process.send!({ report: clients.map((c) => ({ kind: c.kind, events: c.events.splice(0) })) });
  });
}

main().catch((err: unknown) => {
  process.send!({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
