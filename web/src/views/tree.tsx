import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { idempotencyKey, ok, type Read } from '../api.js';
import { lineDiff, withContext } from '../line-diff.js';
import { useLiveEvents } from '../live.js';
import { navigate, queryOf, useRoute } from '../router.js';
import { can, useSession } from '../session.js';
import { shortId, TreeRenderer } from '../tree-canvas.js';
import { layoutTree, neighbour, type TreeLayout } from '../tree-layout.js';
import { ErrorNote, Id, Loading, Section, useLoad, useThrottled, When } from '../ui.js';

type TreeData = Read<'/projects/{id}/checkpoints/tree'>;
type Detail = Read<'/checkpoints/{id}'>;
type MachineType = Read<'/machine-types'>['items'][number]['id'];

/** A re-read of the tree when nothing told us of a change (a 304 costs next to nothing). */
const POLL_MS = 30_000;
const SHOW_BRANCHES = 30;
const SHOW_FILES = 200;
const DIFF_FILES = 10;
const MAX_TEXT = 400_000;

/** Test hook: where a checkpoint is drawn, in page coordinates (null when it is not in the tree). */
interface TreeHook {
  position(id: string): { x: number; y: number } | null;
}

/**
 * A project's evolution tree (`#/projects/:id/tree?checkpoint=…`): drawn on a canvas (zoom, pan,
 * click to select), walked with the arrow keys, kept current by the event feed; the selected
 * checkpoint's facts, files, diff and a form to spawn a machine from it in a side panel.
 */
