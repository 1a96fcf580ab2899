import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ConfigError, loadConfig } from '../../config/index.js';
import { secretKeysOf } from '../../config/secrets-key.js';
import { createBackup } from '../../store/backups.js';
import { createDb, migrateLatest, type Db } from '../../store/db.js';
import { getGitRemote, putGitRemote } from '../../store/git-remotes.js';
import { getIntegration, putIntegration } from '../../store/integrations.js';
import {
  gitRemoteTokenContext,
  openSecret,
  registerSecretKeys,
  resealSecrets,
  sealSecret,
  SecretKeyError,
  secretKeyId,
  startSecretStore,
  unknownSecretKeyIds,
} from '../../store/secrets.js';
import { insertWebhookEndpoint, rotateWebhookSecret, signingSecrets, slackBotToken } from '../../store/webhooks.js';
import { freshDatabase } from '../support/platform.js';
import { insertBareProject } from '../support/bare-project.js';

/** Every sealed column's raw values, as the database (and a dump of it) holds them. */
async function rawSecrets(db: Db): Promise<string[]> {
  const rows = [
    ...(await db('webhook_endpoints').select('secret', 'previous_secret', 'bot_token')),
    ...(await db('project_integrations').select('token', 'webhook_secret')),
    ...(await db('project_git_remotes').select('token')),
  ];
  return rows.flatMap((r) => Object.values(r)).filter((v): v is string => typeof v === 'string');
}

