import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

/** A local webhook receiver: `/ok/*` answers 204, `/flaky/*` 503 for the first two tries of each webhook-id, `/down/*` always 500, `/slack/*` 200. */
export async function startWebhookReceiver() {
  const received: Received[] = [];
  const tries = new Map<string, number>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const id = String(req.headers['webhook-id'] ?? body);
      const n = (tries.get(`${path}|${id}`) ?? 0) + 1;
      tries.set(`${path}|${id}`, n);
      const status = path.startsWith('/down') ? 500 : path.startsWith('/flaky') && n <= 2 ? 503 : path.startsWith('/slack') ? 200 : 204;
      received.push({ path, headers: req.headers, body, status });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status >= 300 ? 'not now' : status === 200 ? 'ok' : '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, received, at: (path: string) => received.filter((r) => r.path === path), close: () => new Promise((r) => server.close(r)) };
}
