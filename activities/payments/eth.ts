import { createPublicClient, http, type PublicClient } from 'viem';

/**
 * ETH invoices: every invoice is paid to the deployment's one receiving address, so each asks
 * for an amount no other invoice to that address asks for (see ETH_TAG_SPACE), and only a
 * transfer of exactly that many wei pays it. The checker scans the blocks mined since the invoice
 * opened for such a transfer (one not already used by another invoice), and counts its
 * confirmations (blocks on top of it, itself included).
 */
export function createEthClient(rpcUrl: string): PublicClient {
  return createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 20_000 }) });
}

/** The first block an invoice opened now can be paid in. */
export async function ethInvoiceStart(client: PublicClient): Promise<bigint> {
  return (await client.getBlockNumber()) + 1n;
}

export interface ChainPayment {
  txHash: string;
  block: bigint;
  confirmations: number;
}

/** Longest stretch of blocks one check scans (later checks carry on past it). */
const MAX_SCAN = 5_000n;

export async function findEthPayment(
  client: PublicClient,
  inv: { address: string; amountWei: bigint; fromBlock: bigint; knownTx: string | null },
  isUsed: (hashes: string[]) => Promise<Set<string>>,
): Promise<ChainPayment | null> {
  const latest = await client.getBlockNumber();
  const confirmationsOf = (block: bigint) => Number(latest - block + 1n);
  if (inv.knownTx) {
    const receipt = await client.getTransactionReceipt({ hash: inv.knownTx as `0x${string}` });
    return { txHash: inv.knownTx, block: receipt.blockNumber, confirmations: confirmationsOf(receipt.blockNumber) };
  }
  const to = inv.address.toLowerCase();
  const end = latest < inv.fromBlock + MAX_SCAN ? latest : inv.fromBlock + MAX_SCAN;
  for (let b = inv.fromBlock; b <= end; b++) {
    const block = await client.getBlock({ blockNumber: b, includeTransactions: true });
    const candidates = block.transactions.filter((tx) => tx.to?.toLowerCase() === to && tx.value === inv.amountWei);
    if (!candidates.length) continue;
    const used = await isUsed(candidates.map((tx) => tx.hash));
    for (const tx of candidates) {
      if (used.has(tx.hash)) continue;
      const receipt = await client.getTransactionReceipt({ hash: tx.hash });
      if (receipt.status !== 'success') continue;
      return { txHash: tx.hash, block: b, confirmations: confirmationsOf(b) };
    }
  }
  return null;
}
