import fs from 'node:fs';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { mutationResolvers } from './mutations.js';
import { resolvers } from './resolvers.js';

/** The SDL, the contract: test/api/graphql.test.ts compares the printed schema with a committed snapshot. */
export const SCHEMA_SDL = fs.readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

let schema: GraphQLSchema | undefined;

/** The executable schema (built once per process). */
export function graphqlSchema(): GraphQLSchema {
  schema ??= makeExecutableSchema({
    typeDefs: SCHEMA_SDL,
    resolvers: [resolvers, mutationResolvers],
    resolverValidationOptions: { requireResolversToMatchSchema: 'error' },
  });
  return schema;
}
