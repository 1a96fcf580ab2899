import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CLI_CLIENT_TYPES, generateCliClientTypes } from '../../scripts/generate-cli-client.js';

/** The CLI's typed client follows the api: an api change without `npm run generate:cli-client` fails here. */
describe('cli: generated client types', function () {
  this.timeout(120_000);

  it('cli/api-types.ts equals a fresh generation from the OpenAPI document', async () => {
    const fresh = await generateCliClientTypes();
    const committed = fs.readFileSync(CLI_CLIENT_TYPES, 'utf8');
    assert.ok(fresh.includes("'/machines/{id}/logs'"), 'the generation covers the document');
    assert.ok(committed === fresh, 'cli/api-types.ts is stale: run `npm run generate:cli-client` and commit it');
  });
});
