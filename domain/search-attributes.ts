import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

/**
 * The Temporal search attributes every AutoVibe workflow carries, so the Web UI and
 * `temporal workflow list --query` find runs by project, machine type, provider, status and
 * cost center. All Keyword: exact-match filters. Registered by the embedded dev server at start
 * (scripts/services/temporal.ts); a production namespace needs them created once (README).
 */
export const SEARCH_ATTRIBUTES = {
  project: defineSearchAttributeKey('AutoVibeProject', SearchAttributeType.KEYWORD),
  machineType: defineSearchAttributeKey('AutoVibeMachineType', SearchAttributeType.KEYWORD),
  provider: defineSearchAttributeKey('AutoVibeProvider', SearchAttributeType.KEYWORD),
  /** Upserted by the workflow as its status changes (machines, objectives, pipelines, payments). */
  status: defineSearchAttributeKey('AutoVibeStatus', SearchAttributeType.KEYWORD),
  costCenter: defineSearchAttributeKey('AutoVibeCostCenter', SearchAttributeType.KEYWORD),
} as const;

/** Every attribute's name, each of type Keyword. */
export const SEARCH_ATTRIBUTE_NAMES: string[] = Object.values(SEARCH_ATTRIBUTES).map((k) => k.name);

/** What a run is about; absent or null fields are left out. */
export interface RunLabels {
  project?: string | null;
  machineType?: string | null;
  provider?: string | null;
  /** The status at start: given only for workflows that upsert it as they go. */
  status?: string | null;
  costCenter?: string | null;
}

export function searchAttributePairs(labels: RunLabels): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [];
  for (const field of ['project', 'machineType', 'provider', 'status', 'costCenter'] as const) {
    const value = labels[field];
    if (value) pairs.push({ key: SEARCH_ATTRIBUTES[field], value });
  }
  return pairs;
}

/** A single line for the Web UI's summary column: `machine shell on local · project p-1`. */
export function runSummary(kind: string, labels: RunLabels): string {
  const what = [kind, labels.machineType, labels.provider ? `on ${labels.provider}` : null].filter(Boolean).join(' ');
  return [what, labels.project ? `project ${labels.project}` : null, labels.costCenter ? `cost center ${labels.costCenter}` : null].filter(Boolean).join(' · ');
}

/**
 * Start options that make a run findable and readable in the Web UI: the typed search attributes
 * (when the namespace has them: `searchAttributes` false leaves them out) and a static summary
 * and details (Temporal markdown).
 */
export function runVisibility(
  kind: string,
  labels: RunLabels,
  opts: { searchAttributes: boolean; details?: Record<string, string | number | null | undefined> },
): { typedSearchAttributes?: SearchAttributePair[]; staticSummary: string; staticDetails: string } {
  const lines = Object.entries({ kind, ...labels, ...opts.details })
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `**${k}**: ${String(v)}`);
  return {
    ...(opts.searchAttributes ? { typedSearchAttributes: searchAttributePairs(labels) } : {}),
    staticSummary: runSummary(kind, labels),
    staticDetails: lines.join('\n'),
  };
}
