import { Address, type Transaction } from '@ton/core';
import { TonClient } from '@ton/ton';

/**
 * TON invoices: the payer sends at least the invoiced nanotons to the deployment's receiving
 * address with the invoice's memo (unique per invoice) as the text comment, TON's usual way for
 * one address to serve many invoices. A transfer found in the receiver's transactions is final
 * (TON blocks finalise in seconds).
 */
export interface TonReader {
  /** Up to `limit` transactions of `address`, newest first; only those older than `before` when given. */
  getTransactions(address: Address, limit: number, before?: { lt: bigint; hash: Buffer }): Promise<Transaction[]>;
}

/** The production reader: a toncenter-compatible HTTP API (TON_API_URL, TON_API_KEY). */
export function tonCenterReader(apiUrl: string, apiKey: string | undefined): TonReader {
  const client = new TonClient({ endpoint: apiUrl, ...(apiKey ? { apiKey } : {}) });
  return {
    // Without `inclusive`, TonClient drops the transaction named by lt and hash: the page starts below it.
    getTransactions: (address, limit, before) =>
      client.getTransactions(address, { limit, archival: true, ...(before ? { lt: before.lt.toString(), hash: before.hash.toString('base64') } : {}) }),
  };
}

const PAGE = 100;
/** Most pages one check reads (later checks read again from the newest). */
const MAX_PAGES = 50;
/** Chain clocks and ours may differ: transactions this much older than the invoice are still read. */
const CLOCK_MARGIN_S = 600;

/** The text comment of an internal message body (op 0 followed by a snake string), if it has one. */
function commentOf(tx: Transaction): string | null {
  const body = tx.inMessage?.body;
  if (!body) return null;
  const s = body.beginParse();
  if (s.remainingBits < 32 || s.loadUint(32) !== 0) return null;
  try {
    return s.loadStringTail();
  } catch {
    return null;
  }
}

/**
 * The newest transfer that pays the invoice and that no other invoice already took. The shared
 * address may receive many transfers between two checks, so the receiver's history is paged back
 * to the invoice's opening (`openedAt`, less a margin for clock skew), at most MAX_PAGES pages.
 */
export async function findTonPayment(
  reader: TonReader,
  inv: { address: string; amountNano: bigint; comment: string; openedAt: Date },
  isUsed: (hashes: string[]) => Promise<Set<string>> = async () => new Set(),
): Promise<{ txHash: string; lt: string; value: bigint } | null> {
  const address = Address.parse(inv.address);
  const notBefore = Math.floor(inv.openedAt.getTime() / 1000) - CLOCK_MARGIN_S;
  const found: Array<{ txHash: string; lt: string; value: bigint }> = [];
  let before: { lt: bigint; hash: Buffer } | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const txs = await reader.getTransactions(address, PAGE, before);
    for (const tx of txs) {
      const msg = tx.inMessage;
      if (!msg || msg.info.type !== 'internal') continue;
      if (!msg.info.dest.equals(address) || msg.info.bounced) continue;
      if (tx.description.type === 'generic' && tx.description.aborted) continue;
      if (msg.info.value.coins < inv.amountNano || commentOf(tx) !== inv.comment) continue;
      found.push({ txHash: tx.hash().toString('hex'), lt: tx.lt.toString(), value: msg.info.value.coins });
    }
    const last = txs.at(-1);
    if (txs.length < PAGE || !last || last.now < notBefore) break;
    before = { lt: last.lt, hash: last.hash() };
  }
  if (!found.length) return null;
  const used = await isUsed(found.map((f) => f.txHash));
  return found.find((f) => !used.has(f.txHash)) ?? null;
}
