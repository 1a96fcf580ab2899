import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the rate sources' public endpoints, serving their real response formats:
 * the ECB's eurofxref-daily.xml and Coinbase's /v2/exchange-rates JSON. Tests change the rates,
 * make a source fail, and count requests.
 */
export interface FxSources {
  ecbUrl: string;
  cryptoUrl: string;
  /** 1 EUR = x, as the ECB publishes. */
  ecb: Record<string, string>;
  ecbDay: string;
  /** 1 USD = x, as Coinbase publishes. */
  coinbase: Record<string, string>;
  failing: { ecb: boolean; crypto: boolean };
  requests: { ecb: number; crypto: number };
  stop(): Promise<void>;
}

export function ecbXml(day: string, rates: Record<string, string>): string {
  const rows = Object.entries(rates)
    .map(([c, r]) => `\t\t\t<Cube currency='${c}' rate='${r}'/>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender>
\t\t<gesmes:name>European Central Bank</gesmes:name>
\t</gesmes:Sender>
\t<Cube>
\t\t<Cube time='${day}'>
${rows}
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>`;
}

export async function startFxSources(): Promise<FxSources> {
  const state = {
    // Real-looking sets: the sources publish many currencies the platform does not use.
    ecb: { USD: '1.0856', JPY: '162.51', BGN: '1.9558', CZK: '25.301', GBP: '0.83600', CHF: '0.9412', CAD: '1.4773', AUD: '1.6235' } as Record<string, string>,
    ecbDay: '2026-11-26',
    coinbase: { AED: '3.6725', BTC: '0.0000105897', CAD: '1.3608', ETH: '0.000289412', EUR: '0.9211', SOL: '0.0041', TON: '0.18340571', USDC: '1' } as Record<
      string,
      string
    >,
    failing: { ecb: false, crypto: false },
    requests: { ecb: 0, crypto: 0 },
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/stats/eurofxref/eurofxref-daily.xml') {
      state.requests.ecb += 1;
      if (state.failing.ecb) return void res.writeHead(503).end('Service Unavailable');
      res.writeHead(200, { 'content-type': 'text/xml' }).end(ecbXml(state.ecbDay, state.ecb));
      return;
    }
    if (url.pathname === '/v2/exchange-rates') {
      state.requests.crypto += 1;
      if (state.failing.crypto) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"id":"internal_server_error"}]}');
      const currency = url.searchParams.get('currency') ?? 'USD';
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ data: { currency, rates: state.coinbase } }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return Object.assign(state, {
    ecbUrl: `${base}/stats/eurofxref/eurofxref-daily.xml`,
    cryptoUrl: `${base}/v2/exchange-rates?currency=USD`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
