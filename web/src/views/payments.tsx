import { useState } from 'preact/hooks';
import { ok, type ItemOf } from '../api.js';
import { useLiveEvents } from '../live.js';
import { useSession } from '../session.js';
import { ErrorNote, Id, Loading, Money, Status, useLoad, useThrottled, When } from '../ui.js';
import { PickedProjectPage } from './picker.js';

type Payment = ItemOf<'/projects/{id}/payments'>;

function Attempts({ payment }: { payment: Payment }) {
  if (payment.attempts.length === 0) return <span class="muted">no attempt yet</span>;
  return (
    <ol class="attempts" aria-label={`Attempts of payment ${payment.id}`}>
      {payment.attempts.map((a) => (
        <li key={a.seq}>
          {a.method} <Status value={a.status} />
          {a.tries > 1 ? <span class="muted"> ({a.tries} tries)</span> : null}
          {a.error ? <span class="error"> {a.error}</span> : null} <When at={a.startedAt} />
        </li>
      ))}
    </ol>
  );
}

/** A project's prepaid balance, credits and payments with every attempt, kept current by payment events. */
export function ProjectPayments({ projectId }: { projectId: string }) {
  const { api } = useSession();
  const path = { params: { path: { id: projectId } } };
  const [more, setMore] = useState<{ items: Payment[]; cursor: string | null } | null>(null);
  const { data, error, reload } = useLoad(async () => {
    setMore(null);
    const [payments, balance, credits] = await Promise.all([
      ok(api.GET('/projects/{id}/payments', { params: { path: { id: projectId }, query: { limit: '25' } } })),
      ok(api.GET('/projects/{id}/balance', path)),
      ok(api.GET('/projects/{id}/credits', path)),
    ]);
    return { payments, balance, credits };
  }, [projectId]);
  const refresh = useThrottled(reload, 1000);
  useLiveEvents((e) => e.projectId === projectId && e.kind.startsWith('payment.'), refresh);
  if (!data) return error ? <ErrorNote error={error} /> : <Loading what="payments" />;
  const items = [...data.payments.items, ...(more?.items ?? [])];
  const cursor = more ? more.cursor : data.payments.nextCursor;
  const loadMore = async (c: string) => {
    const next = await ok(api.GET('/projects/{id}/payments', { params: { path: { id: projectId }, query: { limit: '25', cursor: c } } }));
    setMore((m) => ({ items: [...(m?.items ?? []), ...next.items], cursor: next.nextCursor }));
  };
  return (
    <>
      <ErrorNote error={error} />
      <dl class="facts">
        <dt>Prepaid balance</dt>
        <dd>
          {data.balance.items.length ? (
            data.balance.items.map((b) => (
              <span key={b.currency} class="balance">
                <Money value={b} />{' '}
              </span>
            ))
          ) : (
            <span class="muted">none</span>
          )}
        </dd>
        <dt>Free credits</dt>
        <dd>
          {data.credits.items.length ? (
            data.credits.items.map((c) => (
              <span key={c.id} class="credit">
                {c.remaining} of {c.amount} {c.currency} left, until <When at={c.expiresAt} />{' '}
              </span>
            ))
          ) : (
            <span class="muted">none</span>
          )}
        </dd>
      </dl>
      {items.length === 0 ? (
        <p class="muted">No payments yet.</p>
      ) : (
        <table class="payments">
          <caption class="sr-only">Payments of project {projectId}, newest first, with their attempts</caption>
          <thead>
            <tr>
              <th scope="col">Payment</th>
              <th scope="col">Amount</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Started</th>
            </tr>
          </thead>
          <tbody>
            {items.map((p) => (
              <tr key={p.id} data-payment={p.id}>
                <th scope="row">
                  <Id id={p.id} /> <span class="muted">{p.reason}</span>
                </th>
                <td>
                  <Money value={p} />
                </td>
                <td>
                  <Status value={p.status} />
                  {p.paidBy ? <span class="muted"> by {p.paidBy}</span> : null}
                  {p.error ? <div class="error">{p.error}</div> : null}
                </td>
                <td>
                  <Attempts payment={p} />
                </td>
                <td>
                  <When at={p.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor ? (
        <button type="button" onClick={() => void loadMore(cursor)}>
          Load more payments
        </button>
      ) : null}
    </>
  );
}

/** `#/payments?project=`: the payments of one project the caller picks. */
export function Payments() {
  return <PickedProjectPage title="Payments" route="/payments" show={(projectId) => <ProjectPayments key={projectId} projectId={projectId} />} />;
}
