import { useState } from 'preact/hooks';
import { ok, type Read } from '../api.js';
import { SpendChart } from '../chart.js';
import { useLiveEvents } from '../live.js';
import { can, useSession } from '../session.js';
import { ErrorNote, Loading, Section, useLoad, useThrottled } from '../ui.js';

type Budget = NonNullable<Read<'/projects/{id}/budgets'>['budget']>;

/** How full a budget is, as a fraction for drawing (presentation only: the numbers shown are the API's strings). */
const share = (part: string, whole: string) => {
  const w = Number(whole);
  return w > 0 ? Math.min(Math.max(Number(part) / w, 0), 1) : 0;
};

/** A budget as numbers (the text says it all) with a bar behind them (decoration). */
export function BudgetBar({ budget }: { budget: Pick<Budget, 'limit' | 'spent' | 'reserved' | 'remaining' | 'currency' | 'period'> }) {
  const spent = share(budget.spent, budget.limit);
  const reserved = Math.min(share(budget.reserved, budget.limit), 1 - spent);
  const over = Number(budget.remaining) <= 0;
  return (
    <div class="budget">
      <span class="budget-numbers">
        <span class="budget-spent">{budget.spent}</span> spent · <span class="budget-reserved">{budget.reserved}</span> reserved · of{' '}
        <span class="budget-limit">{budget.limit}</span> {budget.currency} {budget.period} ·{' '}
        <span class={over ? 'budget-left attention' : 'budget-left'}>{budget.remaining}</span> left
      </span>
      <span class="bar" aria-hidden="true">
        <span class={`bar-spent${over ? ' bar-over' : ''}`} style={{ width: `${(spent * 100).toFixed(1)}%` }} />
        <span class="bar-reserved" style={{ width: `${(reserved * 100).toFixed(1)}%` }} />
      </span>
    </div>
  );
}