export function Tree({ id }: { id: string }) {
  const { api } = useSession();
  const wanted = queryOf(useRoute()).get('checkpoint');
  const [tree, setTree] = useState<TreeData | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const etag = useRef<string | null>(null);
  const [selectedId, setSelectedId] = useState<string | null>(wanted);
  const [compareId, setCompareId] = useState<string | null>(null);
  const [picking, setPicking] = useState(false);
  const [announce, setAnnounce] = useState('');
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const renderer = useRef<TreeRenderer | null>(null);

  const load = useCallback(async () => {
    try {
      const {
        data,
        error: e,
        response,
      } = await api.GET('/projects/{id}/checkpoints/tree', {
        params: { path: { id } },
        headers: etag.current ? { 'if-none-match': etag.current } : {},
      });
      if (response.status === 304) return;
      if (!response.ok) await ok(Promise.resolve({ data, error: e, response }));
      etag.current = response.headers.get('etag');
      setTree(data!);
      setError(null);
    } catch (err) {
      setError(err as Error);
    }
  }, [id]);
  useEffect(() => {
    etag.current = null;
    setTree(null);
    void load();
    const timer = setInterval(() => document.visibilityState === 'visible' && void load(), POLL_MS);
    return () => clearInterval(timer);
  }, [id]);
  const refresh = useThrottled(() => void load(), 1000);
  useLiveEvents((e) => e.projectId === id, refresh);
  useEffect(() => {
    if (wanted) setSelectedId(wanted);
  }, [wanted]);

  const layout = useMemo(() => (tree ? layoutTree(tree.nodes, tree.rootCheckpointId) : null), [tree]);
  const selected = layout && selectedId ? (layout.index.get(selectedId) ?? -1) : -1;
  const compare = layout && compareId ? (layout.index.get(compareId) ?? -1) : -1;

  const select = (node: number, how: 'pointer' | 'keyboard') => {
    if (!layout || node < 0) return;
    const cid = layout.nodes[node]!.id;
    setSelectedId(cid);
    history.replaceState(null, '', `#/projects/${encodeURIComponent(id)}/tree?checkpoint=${encodeURIComponent(cid)}`);
    if (how === 'keyboard') renderer.current?.reveal(node);
    setAnnounce(describe(layout, node));
  };
  const pick = useRef<(node: number, e: MouseEvent) => void>(() => {});
  pick.current = (node, e) => {
    if (!layout) return;
    if (picking || e.shiftKey) {
      setCompareId(layout.nodes[node]!.id);
      setPicking(false);
    } else select(node, 'pointer');
  };

  useEffect(() => {
    const r = new TreeRenderer(canvasRef.current!, (n, e) => pick.current(n, e));
    renderer.current = r;
    return () => r.destroy();
  }, []);
  useEffect(() => {
    if (!layout) return;
    renderer.current?.setLayout(layout);
    const hook: TreeHook = {
      position: (cid) => {
        const n = layout.index.get(cid);
        if (n === undefined || !renderer.current || !canvasRef.current) return null;
        const rect = canvasRef.current.getBoundingClientRect();
        const p = renderer.current.screenPosition(n);
        return { x: rect.left + p.x, y: rect.top + p.y };
      },
    };
    (window as unknown as { __autovibeTree?: TreeHook }).__autovibeTree = hook;
  }, [layout]);
  useEffect(() => renderer.current?.setMarks(selected, compare), [selected, compare, layout]);
  // The first selection from the link (?checkpoint=) is brought into view.
  const revealed = useRef<string | null>(null);
  useEffect(() => {
    if (selected >= 0 && wanted && revealed.current !== wanted && layout?.nodes[selected]?.id === wanted) {
      revealed.current = wanted;
      renderer.current?.reveal(selected);
    }
  }, [selected, wanted, layout]);

  const onKey = (e: KeyboardEvent) => {
    if (!layout || layout.nodes.length === 0) return;
    const r = renderer.current;
    let next = -2;
    switch (e.key) {
      case 'ArrowLeft':
      case 'ArrowRight':
      case 'ArrowUp':
      case 'ArrowDown':
        next = selected < 0 ? 0 : neighbour(layout, selected, e.key);
        break;
      case 'Home':
        next = 0;
        break;
      case 'End':
        next = layout.branches[0]!.last;
        break;
      case '+':
      case '=':
        r?.zoomBy(1.5);
        break;
      case '-':
        r?.zoomBy(1 / 1.5);
        break;
      case '0':
        r?.fit();
        break;
      case 'Enter':
        if (selected >= 0) r?.reveal(selected);
        break;
      case 'c':
        if (selected >= 0) setCompareId(layout.nodes[selected]!.id);
        break;
      default:
        return;
    }
    e.preventDefault();
    if (next >= 0) select(next, 'keyboard');
    else if (next === -1) setAnnounce('No checkpoint that way.');
  };

  const count = tree?.count ?? 0;
  return (
    <>
      <Section
        title="Evolution tree"
        actions={
          <div class="tree-tools" role="group" aria-label="Zoom">
            <button type="button" onClick={() => renderer.current?.zoomBy(1.5)} aria-label="Zoom in">
              +
            </button>
            <button type="button" onClick={() => renderer.current?.zoomBy(1 / 1.5)} aria-label="Zoom out">
              −
            </button>
            <button type="button" onClick={() => renderer.current?.fit()}>
              Fit
            </button>
          </div>
        }
      >
        <p class="muted tree-sub">
          <a href={`#/projects/${id}`}>Project {id}</a> ·{' '}
          {tree ? `${count} checkpoints, ${plural(layout!.branches.length - 1, 'branch', 'branches')}` : 'loading…'}
        </p>
        <ErrorNote error={error} />
        <div class="tree-layout">
          <div class="tree-stage">
            <canvas
              ref={canvasRef}
              class={`tree-canvas${picking ? ' picking' : ''}`}
              tabIndex={0}
              role="application"
              aria-label={`Evolution tree of project ${id}, ${count} checkpoints`}
              aria-describedby="tree-keys"
              onKeyDown={onKey}
            />
            {!tree && !error ? <Loading what="the evolution tree" /> : null}
            <p id="tree-keys" class="muted tree-keys">
              Drag to pan, wheel to zoom; click a checkpoint to select it (shift-click: compare with it). Keys on the tree: ← parent, → child, ↑ ↓ sibling
              branch, Home root, End newest on the main line, + − zoom, 0 fit, c compare with the selected.
            </p>
            <ul class="tree-legend" aria-label="Legend">
              <li>
                <span class="dot turn" /> checkpoint
              </li>
              <li>
                <span class="dot final" /> final checkpoint of a machine
              </li>
              <li>
                <span class="dot diamond" /> milestone
              </li>
              <li>
                <span class="dot ring" /> selected
              </li>
              <li>
                <span class="dot ring dashed" /> compared with
              </li>
            </ul>
            <p class="sr-only" role="status">
              {announce}
            </p>
          </div>
          <CheckpointPanel
            key={selectedId ?? ''}
            projectId={id}
            layout={layout}
            selectedId={selectedId}
            compareId={compareId}
            picking={picking}
            onPicking={setPicking}
            onCompare={setCompareId}
            onSelect={(cid) => layout?.index.has(cid) && select(layout.index.get(cid)!, 'keyboard')}
          />
        </div>
      </Section>
      {layout ? <Branches layout={layout} onSelect={(n) => select(n, 'keyboard')} /> : null}
    </>
  );
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

function describe(layout: TreeLayout, node: number): string {
  const c = layout.nodes[node]!;
  const kids = layout.children[node]!.length;
  return `Selected ${c.id}: ${c.kind}${c.milestone ? ', milestone' : ''}, step ${layout.depth[node]}, ${
    layout.lane[node] === 0 ? 'main line' : 'on a branch'
  }, ${kids} ${kids === 1 ? 'child' : 'children'}.`;
}

/** The selected checkpoint: facts, neighbours, files, diff, spawn. */
function CheckpointPanel(props: {
  projectId: string;
  layout: TreeLayout | null;
  selectedId: string | null;
  compareId: string | null;
  picking: boolean;
  onPicking: (on: boolean) => void;
  onCompare: (id: string | null) => void;
  onSelect: (id: string) => void;
}) {
  const { api, me } = useSession();
  const { layout, selectedId } = props;
  const { data: c, error } = useLoad(
    () => (selectedId ? ok(api.GET('/checkpoints/{id}', { params: { path: { id: selectedId } } })) : Promise.resolve(null)),
    [selectedId],
  );
  const node = layout && selectedId ? (layout.index.get(selectedId) ?? -1) : -1;
  return (
    <section class="tree-panel" role="region" aria-labelledby="selected-heading">
      <h3 id="selected-heading">{selectedId ? `Checkpoint ${shortId(selectedId)}` : 'No checkpoint selected'}</h3>
      {!selectedId ? (
        <p class="muted">Click a checkpoint in the tree, focus the tree and use the arrow keys, or pick a branch from the list below.</p>
      ) : !c ? (
        error ? (
          <ErrorNote error={error} />
        ) : (
          <Loading what="the checkpoint" />
        )
      ) : (
        <>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code class="wrap">{c.id}</code>
            </dd>
            <dt>Kind</dt>
            <dd>
              {c.kind} <span class="muted">({c.trigger})</span>
              {c.milestone ? <strong class="milestone"> · milestone</strong> : null}
            </dd>
            <dt>Made</dt>
            <dd>
              <When at={c.createdAt} />
            </dd>
            <dt>Machine</dt>
            <dd>{c.machineId ? <Id id={c.machineId} href={`#/machines/${c.machineId}`} /> : <span class="muted">none (the project's start)</span>}</dd>
            <dt>Commit</dt>
            <dd>
              <code title={c.commit}>{c.commit.slice(0, 12)}</code>
            </dd>
            {layout && node >= 0 ? (
              <>
                <dt>Parent</dt>
                <dd>
                  {c.parentId ? (
                    <button type="button" class="link" onClick={() => props.onSelect(c.parentId!)}>
                      {shortId(c.parentId)}
                    </button>
                  ) : (
                    <span class="muted">none (root)</span>
                  )}
                </dd>
                <dt>Children</dt>
                <dd>
                  {layout.children[node]!.length === 0 ? <span class="muted">none</span> : null}
                  {layout.children[node]!.slice(0, 12).map((k) => (
                    <button key={k} type="button" class="link" onClick={() => props.onSelect(layout.nodes[k]!.id)}>
                      {shortId(layout.nodes[k]!.id)}
                    </button>
                  ))}
                  {layout.children[node]!.length > 12 ? <span class="muted"> and {layout.children[node]!.length - 12} more</span> : null}
                </dd>
              </>
            ) : null}
          </dl>
          <Files checkpoint={c} />
          <Compare checkpoint={c} {...props} />
          {can(me, 'run') ? <Spawn projectId={props.projectId} checkpointId={c.id} /> : null}
        </>
      )}
    </section>
  );
}

function Files({ checkpoint }: { checkpoint: Detail }) {
  const [filter, setFilter] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const shown = checkpoint.files.filter((f) => f.path.includes(filter));
  return (
    <div class="tree-block">
      <h4>Files ({checkpoint.files.length})</h4>
      {checkpoint.files.length > 10 ? (
        <label class="inline">
          Filter files <input value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
      ) : null}
      {checkpoint.files.length === 0 ? <p class="muted">No files.</p> : null}
      <ul class="files" aria-label={`Files of ${checkpoint.id}`}>
        {shown.slice(0, SHOW_FILES).map((f) => (
          <li key={f.path}>
            <button type="button" class="link" aria-pressed={open === f.path} onClick={() => setOpen(open === f.path ? null : f.path)}>
              {f.path}
            </button>{' '}
            <span class="muted">{f.size} B</span>
          </li>
        ))}
      </ul>
      {shown.length > SHOW_FILES ? <p class="muted">{shown.length - SHOW_FILES} more: filter to find them.</p> : null}
      {open ? <FileContent checkpointId={checkpoint.id} path={open} /> : null}
    </div>
  );
}

/** A file of a checkpoint as text (or a note that it is binary or too large to show). */
async function fileText(api: ReturnType<typeof useSession>['api'], checkpointId: string, path: string): Promise<string | { note: string }> {
  const text = await ok(api.GET('/checkpoints/{id}/files/{path}', { params: { path: { id: checkpointId, path } }, parseAs: 'text' }));
  if (text.includes('\u0000')) return { note: 'binary file' };
  if (text.length > MAX_TEXT) return { note: `too large to show here (${text.length} characters)` };
  return text;
}

function FileContent({ checkpointId, path }: { checkpointId: string; path: string }) {
  const { api } = useSession();
  const { data, error } = useLoad(() => fileText(api, checkpointId, path), [checkpointId, path]);
  return (
    <div class="file-content" role="region" aria-label={`Content of ${path}`}>
      <h5>{path}</h5>
      <ErrorNote error={error} />
      {data === null ? (
        error ? null : (
          <Loading what={path} />
        )
      ) : typeof data === 'string' ? (
        <pre tabIndex={0}>{data || '(empty)'}</pre>
      ) : (
        <p class="muted">{data.note}</p>
      )}
    </div>
  );
}

function Compare(props: {
  checkpoint: Detail;
  compareId: string | null;
  picking: boolean;
  onPicking: (on: boolean) => void;
  onCompare: (id: string | null) => void;
}) {
  const { checkpoint: c } = props;
  const against = props.compareId && props.compareId !== c.id ? props.compareId : c.parentId;
  const [typed, setTyped] = useState('');
  return (
    <div class="tree-block">
      <h4>Changes</h4>
      <p>
        {against ? (
          <>
            From <code title={against}>{shortId(against)}</code> {against === c.parentId ? '(its parent)' : ''} to this checkpoint.
          </>
        ) : (
          <span class="muted">The project's first checkpoint: pick another to compare with.</span>
        )}
      </p>
      <div class="compare-tools">
        <button type="button" aria-pressed={props.picking} onClick={() => props.onPicking(!props.picking)}>
          {props.picking ? 'Click a checkpoint in the tree…' : 'Pick on the tree'}
        </button>
        {against !== c.parentId && c.parentId ? (
          <button type="button" onClick={() => props.onCompare(null)}>
            Compare with its parent
          </button>
        ) : null}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (typed.trim()) props.onCompare(typed.trim());
          }}
        >
          <label class="inline">
            Compare with id <input name="compare" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} placeholder="checkpoint-…" />
          </label>
          <button type="submit">Compare</button>
        </form>
      </div>
      {against ? <DiffView from={against} to={c.id} /> : null}
    </div>
  );
}

