import type { Connection } from '@temporalio/client';
import type { Config } from '../config/index.js';
import { SEARCH_ATTRIBUTE_NAMES } from '../domain/search-attributes.js';

/** The command that registers AutoVibe's search attributes in a namespace (once, by an operator). */
export function registerCommand(namespace: string): string {
  return `temporal operator search-attribute create --namespace ${namespace} ${SEARCH_ATTRIBUTE_NAMES.map((n) => `--name ${n} --type Keyword`).join(' ')}`;
}

/**
 * Fails fast when workflows would be started with search attributes the namespace lacks (every
 * start would be refused). A server that will not list them (no operator permission) is trusted.
 */
export async function checkSearchAttributes(connection: Connection, config: Pick<Config, 'searchAttributes' | 'temporalNamespace'>): Promise<void> {
  if (!config.searchAttributes) return;
  let known: Set<string>;
  try {
    const res = await connection.operatorService.listSearchAttributes({ namespace: config.temporalNamespace });
    known = new Set(Object.keys(res.customAttributes ?? {}));
  } catch {
    return;
  }
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((n) => !known.has(n));
  if (missing.length) {
    throw new Error(
      `Temporal namespace ${config.temporalNamespace} lacks the search attributes ${missing.join(', ')}; register them with\n  ` +
        `${registerCommand(config.temporalNamespace)}\nor set AUTOVIBE_SEARCH_ATTRIBUTES=off`,
    );
  }
}
