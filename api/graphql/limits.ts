import depthLimit from 'graphql-depth-limit';
// The CommonJS build: it shares the `graphql` module instance the schema is built with (the ESM
// build imports graphql's .mjs files, a second copy that refuses this schema's types).
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity/cjs';
import {
  getNamedType,
  getOperationAST,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from 'graphql';
import { requestError } from './errors.js';

/** How deeply fields may nest (introspection fields, `__schema` and the like, are not counted). */
export const MAX_DEPTH = 8;
/** What one operation may cost: a field costs 1, a paged list its items' cost times `first`. */
export const MAX_COMPLEXITY = 5_000;
/** Page size when `first` is not given. */
export const DEFAULT_FIRST = 20;
/** The longest query text accepted (the complexity walk must stay cheap). */
export const MAX_QUERY_CHARS = 20_000;

/** Fields that cost more than one row to answer: a checkpoint's files read and hash every blob of its commit. */
const EXTRA_COST: Record<string, number> = { 'Checkpoint.files': 50 };

/** A field costs 1 and what it selects; a paged list (a `…Connection`) its items' cost once per item it may return. */
const estimator: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  if (!getNamedType(field.type).name.endsWith('Connection')) return 1 + (EXTRA_COST[`${type.name}.${field.name}`] ?? 0) + childComplexity;
  const first = typeof args.first === 'number' && args.first > 0 ? args.first : DEFAULT_FIRST;
  return 1 + childComplexity * first;
};

export interface GraphqlRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

export type Prepared =
  | {
      ok: true;
      document: DocumentNode;
      operation: OperationDefinitionNode;
      variables: Record<string, unknown>;
      operationName: string | undefined;
      complexity: number;
    }
  | { ok: false; errors: readonly GraphQLError[] };

/**
 * Parses and validates one request, with the depth and complexity limits, before anything runs:
 * a query over a limit is refused whole, with a message saying which limit and by how much.
 */
export function prepare(schema: GraphQLSchema, req: GraphqlRequest): Prepared {
  const fail = (message: string, code = 'BAD_REQUEST', ext: Record<string, unknown> = {}) => ({
    ok: false as const,
    errors: [requestError(message, code, ext)],
  });
  if (typeof req.query !== 'string' || !req.query.trim()) return fail('query: give the GraphQL document as a string in "query"');
  if (req.query.length > MAX_QUERY_CHARS) return fail(`query: at most ${MAX_QUERY_CHARS} characters`);
  if (req.variables != null && (typeof req.variables !== 'object' || Array.isArray(req.variables))) return fail('variables: must be an object');
  if (req.operationName != null && typeof req.operationName !== 'string') return fail('operationName: must be a string');
  const variables = (req.variables ?? {}) as Record<string, unknown>;
  const operationName = (req.operationName as string | null | undefined) ?? undefined;

  let document: DocumentNode;
  try {
    document = parse(req.query, { maxTokens: 5_000 });
  } catch (e) {
    return { ok: false, errors: [e instanceof GraphQLError ? withCode(e, 'GRAPHQL_PARSE_FAILED') : requestError(String(e), 'GRAPHQL_PARSE_FAILED')] };
  }
  const depthRule = depthLimit(MAX_DEPTH) as ValidationRule;
  const errors = validate(schema, document, [...specifiedRules, depthRule]);
  if (errors.length) {
    return {
      ok: false,
      errors: errors.map((e) => withCode(e, /exceeds maximum operation depth/.test(e.message) ? 'DEPTH_LIMIT_EXCEEDED' : 'GRAPHQL_VALIDATION_FAILED')),
    };
  }
  const operation = getOperationAST(document, operationName);
  if (!operation)
    return fail(operationName ? `operationName: no operation named "${operationName}"` : 'operationName: the document has several operations: name one');

  let complexity: number;
  try {
    complexity = getComplexity({ schema, query: document, variables, ...(operationName ? { operationName } : {}), estimators: [estimator] });
  } catch (e) {
    // Variables that do not fit their types: execution would say the same.
    return fail(e instanceof Error ? e.message : String(e), 'BAD_USER_INPUT');
  }
  if (complexity > MAX_COMPLEXITY) {
    return fail(
      `query complexity ${complexity} is over the limit of ${MAX_COMPLEXITY}: a field costs 1 and a paged list its items' cost times \`first\` (default ${DEFAULT_FIRST}); ask for smaller pages or fewer nested lists`,
      'COMPLEXITY_LIMIT_EXCEEDED',
      { complexity, maxComplexity: MAX_COMPLEXITY },
    );
  }
  return { ok: true, document, operation, variables, operationName, complexity };
}

function withCode(e: GraphQLError, code: string): GraphQLError {
  const depth = code === 'DEPTH_LIMIT_EXCEEDED';
  const extra = depth ? { maxDepth: MAX_DEPTH } : {};
  const message = depth
    ? `the query nests fields deeper than the limit of ${MAX_DEPTH} levels; ask for less at once (look deeper objects up by id)`
    : e.message;
  return new GraphQLError(message, {
    nodes: e.nodes,
    ...(e.source ? { source: e.source } : {}),
    ...(e.positions ? { positions: e.positions } : {}),
    extensions: { ...e.extensions, code, status: 400, ...extra },
  });
}