function DiffView({ from, to }: { from: string; to: string }) {
  const { api } = useSession();
  const { data: d, error } = useLoad(() => ok(api.GET('/checkpoints/{a}/diff/{b}', { params: { path: { a: from, b: to } } })), [from, to]);
  if (!d) return error ? <ErrorNote error={error} /> : <Loading what="the diff" />;
  const files: Array<{ path: string; change: 'added' | 'modified' | 'deleted' }> = [
    ...d.modified.map((path) => ({ path, change: 'modified' as const })),
    ...d.added.map((path) => ({ path, change: 'added' as const })),
    ...d.deleted.map((path) => ({ path, change: 'deleted' as const })),
  ];
  return (
    <div class="diff" role="region" aria-label={`Diff from ${from} to ${to}`}>
      <p>
        {d.added.length} added, {d.modified.length} modified, {d.deleted.length} deleted.
      </p>
      {files.slice(0, DIFF_FILES).map((f) => (
        <FileDiff key={`${f.change}:${f.path}`} from={from} to={to} {...f} />
      ))}
      {files.length > DIFF_FILES ? (
        <ul class="files">
          {files.slice(DIFF_FILES).map((f) => (
            <li key={f.path}>
              {f.change} {f.path}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** One changed file's lines: both versions read through the files endpoint, compared here. */
function FileDiff({ from, to, path, change }: { from: string; to: string; path: string; change: 'added' | 'modified' | 'deleted' }) {
  const { api } = useSession();
  const { data, error } = useLoad(async () => {
    const [a, b] = await Promise.all([change === 'added' ? '' : fileText(api, from, path), change === 'deleted' ? '' : fileText(api, to, path)]);
    if (typeof a !== 'string') return a;
    if (typeof b !== 'string') return b;
    return lineDiff(a, b) ?? { note: 'too many changed lines to compare here' };
  }, [from, to, path]);
  return (
    <details class="file-diff" open>
      <summary>
        <span class={`change change-${change}`}>{change}</span> {path}
      </summary>
      <ErrorNote error={error} />
      {data === null ? null : Array.isArray(data) ? (
        <pre class="diff-lines" tabIndex={0} aria-label={`Changed lines of ${path}`}>
          {withContext(data).map((l, i) =>
            l === null ? (
              <span key={i} class="skip-lines">
                {'⋯\n'}
              </span>
            ) : (
              <span key={i} class={l.op === '+' ? 'line-add' : l.op === '-' ? 'line-del' : undefined}>
                {`${l.op} ${l.text}\n`}
              </span>
            ),
          )}
        </pre>
      ) : (
        <p class="muted">{data.note}</p>
      )}
    </details>
  );
}

/** Spawn a machine from the selected checkpoint (POST /v1/machines with its checkpointId), then go to it. */
function Spawn({ projectId, checkpointId }: { projectId: string; checkpointId: string }) {
  const { api } = useSession();
  const { data: types } = useLoad(() => ok(api.GET('/machine-types')), []);
  const [type, setType] = useState<MachineType>('shell');
  const [text, setText] = useState('');
  const [money, setMoney] = useState('0.10');
  const [minutes, setMinutes] = useState('10');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!text.trim()) return setError(new Error(type === 'shell' ? 'Enter the command to run.' : 'Enter the prompt for the agent.'));
    setBusy(true);
    setError(null);
    try {
      const m = await ok(
        api.POST('/machines', {
          body: {
            projectId,
            type,
            checkpointId,
            ...(type === 'shell' ? { command: text } : { prompt: text }),
            limits: { money: money.trim(), minutes: Number(minutes) },
          },
          headers: { 'idempotency-key': idempotencyKey() },
        }),
      );
      navigate(`/machines/${m.id}`);
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  return (
    <form class="tree-block spawn" onSubmit={submit}>
      <fieldset>
        <legend>Spawn a machine from here</legend>
        <label>
          Type
          <select name="type" value={type} onChange={(e) => setType(e.currentTarget.value as MachineType)}>
            {(types?.items ?? [{ id: 'shell' as const, title: 'Shell', available: true }]).map((t) => (
              <option key={t.id} value={t.id} disabled={!t.available}>
                {t.id}
                {t.available ? '' : ' (unavailable)'}
              </option>
            ))}
          </select>
        </label>
        <label class="wide">
          {type === 'shell' ? 'Command' : 'Prompt'}
          <textarea name="text" rows={3} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <label>
          Money limit
          <input name="money" inputMode="decimal" value={money} onInput={(e) => setMoney(e.currentTarget.value)} />
        </label>
        <label>
          Minutes
          <input name="minutes" type="number" min="1" value={minutes} onInput={(e) => setMinutes(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Starting…' : 'Spawn'}
        </button>
      </fieldset>
      <ErrorNote error={error} />
    </form>
  );
}

/** Every branch (and milestone) as a list: how keyboard and screen-reader users reach any part of the tree. */
function Branches({ layout, onSelect }: { layout: TreeLayout; onSelect: (node: number) => void }) {
  const [shown, setShown] = useState(SHOW_BRANCHES);
  const [goTo, setGoTo] = useState('');
  const [goError, setGoError] = useState<string | null>(null);
  // Newest branches first (by the time of their last checkpoint).
  const order = useMemo(
    () =>
      layout.branches
        .map((_, i) => i)
        .sort((a, b) => (layout.nodes[layout.branches[b]!.last]!.createdAt > layout.nodes[layout.branches[a]!.last]!.createdAt ? 1 : -1)),
    [layout],
  );
  const milestones = useMemo(() => layout.nodes.flatMap((n, i) => (n.milestone ? [i] : [])), [layout]);
  const find = (e: Event) => {
    e.preventDefault();
    const q = goTo.trim();
    const exact = layout.index.get(q);
    const matches = exact !== undefined ? [exact] : q ? layout.nodes.flatMap((n, i) => (shortId(n.id).startsWith(q) || n.id.startsWith(q) ? [i] : [])) : [];
    if (matches.length === 1) {
      setGoError(null);
      onSelect(matches[0]!);
    } else setGoError(matches.length ? `${matches.length} checkpoints start with ${q}: type more of the id.` : `No checkpoint ${q} in this tree.`);
  };
  return (
    <Section title="Branches and milestones">
      <form class="inline-form" onSubmit={find}>
        <label class="inline">
          Go to checkpoint <input name="goto" value={goTo} onInput={(e) => setGoTo(e.currentTarget.value)} placeholder="id or its first characters" />
        </label>
        <button type="submit">Go</button>
        {goError ? (
          <span class="error" role="alert">
            {goError}
          </span>
        ) : null}
      </form>
      {milestones.length ? (
        <>
          <h3>Milestones ({milestones.length})</h3>
          <ul class="chips">
            {milestones.slice(0, 100).map((n) => (
              <li key={n}>
                <button type="button" class="link" onClick={() => onSelect(n)}>
                  {shortId(layout.nodes[n]!.id)}
                </button>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <h3>Branches ({layout.branches.length}), newest first</h3>
      <ul class="branches">
        {order.slice(0, shown).map((b) => {
          const br = layout.branches[b]!;
          const first = layout.nodes[br.first]!;
          const last = layout.nodes[br.last]!;
          const from = layout.parent[br.first]!;
          return (
            <li key={b}>
              {b === 0 ? <strong>Main line</strong> : <>Branch from {shortId(layout.nodes[from]!.id)}</>}, {br.length} checkpoint{br.length === 1 ? '' : 's'}
              {first.machineId ? <> · machine {first.machineId.replace(/^machine-/, '').slice(0, 8)}</> : null} ·{' '}
              <button type="button" class="link" onClick={() => onSelect(br.first)}>
                first {shortId(first.id)}
              </button>{' '}
              <button type="button" class="link" onClick={() => onSelect(br.last)}>
                last {shortId(last.id)}
              </button>{' '}
              <When at={last.createdAt} />
            </li>
          );
        })}
      </ul>
      {order.length > shown ? (
        <button type="button" onClick={() => setShown(shown + 100)}>
          Show more branches ({order.length - shown} left)
        </button>
      ) : null}
    </Section>
  );
}
