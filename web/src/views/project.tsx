import { ok } from '../api.js';
import { useLiveEvents } from '../live.js';
import { useSession } from '../session.js';
import { ErrorNote, Loading, Section, useLoad, useThrottled, When } from '../ui.js';
import { SpendChart } from '../chart.js';
import { BudgetForm, ProjectBudgets } from './budgets.js';
import { ProjectPayments } from './payments.js';
import { ProjectPipelines } from './pipelines.js';

/** One project: its budgets and spend, payments, pipelines, and where to look next (machines, evolution tree, objectives, alerts). */
export function Project({ id }: { id: string }) {
  const { api } = useSession();
  const { data: p, error, reload } = useLoad(() => ok(api.GET('/projects/{id}', { params: { path: { id } } })), [id]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.projectId === id && (e.kind.startsWith('budget.') || e.kind === 'machine.status'), refresh);
  if (!p) return error ? <ErrorNote error={error} /> : <Loading what={`project ${id}`} />;
  return (
    <>
      <Section title={`Project ${p.name}`}>
        <dl class="facts">
          <dt>Id</dt>
          <dd>
            <code>{p.id}</code>
          </dd>
          <dt>Budget</dt>
          <dd>
            {p.budget ? (
              <>
                {p.budget.spent} spent, {p.budget.reserved} reserved of {p.budget.limit} {p.budget.currency} ({p.budget.period}); {p.budget.remaining} left
              </>
            ) : (
              <span class="muted">none set</span>
            )}
          </dd>
          <dt>When a machine hits a limit</dt>
          <dd>{p.limitPolicy.policy === 'pause' ? `pause for up to ${p.limitPolicy.pauseMinutes} min and ask` : 'stop'}</dd>
          <dt>Created</dt>
          <dd>
            <When at={p.createdAt} />
          </dd>
        </dl>
        <p class="links">
          <a href={`#/machines?project=${p.id}`}>Machines</a>
          <a href={`#/projects/${p.id}/tree`}>Evolution tree</a>
          <a href={`#/projects/${p.id}/objectives`}>Objectives</a>
          <a href={`#/pipelines?project=${p.id}`}>Pipelines</a>
          <a href={`#/payments?project=${p.id}`}>Payments</a>
          <a href={`#/alerts?project=${p.id}`}>Alerts</a>
          <a href="#/budgets">All budgets</a>
        </p>
      </Section>
      <Section title="Budgets and spend">
        <ProjectBudgets projectId={p.id} />
        <BudgetForm projectId={p.id} current={p.budget} onSaved={reload} />
        <SpendChart projectId={p.id} name={p.name} />
      </Section>
      <Section title="Pipelines">
        <ProjectPipelines projectId={p.id} />
      </Section>
      <Section title="Payments">
        <ProjectPayments projectId={p.id} />
      </Section>
    </>
  );
}
