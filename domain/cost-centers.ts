/** Cost centers: where spending is allocated, by kind of work, grouped by department. */
export const COST_CENTER_KINDS = ['development', 'testing', 'deployment'] as const;
export type CostCenterKind = (typeof COST_CENTER_KINDS)[number];

/** Budget scopes a machine's spend can fall under, besides its project's and its type's. */
export const COST_CENTER_SCOPE = 'cost-center';
export const DEPARTMENT_SCOPE = 'department';
