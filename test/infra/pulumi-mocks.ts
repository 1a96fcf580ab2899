/**
 * Runs the infra/ program under Pulumi mocks (no CLI, no AWS account) and records every resource
 * it declares with its inputs. The stack configuration is read from infra/Pulumi.<stack>.yaml, as
 * `pulumi up` would, plus the secrets the CLI would hold.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';

export interface Declared {
  type: string;
  name: string;
  id: string;
  arn: string;
  inputs: Record<string, any>;
  /** The provider reference (`urn::id`) when the resource was given an explicit provider. */
  provider: string | undefined;
}

export const INFRA_DIR = path.resolve(import.meta.dirname, '../../infra');

export const TEST_SECRETS = {
  'autovibe:dbPassword': 'p@ss/word:with+specials',
  'autovibe:adminKey': 'admin-key-0123456789abcdef',
  'autovibe:secretsKey': 'c2VjcmV0cy1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM=',
  'autovibe:temporalApiKey': 'temporal-api-key-secret',
};

/** The stack's configuration as `pulumi config` would hand it to the program (every value a string). */
export function stackConfig(stack: string): Record<string, string> {
  const file = parse(fs.readFileSync(path.join(INFRA_DIR, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(file.config)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return { ...out, ...TEST_SECRETS };
}

async function installMocks(stack: string, config: Record<string, string>, declared: Declared[]): Promise<void> {
  pulumi.runtime.setAllConfig(config, Object.keys(TEST_SECRETS));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const id = `${args.name}_id`;
        const arn = `arn:aws:mock:::${args.type}/${args.name}`;
        declared.push({ type: args.type, name: args.name, id, arn, inputs: args.inputs, provider: args.provider });
        return {
          id,
          state: {
            ...args.inputs,
            arn,
            name: args.inputs.name ?? args.name,
            bucket: args.inputs.bucket ?? `${args.name}-bucket`,
            address: `${args.name}.db.example`,
            port: 5432,
            endpoint: `${args.name}.db.example:5432`,
            dnsName: `${args.name}.elb.example`,
            repositoryUrl: `123456789012.dkr.ecr.example/${args.inputs.name ?? args.name}`,
          },
        };
      },
      call: (args) => args.inputs,
    },
    'autovibe',
    stack,
    false,
  );
}

/** Declares the stack (infra/stack.ts deploy with infra/settings.ts readSettings) and returns what it declared. */
export async function declareStack(stack: string, edit: (config: Record<string, string>) => void = () => {}): Promise<Declared[]> {
  const declared: Declared[] = [];
  const config = stackConfig(stack);
  edit(config);
  await installMocks(stack, config, declared);
  const { readSettings } = await import('../../infra/settings.js');
  const { deploy } = await import('../../infra/stack.js');
  const outputs = deploy(readSettings());
  await settle(outputs);
  return declared;
}

/** Imports the program itself (infra/index.ts) under mocks and returns its exports, resolved. */
export async function importProgram(stack: string): Promise<{ declared: Declared[]; exports: Record<string, unknown> }> {
  const declared: Declared[] = [];
  await installMocks(stack, stackConfig(stack), declared);
  const program = (await import('../../infra/index.js')) as Record<string, unknown>;
  const exports = await settle(program);
  return { declared, exports };
}

/** Waits for every output (so every resource registration) and returns the plain values. */
async function settle(outputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  const plain = await new Promise<Record<string, unknown>>((resolve) => pulumi.output(outputs).apply((v) => resolve(v as Record<string, unknown>)));
  // Resources nothing exported depends on are registered by then too, or within the next turns.
  await pulumi.runtime.disconnect();
  return plain;
}

const awsDir = path.dirname(createRequire(import.meta.url).resolve('@pulumi/aws'));

/** Whether the AWS provider's schema gives this resource type a `tags` argument (read from @pulumi/aws's typings). */
export function isTaggable(type: string): boolean {
  const m = /^aws:([a-zA-Z0-9]+)\/([a-zA-Z0-9]+):([A-Za-z0-9]+)$/.exec(type);
  if (!m) return false;
  const [, module, file, name] = m;
  const dts = fs.readFileSync(path.join(awsDir, module === 'index' ? '' : module!, `${file}.d.ts`), 'utf8');
  const start = dts.indexOf(`export interface ${name}Args {`);
  if (start < 0) throw new Error(`no ${name}Args in @pulumi/aws ${module}/${file}.d.ts`);
  const body = dts.slice(start, dts.indexOf('\n}', start));
  return /^\s+tags\?:/m.test(body);
}

/** Statements of an IAM policy document given as a JSON string input. */
export function statements(policy: unknown): { Effect: string; Action: string | string[]; Resource?: unknown; Condition?: unknown; Principal?: unknown }[] {
  const doc = typeof policy === 'string' ? JSON.parse(policy) : policy;
  return Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
}

export function actions(st: { Action: string | string[] }): string[] {
  return Array.isArray(st.Action) ? st.Action : [st.Action];
}
