import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { apiClient, ApiError, ok, session, type Whoami } from './api.js';
import { startLiveFeed, stopLiveFeed, useLiveState } from './live.js';
import { match, useRoute } from './router.js';
import { SessionContext, type Session } from './session.js';
import { ErrorNote, Loading } from './ui.js';
import { Alerts } from './views/alerts.js';
import { Budgets } from './views/budgets.js';
import { Login } from './views/login.js';
import { Machine } from './views/machine.js';
import { Machines } from './views/machines.js';
import { Objectives } from './views/objectives.js';
import { Payments } from './views/payments.js';
import { Pipeline, Pipelines } from './views/pipelines.js';
import { Project } from './views/project.js';
import { Projects } from './views/projects.js';
import { Tree } from './views/tree.js';
import './styles.css';

type Settings = Session['settings'];

/** The views, by hash path. The first that matches is shown. */
const ROUTES: Array<[pattern: string, view: (params: Record<string, string>) => preact.JSX.Element]> = [
  ['/', () => <Projects />],
  ['/projects/:id', (p) => <Project id={p.id!} />],
  ['/projects/:id/tree', (p) => <Tree id={p.id!} />],
  ['/machines', () => <Machines />],
  ['/machines/:id', (p) => <Machine id={p.id!} />],
  ['/budgets', () => <Budgets />],
  ['/payments', () => <Payments />],
  ['/alerts', () => <Alerts />],
  ['/pipelines', () => <Pipelines />],
  ['/pipelines/:id', (p) => <Pipeline id={p.id!} />],
  ['/projects/:id/objectives', (p) => <Objectives projectId={p.id!} />],
];

const NAV: Array<[href: string, label: string]> = [
  ['#/', 'Projects'],
  ['#/machines', 'Machines'],
  ['#/pipelines', 'Pipelines'],
  ['#/budgets', 'Budgets'],
  ['#/payments', 'Payments'],
  ['#/alerts', 'Alerts'],
];

function App() {
  const [auth, setAuth] = useState<{ key: string; me: Whoami } | null>(null);
  const [settings, setSettings] = useState<Settings | null>(null);
  const [checking, setChecking] = useState(true);
  const [loggedOut, setLoggedOut] = useState<string | undefined>();

  useEffect(() => {
    void fetch('/dashboard.json')
      .then((r) => r.json() as Promise<Settings>)
      .then(setSettings, () => setSettings({ temporalNamespace: 'default' }));
    const key = session.key();
    if (!key) return setChecking(false);
    ok(apiClient(key).GET('/whoami')).then(
      (me) => setAuth({ key, me }),
      (e: Error) => {
        if (e instanceof ApiError && e.status === 401) session.clear();
        setLoggedOut(e.message);
        setChecking(false);
      },
    );
  }, []);
  useEffect(() => {
    if (!auth) return;
    setChecking(false);
    startLiveFeed(auth.key);
    return stopLiveFeed;
  }, [auth]);

  const value = useMemo<Session | null>(
    () =>
      auth && settings
        ? {
            key: auth.key,
            me: auth.me,
            api: apiClient(auth.key),
            settings,
            logout: () => {
              session.clear();
              setAuth(null);
            },
          }
        : null,
    [auth, settings],
  );

  if (checking || (auth && !settings)) return <Loading what="AutoVibe" />;
  if (!value)
    return (
      <Login
        reason={loggedOut}
        onLogin={(key, me, remember) => {
          session.save(key, remember);
          setAuth({ key, me });
        }}
      />
    );
  return (
    <SessionContext.Provider value={value}>
      <Shell />
    </SessionContext.Provider>
  );
}

function Shell() {
  const path = useRoute();
  const live = useLiveState();
  const bare = path.split('?')[0]!;
  let view: preact.JSX.Element | null = null;
  for (const [pattern, make] of ROUTES) {
    const params = match(pattern, bare);
    if (params) {
      view = make(params);
      break;
    }
  }
  return (
    <SessionContext.Consumer>
      {(s) => (
        <>
          <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
            Skip to content
          </a>
          <header class="top">
            <a class="brand" href="#/">
              AutoVibe
            </a>
            <nav aria-label="Main">
              {NAV.map(([href, label]) => (
                <a key={href} href={href} aria-current={`#${bare}` === href ? 'page' : undefined}>
                  {label}
                </a>
              ))}
            </nav>
            <span class={`live live-${live}`} role="status" title="The event stream keeps this page current">
              {live === 'live' ? 'live' : live === 'connecting' ? 'connecting…' : 'reconnecting…'}
            </span>
            <span class="who">
              {s!.me.user.name} · {s!.me.role}
            </span>
            <button type="button" onClick={s!.logout}>
              Log out
            </button>
          </header>
          <main id="main" tabIndex={-1}>
            {view ?? <ErrorNote error={new Error(`Nothing at ${bare}: check the link, or start from Projects.`)} />}
          </main>
        </>
      )}
    </SessionContext.Consumer>
  );
}

render(<App />, document.getElementById('app')!);