/** A project's own budget and one per machine type, kept current by budget and machine events. */
export function ProjectBudgets({ projectId, onLoaded }: { projectId: string; onLoaded?: (b: Read<'/projects/{id}/budgets'>) => void }) {
  const { api } = useSession();
  const { data, error, reload } = useLoad(async () => {
    const b = await ok(api.GET('/projects/{id}/budgets', { params: { path: { id: projectId } } }));
    onLoaded?.(b);
    return b;
  }, [projectId]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.projectId === projectId && (e.kind.startsWith('budget.') || e.kind.startsWith('machine.')), refresh);
  if (!data) return error ? <ErrorNote error={error} /> : <Loading what="budgets" />;
  return (
    <table class="budgets" data-project={projectId}>
      <caption class="sr-only">Budgets of project {projectId}: the project and each machine type</caption>
      <thead>
        <tr>
          <th scope="col">Budget</th>
          <th scope="col">Spent, reserved and limit</th>
        </tr>
      </thead>
      <tbody>
        <tr data-scope="project">
          <th scope="row">Project</th>
          <td>{data.budget ? <BudgetBar budget={data.budget} /> : <span class="muted">no project budget set</span>}</td>
        </tr>
        {data.machineTypes.map((t) => (
          <tr key={t.machineType} data-scope={`type:${t.machineType}`}>
            <th scope="row">
              {t.machineType}
              {t.source === 'default' ? <span class="muted"> (type default)</span> : null}
            </th>
            <td>
              <BudgetBar budget={t} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const PERIODS = ['daily', 'weekly', 'monthly', 'total'] as const;
const CURRENCIES = ['USD', 'EUR', 'CAD', 'TON', 'BTC', 'ETH'] as const;

/** For owners: set the project's budget (PUT /projects/:id/budget); the API's message shows on bad input. */
export function BudgetForm({ projectId, current, onSaved }: { projectId: string; current: Budget | null; onSaved: () => void }) {
  const { api, me } = useSession();
  const [amount, setAmount] = useState(current?.limit ?? '');
  const [currency, setCurrency] = useState<(typeof CURRENCIES)[number]>(current?.currency ?? 'USD');
  const [period, setPeriod] = useState<(typeof PERIODS)[number]>(current?.period ?? 'daily');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  if (!can(me, 'configure')) return null;
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const b = await ok(api.PUT('/projects/{id}/budget', { params: { path: { id: projectId } }, body: { amount, currency, period } }));
      setSaved(`Budget set: ${b.limit} ${b.currency} ${b.period}.`);
      onSaved();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="budget-form" onSubmit={(e) => void submit(e)}>
      <fieldset>
        <legend>Set the project budget</legend>
        <label>
          Amount
          <input name="amount" inputMode="decimal" autoComplete="off" value={amount} onInput={(e) => setAmount(e.currentTarget.value)} size={10} />
        </label>
        <label>
          Currency
          <select value={currency} onChange={(e) => setCurrency(e.currentTarget.value as (typeof CURRENCIES)[number])}>
            {CURRENCIES.map((c) => (
              <option key={c}>{c}</option>
            ))}
          </select>
        </label>
        <label>
          Period
          <select value={period} onChange={(e) => setPeriod(e.currentTarget.value as (typeof PERIODS)[number])}>
            {PERIODS.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy}>
          Set budget
        </button>
      </fieldset>
      <ErrorNote error={error} />
      {saved ? (
        <p role="status" class="tone-good">
          {saved}
        </p>
      ) : null}
    </form>
  );
}

/** Cost centers (each with its budget) grouped by department (its budget too, for keys that see the whole deployment). */
export function CostCenterBudgets() {
  const { api, me } = useSession();
  const wide = me.projectIds === null;
  const { data, error, reload } = useLoad(async () => {
    const centers = await ok(api.GET('/cost-centers', { params: { query: { limit: '100' } } }));
    const details = await Promise.all(centers.items.map((c) => ok(api.GET('/cost-centers/{id}', { params: { path: { id: c.id } } }))));
    const names = [...new Set(details.map((c) => c.department))].sort();
    const departments = await Promise.all(
      names.map(async (name) => ({
        name,
        budget: wide ? (await ok(api.GET('/departments/{name}/costs', { params: { path: { name } } }))).budget : undefined,
        centers: details.filter((c) => c.department === name),
      })),
    );
    return departments;
  }, [wide]);
  const refresh = useThrottled(reload, 2000);
  useLiveEvents((e) => e.kind.startsWith('budget.'), refresh);
  return (
    <Section title="Cost centers and departments">
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="cost centers" />
      ) : data.length === 0 ? (
        <p class="muted">No cost centers{wide ? '' : ' for your projects'}.</p>
      ) : (
        <table class="budgets">
          <caption class="sr-only">Budgets of departments and their cost centers</caption>
          <thead>
            <tr>
              <th scope="col">Department or cost center</th>
              <th scope="col">Spent, reserved and limit</th>
            </tr>
          </thead>
          {data.map((d) => (
            <tbody key={d.name}>
              <tr class="group" data-scope={`department:${d.name}`}>
                <th scope="row">Department {d.name}</th>
                <td>
                  {d.budget ? (
                    <BudgetBar budget={d.budget} />
                  ) : (
                    <span class="muted">{d.budget === null ? 'no department budget set' : 'visible to deployment-wide keys'}</span>
                  )}
                </td>
              </tr>
              {d.centers.map((c) => (
                <tr key={c.id} data-scope={`cost-center:${c.id}`}>
                  <th scope="row" class="indent">
                    {c.name} <span class="muted">({c.kind})</span>
                  </th>
                  <td>{c.budget ? <BudgetBar budget={c.budget} /> : <span class="muted">no cost-center budget set</span>}</td>
                </tr>
              ))}
            </tbody>
          ))}
        </table>
      )}
    </Section>
  );
}

/** Every budget the caller sees: per project (with its spend chart) and per machine type, cost center and department. */
export function Budgets() {
  const { api } = useSession();
  const { data, error } = useLoad(() => ok(api.GET('/projects', { params: { query: { limit: '100' } } })), []);
  return (
    <>
      <h1 class="page-title">Budgets</h1>
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="projects" />
      ) : data.items.length === 0 ? (
        <p>No projects yet.</p>
      ) : (
        data.items.map((p) => (
          <Section key={p.id} title={`Project ${p.name}`} actions={<a href={`#/projects/${p.id}`}>project page</a>}>
            <ProjectBudgets projectId={p.id} />
            <SpendChart projectId={p.id} name={p.name} />
          </Section>
        ))
      )}
      <CostCenterBudgets />
    </>
  );
}
