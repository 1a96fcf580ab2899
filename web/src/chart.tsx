import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ok, type Read } from './api.js';
import { useLiveEvents } from './live.js';
import { useSession } from './session.js';
import { ErrorNote, Loading, useLoad, useThrottled } from './ui.js';

type Series = Read<'/projects/{id}/costs/series'>;
type Bucket = 'hour' | 'day';

const COLOURS = ['#0a58ca', '#116329', '#a40e26', '#7d4e00', '#6639ba', '#1b7c83'];

const label = (start: string, bucket: Bucket) => {
  const d = new Date(start);
  return bucket === 'day' ? d.toISOString().slice(0, 10) : `${d.toISOString().slice(0, 13).replace('T', ' ')}:00`;
};

/** uPlot drawing the series: total and each category per bucket (numbers are floats only for drawing). */
function Plot({ series, title }: { series: Series; title: string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current!;
    const xs = series.buckets.map((b) => Date.parse(b.start) / 1000);
    const data: uPlot.AlignedData = [
      xs,
      series.buckets.map((b) => Number(b.total)),
      ...series.categories.map((c) => series.buckets.map((b) => Number(b.byCategory[c] ?? 0))),
    ];
    const width = () => Math.max(el.clientWidth, 260);
    const plot = new uPlot(
      {
        width: width(),
        height: 220,
        legend: { show: false },
        cursor: { show: true, points: { show: false } },
        scales: { x: { time: true } },
        axes: [
          { stroke: '#57606a' },
          // Two significant digits: small spends (0.0005, 0.001) stay apart on the axis.
          { stroke: '#57606a', size: 64, values: (_u, splits) => splits.map((v) => (v === 0 ? '0' : String(Number(v.toPrecision(2))))) },
        ],
        series: [
          {},
          { label: 'total', stroke: COLOURS[0], width: 2, fill: 'rgba(10,88,202,0.08)' },
          ...series.categories.map((c, i) => ({ label: c, stroke: COLOURS[(i + 1) % COLOURS.length], width: 1.5, dash: [4, 3] })),
        ],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [series]);
  return <div class="chart" ref={host} role="img" aria-label={title} />;
}

/** Spend over time of a project (GET /projects/:id/costs/series): a chart with an hour/day switch and the same numbers as a table. */
export function SpendChart({ projectId, name }: { projectId: string; name: string }) {
  const { api } = useSession();
  const [bucket, setBucket] = useState<Bucket>('day');
  const { data, error, reload } = useLoad(
    () => ok(api.GET('/projects/{id}/costs/series', { params: { path: { id: projectId }, query: { bucket } } })),
    [projectId, bucket],
  );
  const refresh = useThrottled(reload, 3000);
  useLiveEvents((e) => e.projectId === projectId && (e.kind === 'budget.settled' || e.kind === 'budget.released'), refresh);
  const title = data
    ? `Spend of project ${name} per ${bucket}, ${label(data.from, bucket)} to ${label(data.to, bucket)}: ${data.total} ${data.currency} in all`
    : `Spend of project ${name}`;
  return (
    <figure class="spend" data-project={projectId}>
      <figcaption class="card-head">
        <span>
          Spend per {bucket}
          {data ? (
            <>
              {' '}
              · <span class="spend-total">{data.total}</span> {data.currency} in the range
            </>
          ) : null}
        </span>
        <span class="switch" role="group" aria-label={`Bucket of the spend chart of ${name}`}>
          {(['hour', 'day'] as const).map((b) => (
            <button key={b} type="button" aria-pressed={bucket === b} onClick={() => setBucket(b)}>
              per {b}
            </button>
          ))}
        </span>
      </figcaption>
      <ErrorNote error={error} />
      {!data ? (
        <Loading what="spend" />
      ) : (
        <>
          <Plot series={data} title={title} />
          <p class="legend">
            <span style={{ color: COLOURS[0] }}>━ total</span>
            {data.categories.map((c, i) => (
              <span key={c} style={{ color: COLOURS[(i + 1) % COLOURS.length] }}>
                ┅ {c}
              </span>
            ))}
          </p>
          <details>
            <summary>Spend of {name} as a table</summary>
            <table class="spend-table">
              <caption class="sr-only">{title}</caption>
              <thead>
                <tr>
                  <th scope="col">{bucket === 'day' ? 'Day (UTC)' : 'Hour (UTC)'}</th>
                  <th scope="col">Total ({data.currency})</th>
                  {data.categories.map((c) => (
                    <th key={c} scope="col">
                      {c}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {data.buckets.map((b) => (
                  <tr key={b.start}>
                    <th scope="row">
                      <time dateTime={b.start}>{label(b.start, bucket)}</time>
                    </th>
                    <td>{b.total}</td>
                    {data.categories.map((c) => (
                      <td key={c}>{b.byCategory[c] ?? '0'}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </figure>
  );
}
