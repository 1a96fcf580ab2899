// ESLint (flat config): TypeScript rules with type information, and Temporal's rules for workflow code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

export default tseslint.config(
  { ignores: ['node_modules/**', '.autovibe/**', 'dist/**', 'activities/machines/sandbox-forwarder.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'cli/bin.js'] }, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A dropped promise is a lost error or a step that silently never ran.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  ...layerRules(),
  {
    // Workflow code is replayed: no Node built-ins (I/O, clocks, randomness) may be imported there.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)].map((name) => ({
            name,
            message: 'workflow code must be deterministic: no Node built-ins',
          })),
          patterns: layerPatterns('workflows'),
        },
      ],
    },
  },
);

/**
 * The layout's dependency rule (README "Layout"), enforced: which top-level folders each folder
 * may not import. Entry points (api/main.ts, workers/main.ts, scripts/) compose everything and
 * are exempt; test/ may import anything.
 */
function forbiddenLayers() {
  return {
    domain: ['store', 'api', 'services', 'activities', 'workers', 'workflows', 'fx', 'config', 'scripts'],
    config: ['store', 'api', 'services', 'activities', 'workers', 'workflows', 'fx', 'scripts'],
    fx: ['api', 'services', 'activities', 'workers', 'workflows', 'scripts'],
    store: ['api', 'services', 'activities', 'workers', 'scripts'],
    services: ['api', 'activities', 'workers', 'scripts'],
    activities: ['api', 'workers', 'scripts'],
    api: ['activities', 'workers', 'scripts'],
    workflows: ['store', 'api', 'services', 'workers', 'fx', 'config', 'scripts'],
    workers: ['api', 'scripts'],
    // The CLI is a client of the public REST API only: its one view of the api is cli/api-types.ts,
    // generated from the OpenAPI document.
    cli: ['store', 'services', 'api', 'activities', 'workers', 'workflows', 'domain', 'fx', 'config', 'migrations', 'scripts'],
    // The dashboard likewise: it runs in the browser and knows the api only through cli/api-types.ts (types only).
    web: ['store', 'services', 'api', 'activities', 'workers', 'workflows', 'domain', 'fx', 'config', 'migrations', 'scripts'],
    // The Pulumi program (infra/) deploys the platform; it imports none of it (it runs where the app's dependencies may not).
    infra: ['store', 'services', 'api', 'activities', 'workers', 'workflows', 'domain', 'fx', 'config', 'migrations', 'scripts', 'cli', 'web', 'test'],
  };
}

function layerPatterns(folder) {
  const forbidden = forbiddenLayers()[folder];
  const patterns = [
    {
      regex: `^(\\.\\./)+(${forbidden.join('|')})(/|$)`,
      message: `${folder}/ may not import ${forbidden.join(', ')} (the layout's dependency rule in README "Layout")`,
    },
  ];
  if (folder === 'web') {
    patterns.push({ regex: '^(\\.\\./)+cli/(?!api-types\\.js$)', message: 'web/ may import from cli/ only the generated api-types.js' });
    patterns.push({ regex: '^(\\.\\./)+cli/api-types\\.js$', allowTypeImports: true, message: 'web/ may import cli/api-types.js only as types' });
  }
  // Workflows see activities only as types (proxyActivities<Activities>), never their code.
  if (folder === 'workflows') {
    patterns.push({ regex: '^(\\.\\./)+activities(/|$)', allowTypeImports: true, message: 'workflows/ may import activities/ only as types' });
  }
  return patterns;
}

function layerRules() {
  return Object.keys(forbiddenLayers())
    .filter((folder) => folder !== 'workflows')
    .map((folder) => ({
      files: [`${folder}/**/*.ts`, `${folder}/**/*.tsx`],
      ignores: ['api/main.ts', 'workers/main.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns: layerPatterns(folder) }] },
    }));
}