describe('secrets at rest (store/secrets.ts) on real Postgres', function () {
  this.timeout(120_000);
  let db: Db;
  let home: string;
  let projectId: string;
  const GIT_TOKEN = 'ghp_gitRemoteToken0123456789';
  const TRACKER_TOKEN = 'jira-api-token-abcdef';
  const HOOK_SECRET = 'tracker-hook-secret-987';
  const BOT_TOKEN = 'xoxb-slack-bot-token-42';

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-secrets-'));
    db = await createDb({ databaseUrl: await freshDatabase('secrets') });
    await migrateLatest(db);
    await startSecretStore(db, secretKeysOf({ home, secretsKeys: null }));
    projectId = await insertBareProject(db, { name: 'secrets' });
  });
  after(async () => {
    await db?.destroy();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('keeps the key in a 0600 file in the home and reuses it at the next start', function () {
    const file = path.join(home, 'secrets-key');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(secretKeysOf({ home, secretsKeys: null }), secretKeysOf({ home, secretsKeys: null }));
  });

  it('writes only ciphertext, reads the plaintext back, and a database dump holds none of it', async function () {
    const endpoint = await insertWebhookEndpoint(db, {
      id: `webhook-${crypto.randomUUID()}`,
      projectId,
      kind: 'slack-bot',
      url: 'https://slack.example/api/chat.postMessage',
      description: '',
      eventKinds: ['*'],
      createdBy: 'test',
      slackBot: { channel: '#builds', token: BOT_TOKEN },
    });
    await putIntegration(db, {
      id: `integration-${crypto.randomUUID()}`,
      projectId,
      kind: 'jira',
      config: {},
      token: TRACKER_TOKEN,
      webhookSecret: HOOK_SECRET,
      updatedBy: 'test',
    });
    await putGitRemote(db, { projectId, url: 'https://git.example/r.git', username: 'robot', token: GIT_TOKEN, updatedBy: 'test' });

    const raw = await rawSecrets(db);
    assert.equal(raw.length, 5);
    for (const v of raw) {
      assert.match(v, /^avs1:[0-9a-f]{16}:/);
      for (const plain of [endpoint.secret, BOT_TOKEN, TRACKER_TOKEN, HOOK_SECRET, GIT_TOKEN]) assert.ok(!v.includes(plain), 'a plaintext secret in the row');
    }
    assert.deepEqual(await signingSecrets(db, endpoint.endpoint.id, new Date()), [endpoint.secret]);
    assert.equal(await slackBotToken(db, endpoint.endpoint.id), BOT_TOKEN);
    const integration = (await db('project_integrations').where({ project_id: projectId }).first('id')).id as string;
    const read = (await getIntegration(db, integration))!;
    assert.deepEqual([read.token, read.webhookSecret], [TRACKER_TOKEN, HOOK_SECRET]);
    assert.equal((await getGitRemote(db, projectId))!.token, GIT_TOKEN);

    // A rotation moves the sealed current secret aside: both still sign during the grace period.
    const rotated = (await rotateWebhookSecret(db, endpoint.endpoint.id, new Date(Date.now() + 60_000)))!;
    assert.deepEqual(await signingSecrets(db, endpoint.endpoint.id, new Date()), [rotated, endpoint.secret]);

    const dumpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'autovibe-secrets-dump-'));
    try {
      const manifest = await createBackup(
        db,
        { projectsDir: path.join(home, 'projects'), snapshotsDir: path.join(home, 'snapshots') },
        dumpDir,
        'backup-secrets',
        new Date(),
      );
      assert.ok(manifest.id, 'the dump was made');
      const dumped = fs
        .readdirSync(dumpDir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => {
          const bytes = fs.readFileSync(path.join(e.parentPath, e.name));
          return (e.name.endsWith('.gz') ? zlib.gunzipSync(bytes) : bytes).toString('latin1');
        })
        .join('\n');
      assert.match(dumped, /avs1:[0-9a-f]{16}:/, 'the sealed values are in the dump');
      for (const plain of [endpoint.secret, rotated, BOT_TOKEN, TRACKER_TOKEN, HOOK_SECRET, GIT_TOKEN])
        assert.ok(!dumped.includes(plain), 'a plaintext secret in the dump');
    } finally {
      fs.rmSync(dumpDir, { recursive: true, force: true });
    }
  });

  it('refuses a value moved to another row, or altered', async function () {
    const sealed = sealSecret(GIT_TOKEN, gitRemoteTokenContext(projectId));
    assert.equal(openSecret(sealed, gitRemoteTokenContext(projectId)), GIT_TOKEN);
    assert.throws(() => openSecret(sealed, gitRemoteTokenContext('project-other')), /altered or belongs to another row/);
    const parts = sealed.split(':');
    parts[4] = Buffer.from('x' + Buffer.from(parts[4]!, 'base64url').toString('latin1').slice(1), 'latin1').toString('base64url');
    assert.throws(() => openSecret(parts.join(':'), gitRemoteTokenContext(projectId)), SecretKeyError);
  });

  it('seals plaintext written before sealing existed, and re-seals under a new key first in the list', async function () {
    await db('project_git_remotes').where({ project_id: projectId }).update({ token: GIT_TOKEN });
    assert.equal((await getGitRemote(db, projectId))!.token, GIT_TOKEN, 'legacy plaintext still reads');
    assert.equal(await resealSecrets(db), 1);
    const sealed = (await db('project_git_remotes').where({ project_id: projectId }).first('token')).token as string;
    assert.match(sealed, /^avs1:/);

    const oldKey = secretKeysOf({ home, secretsKeys: null })[0]!;
    const newKey = crypto.randomBytes(32);
    registerSecretKeys([newKey, oldKey]);
    try {
      assert.equal(await resealSecrets(db), 6, 'every sealed value moves to the new key');
      for (const v of await rawSecrets(db)) assert.ok(v.startsWith(`avs1:${secretKeyId(newKey)}:`), v.slice(0, 30));
      assert.equal((await getGitRemote(db, projectId))!.token, GIT_TOKEN);
      assert.equal(await resealSecrets(db), 0, 'nothing left to re-seal');
    } finally {
      registerSecretKeys([oldKey, newKey]);
      await resealSecrets(db);
    }
  });

  it('refuses to start on a database holding values sealed with a key this host lacks, naming the setting', async function () {
    const foreign = `avs1:${'ab'.repeat(8)}:AAAA:AAAA:AAAA`;
    await db('project_git_remotes').where({ project_id: projectId }).update({ token: foreign });
    try {
      assert.deepEqual(await unknownSecretKeyIds(db), ['ab'.repeat(8)]);
      await assert.rejects(
        () => startSecretStore(db, secretKeysOf({ home, secretsKeys: null })),
        (err: Error) => {
          assert.ok(err instanceof SecretKeyError);
          assert.match(err.message, /abababababababab.*AUTOVIBE_SECRETS_KEY/);
          return true;
        },
      );
      await assert.rejects(() => getGitRemote(db, projectId), /does not hold: give every api and worker host the same AUTOVIBE_SECRETS_KEY/);
    } finally {
      await putGitRemote(db, { projectId, url: 'https://git.example/r.git', username: 'robot', token: GIT_TOKEN, updatedBy: 'test' });
    }
  });

  it('takes AUTOVIBE_SECRETS_KEY as comma-separated 32-byte keys and names what is wrong with a bad one', function () {
    const a = crypto.randomBytes(32).toString('base64');
    const b = crypto.randomBytes(32).toString('base64');
    const config = loadConfig({ AUTOVIBE_HOME: home, AUTOVIBE_SECRETS_KEY: `${a}, ${b}` });
    assert.deepEqual(
      secretKeysOf(config).map((k) => k.toString('base64')),
      [a, b],
    );
    assert.throws(
      () => loadConfig({ AUTOVIBE_HOME: home, AUTOVIBE_SECRETS_KEY: 'too-short' }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /AUTOVIBE_SECRETS_KEY must be one or more comma-separated keys of 32 bytes in base64/);
        return true;
      },
    );
  });
});
