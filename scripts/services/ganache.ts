/**
 * A local Ethereum chain (ganache, npm devDependency) on loopback: deterministic unlocked
 * accounts, chain id 1337, a block mined per transaction. `mine(n)` adds empty blocks, so a test
 * can give a transfer its confirmations.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { describeExit, sleep, spawnServiceProcess } from './process.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Ganache {
  url: string;
  accounts: `0x${string}`[];
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  mine(blocks: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startGanache(): Promise<Ganache> {
  const port = await freePort();
  const bin = path.join(REPO_ROOT, 'node_modules', 'ganache', 'dist', 'node', 'cli.js');
  const proc = spawnServiceProcess({
    name: 'ganache',
    command: process.execPath,
    args: [bin, '--server.host', '127.0.0.1', '--server.port', String(port), '--wallet.deterministic', '--chain.chainId', '1337', '--logging.quiet'],
    killAfterMs: 3000,
  });
  const url = `http://127.0.0.1:${port}`;
  let id = 0;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
    });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`ganache ${method}: ${body.error.message}`);
    return body.result as T;
  };
  const until = Date.now() + 60_000;
  let accounts: `0x${string}`[] | undefined;
  while (!accounts) {
    if (proc.hasExited()) throw new Error(`ganache ${describeExit(await proc.exited)}:\n${proc.recentOutput()}`);
    accounts = await rpc<`0x${string}`[]>('eth_accounts').catch(() => undefined);
    if (!accounts) {
      if (Date.now() > until) {
        await proc.stop();
        throw new Error(`ganache not ready on ${url}:\n${proc.recentOutput()}`);
      }
      await sleep(200);
    }
  }
  return {
    url,
    accounts,
    rpc,
    mine: async (blocks) => {
      for (let i = 0; i < blocks; i++) await rpc('evm_mine');
    },
    stop: () => proc.stop(),
  };
}
