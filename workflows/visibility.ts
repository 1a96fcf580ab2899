import { patched, upsertSearchAttributes, workflowInfo, type ChildWorkflowOptions } from '@temporalio/workflow';
import { runVisibility, SEARCH_ATTRIBUTES, type RunLabels } from '../domain/search-attributes.js';

/** Marks histories that upsert AutoVibeStatus and label their children; older ones replay without. */
const SEARCH_ATTRIBUTES_PATCH = 'search-attributes';

/**
 * Whether this run was started with AutoVibe's search attributes. Deterministic: the start event
 * carries them. Runs started before they existed (or with AUTOVIBE_SEARCH_ATTRIBUTES=off, or in a
 * namespace without them) have none and never upsert.
 */
function labelled(): boolean {
  return workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.project) !== undefined && patched(SEARCH_ATTRIBUTES_PATCH);
}

/** Keeps AutoVibeStatus equal to the workflow's status, for Web UI queries by status. */
export function setStatusAttribute(status: string): void {
  if (!labelled()) return;
  if (workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.status) === status) return;
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
}

/**
 * Search attributes and summary for a child workflow, inheriting the parent's cost center; none
 * for a parent that has no search attributes itself (old histories start their children unchanged).
 */
export function childVisibility(kind: string, labels: RunLabels): Pick<ChildWorkflowOptions, 'typedSearchAttributes' | 'staticSummary' | 'staticDetails'> {
  if (!labelled()) return {};
  const costCenter = labels.costCenter ?? workflowInfo().typedSearchAttributes.get(SEARCH_ATTRIBUTES.costCenter) ?? null;
  return runVisibility(kind, { ...labels, costCenter }, { searchAttributes: true });
}
