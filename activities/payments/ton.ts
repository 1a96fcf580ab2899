import { Address, type Transaction } from '@ton/core';
import { TonClient } from '@ton/ton';

/**
 * TON invoices: the payer sends at least the invoiced nanotons to the receiving address with the
 * invoice id as the text comment (TON's usual memo), so one address serves many invoices. A
 * transfer found in the receiver's transactions is final (TON blocks finalise in seconds).
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

export async function findTonPayment(
  reader: TonReader,
  inv: { address: string; amountNano: bigint; comment: string },
): Promise<{ txHash: string; lt: string; value: bigint } | null> {
  const address = Address.parse(inv.address);
  for (const tx of await reader.getTransactions(address, 100)) {
    const msg = tx.inMessage;
    if (!msg || msg.info.type !== 'internal') continue;
    if (!msg.info.dest.equals(address) || msg.info.bounced) continue;
    if (tx.description.type === 'generic' && tx.description.aborted) continue;
    if (msg.info.value.coins < inv.amountNano || commentOf(tx) !== inv.comment) continue;
    return { txHash: tx.hash().toString('hex'), lt: tx.lt.toString(), value: msg.info.value.coins };
  }
  return null;
}
