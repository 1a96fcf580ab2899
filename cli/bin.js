#!/usr/bin/env node
// The `autovibe` command: runs the TypeScript CLI (cli/main.ts) through tsx, as the rest of the package runs.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
