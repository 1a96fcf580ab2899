import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFile } from 'node:fs/promises';
import express, { type Router } from 'express';
import * as esbuild from 'esbuild';
import type { Logger } from 'pino';

/** web/: the dashboard's sources, bundled in memory when the api starts (no build step, no build output to go stale). */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'web');

interface Bundle {
  files: Map<string, { body: Buffer; type: string }>;
}

/** Bundles web/src/main.tsx (and the CSS it imports) with esbuild: one script, one stylesheet. */
export async function buildDashboard(): Promise<Bundle> {
  const result = await esbuild.build({
    entryPoints: [path.join(WEB_DIR, 'src', 'main.tsx')],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    outdir: '/assets',
    entryNames: 'app',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    loader: { '.css': 'css' },
    logLevel: 'silent',
  });
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const f of result.outputFiles) {
    const type = f.path.endsWith('.js') ? 'text/javascript' : f.path.endsWith('.css') ? 'text/css' : 'application/json';
    files.set(f.path, { body: Buffer.from(f.contents), type });
  }
  const html = await readFile(path.join(WEB_DIR, 'index.html'));
  files.set('/', { body: html, type: 'text/html; charset=utf-8' });
  return { files };
}

/** What the dashboard needs to know about this deployment that the API does not say (no secrets). */
export interface DashboardSettings {
  temporalUiUrl: string | undefined;
  temporalNamespace: string;
}

/**
 * The web dashboard at `/`: the page, its bundle under `/assets/`, and `/dashboard.json`. The page
 * talks to the public `/v1` API only, with the API key the user logs in with. The bundle is built
 * once, on the first request (a few hundred ms), so a process that never serves the page never pays.
 */
export function dashboardRoutes(settings: DashboardSettings, log: Pick<Logger, 'error'>): Router {
  const router = express.Router();
  let bundle: Promise<Bundle> | null = null;
  const load = () =>
    (bundle ??= buildDashboard().catch((err: Error) => {
      bundle = null;
      log.error({ err: err.message }, 'the dashboard bundle did not build');
      throw err;
    }));
  router.use((_req, res, next) => {
    // The page runs only its own script and talks only to this origin (REST, event stream, logs).
    res.set(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Referrer-Policy', 'no-referrer');
    next();
  });
  router.get('/dashboard.json', (_req, res) => void res.json(settings));
  const serve =
    (name: string): express.RequestHandler =>
    async (_req, res, next) => {
      try {
        const file = (await load()).files.get(name);
        if (!file) return next();
        res
          .type(file.type)
          .set('Cache-Control', name === '/' ? 'no-cache' : 'public, max-age=300')
          .send(file.body);
      } catch (err) {
        next(err);
      }
    };
  router.get('/', serve('/'));
  router.get('/assets/:file', (req, res, next) => serve(`/assets/${req.params.file}`)(req, res, next));
  return router;
}
