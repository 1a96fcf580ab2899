import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local peer that speaks the Slack Web API's `chat.postMessage`
 * (https://api.slack.com/methods/chat.postMessage) — a stand-in for slack.com, which tests cannot
 * reach. Like Slack, it answers HTTP 200 with `{"ok": false, "error": …}` for a bad token or an
 * unknown channel, and with the posted message (the documentation example's shape) on success.
 */
export interface SlackPost {
  headers: http.IncomingHttpHeaders;
  body: Record<string, any>;
  answer: Record<string, unknown>;
}

export async function startSlackPeer(opts: { token: string; channels: string[] }) {
  const posts: SlackPost[] = [];
  let seq = 0;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const send = (status: number, answer: Record<string, unknown>) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(answer));
      };
      if (req.method !== 'POST' || req.url !== '/api/chat.postMessage') return send(404, { ok: false, error: 'unknown_method' });
      let body: Record<string, any>;
      try {
        body = JSON.parse(raw) as Record<string, any>;
      } catch {
        return send(200, { ok: false, error: 'invalid_json' });
      }
      const auth = req.headers.authorization;
      let answer: Record<string, unknown>;
      if (!auth) answer = { ok: false, error: 'not_authed' };
      else if (auth !== `Bearer ${opts.token}`) answer = { ok: false, error: 'invalid_auth' };
      else if (!opts.channels.includes(String(body.channel))) answer = { ok: false, error: 'channel_not_found' };
      else if (typeof body.text !== 'string' && !Array.isArray(body.blocks)) answer = { ok: false, error: 'no_text' };
      else {
        const ts = `1503435956.${String(++seq).padStart(6, '0')}`;
        answer = {
          ok: true,
          channel: 'C123ABC456',
          ts,
          message: { text: body.text, username: 'autovibe', bot_id: 'B123ABC456', type: 'message', subtype: 'bot_message', ts, blocks: body.blocks },
        };
      }
      posts.push({ headers: req.headers, body, answer });
      send(200, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  return { url, posts, close: () => new Promise((r) => server.close(r)) };
}
