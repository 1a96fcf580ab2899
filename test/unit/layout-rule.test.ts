import assert from 'node:assert/strict';
import path from 'node:path';
import { ESLint } from 'eslint';

/** The layout's dependency rule is lint, so it cannot erode: a forbidden import fails `npm run lint`. */
describe('layout dependency rule (eslint.config.js)', function () {
  this.timeout(60_000);
  // The project's config without type information (the rule needs none; type-aware linting of a
  // file that is not on disk would fail before any rule runs).
  const eslint = new ESLint({
    cwd: path.resolve(import.meta.dirname, '..', '..'),
    overrideConfig: {
      languageOptions: { parserOptions: { projectService: false, project: null } },
      rules: { '@typescript-eslint/no-floating-promises': 'off' },
    },
  });
  const lint = async (file: string, code: string) => {
    const [result] = await eslint.lintText(code, { filePath: path.resolve(import.meta.dirname, '..', '..', file) });
    assert.deepEqual(
      result!.messages.filter((m) => m.fatal),
      [],
      `${file} could not be linted`,
    );
    return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
  };

  it('refuses imports against the rule, naming it', async () => {
    const cases: Array<[string, string]> = [
      ['store/example.ts', "import { createApp } from '../api/app.js';\nexport const x = createApp;\n"],
      ['services/example.ts', "import { createActivities } from '../activities/index.js';\nexport const x = createActivities;\n"],
      ['domain/example.ts', "import { appendAudit } from '../store/audit.js';\nexport const x = appendAudit;\n"],
      ['api/routes/example.ts', "import { createWorker } from '../../workers/worker.js';\nexport const x = createWorker;\n"],
      ['workflows/example.ts', "import { createActivities } from '../activities/index.js';\nexport const x = createActivities;\n"],
      ['cli/example.ts', "import { getMachine } from '../store/machines.js';\nexport const x = getMachine;\n"],
      ['cli/commands/example.ts', "import type { Money } from '../../domain/money.js';\nexport type X = Money;\n"],
      ['web/src/example.tsx', "import { createDb } from '../../store/db.js';\nexport const x = createDb;\n"],
      ['web/src/example.ts', "import { apiClient } from '../../cli/client.js';\nexport const x = apiClient;\n"],
      ['web/src/views/example.tsx', "import { MACHINE_TYPES } from '../../../domain/machines.js';\nexport const x = MACHINE_TYPES;\n"],
      ['infra/example.ts', "import { PROFILES } from '../domain/machines.js';\nexport const x = PROFILES;\n"],
    ];
    for (const [file, code] of cases) {
      const messages = await lint(file, code);
      assert.equal(messages.length, 1, `${file}: ${JSON.stringify(messages)}`);
      assert.match(messages[0]!, /may not import|only as types|only the generated/);
    }
  });

  it('allows what the rule allows', async () => {
    const cases: Array<[string, string]> = [
      ['api/routes/example.ts', "import { requestMachine } from '../../services/machines.js';\nexport const x = requestMachine;\n"],
      ['activities/example.ts', "import { appendAudit } from '../store/audit.js';\nexport const x = appendAudit;\n"],
      ['workflows/example.ts', "import type { Activities } from '../activities/index.js';\nexport type X = Activities;\n"],
      ['services/example.ts', "import { appendAudit } from '../store/audit.js';\nexport const x = appendAudit;\n"],
      ['cli/example.ts', "import type { paths } from './api-types.js';\nexport type X = paths;\n"],
      ['web/src/example.ts', "import type { paths } from '../../cli/api-types.js';\nexport type X = paths;\n"],
      ['infra/example.ts', "import { prefix } from './tags.js';\nexport const x = prefix;\n"],
    ];
    for (const [file, code] of cases) assert.deepEqual(await lint(file, code), [], file);
  });
});
