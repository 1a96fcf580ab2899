export const OBJECTIVE_STATUSES = ['waiting', 'paused', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ObjectiveStatus = (typeof OBJECTIVE_STATUSES)[number];
