import { Address, type Transaction } from '@ton/core';
import { TonClient } from '@ton/ton';

/**
 * TON invoices: the payer sends at least the invoiced nanotons to the deployment's receiving
 * address with the invoice's memo (unique per invoice) as the text comment, TON's usual way for
 * one address to serve many invoices. A transfer found in the receiver's transactions is final
 * (TON blocks finalise in seconds).
 */
export interface TonReader {
  /** The newest transactions of `address`, newest first. */
  getTransactions(address: Address, limit: number): Promise<Transaction[]>;
}

/** The production reader: a toncenter-compatible HTTP API (TON_API_URL, TON_API_KEY). */
export function tonCenterReader(apiUrl: string, apiKey: string | undefined): TonReader {
  const client = new TonClient({ endpoint: apiUrl, ...(apiKey ? { apiKey } : {}) });
  return { getTransactions: (address, limit) => client.getTransactions(address, { limit, archival: true }) };
}

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

/** The first transfer (newest first) that pays the invoice and no other invoice already took. */
export async function findTonPayment(
  reader: TonReader,
  inv: { address: string; amountNano: bigint; comment: string },
  isUsed: (hashes: string[]) => Promise<Set<string>> = async () => new Set(),
): Promise<{ txHash: string; lt: string; value: bigint } | null> {
  const address = Address.parse(inv.address);
  const found: Array<{ txHash: string; lt: string; value: bigint }> = [];
  for (const tx of await reader.getTransactions(address, 100)) {
    const msg = tx.inMessage;
    if (!msg || msg.info.type !== 'internal') continue;
    if (!msg.info.dest.equals(address) || msg.info.bounced) continue;
    if (tx.description.type === 'generic' && tx.description.aborted) continue;
    if (msg.info.value.coins < inv.amountNano || commentOf(tx) !== inv.comment) continue;
    found.push({ txHash: tx.hash().toString('hex'), lt: tx.lt.toString(), value: msg.info.value.coins });
  }
  if (!found.length) return null;
  const used = await isUsed(found.map((f) => f.txHash));
  return found.find((f) => !used.has(f.txHash)) ?? null;
}
