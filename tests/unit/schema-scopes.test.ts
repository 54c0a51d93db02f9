import { describe, expect, it } from '@jest/globals';
import {
  type GraphQLNamedType,
  getNamedType,
  isAbstractType,
  GraphQLInterfaceType,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  isInterfaceType,
  isObjectType,
  parse,
} from 'graphql';
import { fieldRequirements, forbiddenSelections, unmetRequirement } from '../../src/auth/operation-scopes';
import { effectiveScopes, SCOPES, type Scope } from '../../src/auth/scopes';
import { schema } from '../../src/graphql/schema';

const ROOTS = [schema.getQueryType()!, schema.getMutationType()!, schema.getSubscriptionType()!];

/** Entry points: what a key may call at all. */
function rootFields() {
  return ROOTS.flatMap((type) =>
    Object.values(type.getFields()).map((field) => ({
      name: `${type.name}.${field.name}`,
      scopes: (field.extensions?.pothosOptions as { authScopes?: Record<string, boolean> } | undefined)
        ?.authScopes,
    })),
  );
}

/** Expected failures carry only what the caller sent; anyone who may call the field may read them. */
const isErrorType = (type: GraphQLNamedType) =>
  type.name === 'FieldError' || (isObjectType(type) && type.getInterfaces().some((i) => i.name === 'Error'));

/**
 * Every field a key holding `held` can select, starting from the root fields it may call and following
 * every field it may select into the types it returns (union members and interface implementations
 * included): "Type.field" for each.
 */
function reachableFields(held: ReadonlySet<Scope>): Set<string> {
  const reached = new Set<string>();
  const seen = new Set<string>();
  const queue: GraphQLObjectType[] = [...ROOTS];
  while (queue.length) {
    const type = queue.shift()!;
    if (seen.has(type.name)) continue;
    seen.add(type.name);
    for (const field of Object.values(type.getFields())) {
      if (unmetRequirement(fieldRequirements(type, field), held)) continue;
      reached.add(`${type.name}.${field.name}`);
      const target = getNamedType(field.type);
      if (isObjectType(target)) queue.push(target);
      else if (isAbstractType(target)) queue.push(...schema.getPossibleTypes(target));
    }
  }
  return reached;
}

const fieldsOf = (typeName: string) =>
  Object.keys((schema.getType(typeName) as GraphQLObjectType).getFields()).map((f) => `${typeName}.${f}`);

/** Reached fields outside the root types and the error types: the data a key can read. */
function dataFields(scope: Scope): string[] {
  return [...reachableFields(effectiveScopes([scope]))]
    .filter((coordinate) => {
      const type = schema.getType(coordinate.split('.')[0])!;
      return !ROOTS.includes(type as GraphQLObjectType) && !isErrorType(type);
    })
    .sort();
}

describe('schema scopes', () => {
  const fields = rootFields();

  it('every query, mutation and subscription declares the scopes that may call it', () => {
    const missing = fields.filter((f) => !f.scopes || Object.keys(f.scopes).length === 0).map((f) => f.name);
    expect(missing).toEqual([]);
  });

  it('declares only known scopes', () => {
    for (const f of fields) for (const scope of Object.keys(f.scopes ?? {})) expect(SCOPES).toContain(scope);
  });

  it('management needs write, assignment and events need assign, reading needs read, keys need admin', () => {
    const of = (name: string) => Object.keys(fields.find((f) => f.name === name)?.scopes ?? {});
    expect(of('Mutation.createExperiment')).toEqual(['write']);
    expect(of('Mutation.startExperiment')).toEqual(['write']);
    expect(of('Mutation.assignVariant')).toEqual(['assign']);
    expect(of('Mutation.recordEvents')).toEqual(['assign']);
    expect(of('Query.experiments')).toEqual(['read']);
    expect(of('Mutation.createApiKey')).toEqual(['admin']);
  });

  it('every object type that holds data declares its scopes on the type (a new one without fails here)', () => {
    const undeclared = Object.values(schema.getTypeMap())
      .filter((type) => isObjectType(type) && !type.name.startsWith('__') && !ROOTS.includes(type))
      .filter((type) => !isErrorType(type))
      .filter((type) => !(type.extensions?.pothosOptions as { authScopes?: object })?.authScopes)
      .map((type) => type.name);
    expect(undeclared).toEqual([]);
  });

  it('every field of every type can be read by some scope, and each declaration is one Pothos enforces', () => {
    for (const type of Object.values(schema.getTypeMap())) {
      if (!(isObjectType(type) || isInterfaceType(type)) || type.name.startsWith('__')) continue;
      // Throws on a declaration the operation check could not evaluate (a function, $all, unknown scope).
      for (const field of Object.values(type.getFields())) fieldRequirements(type, field);
    }
    const admin = reachableFields(effectiveScopes(['admin']));
    const unreachable = Object.values(schema.getTypeMap())
      .filter((type): type is GraphQLObjectType => isObjectType(type) && !type.name.startsWith('__'))
      .flatMap((type) => fieldsOf(type.name))
      .filter((coordinate) => !admin.has(coordinate));
    expect(unreachable).toEqual([]);
  });

  it('assign reaches its assignments (the variant as a client applies it) and its event results, nothing more', () => {
    expect(dataFields('assign')).toEqual(
      [
        ...fieldsOf('Assignment'),
        'Variant.id',
        'Variant.name',
        'Variant.config',
        'Variant.isControl',
        ...fieldsOf('RecordEventSuccess'),
        ...fieldsOf('RecordEventsResult'),
        ...fieldsOf('RejectedEvent'),
        ...fieldsOf('Viewer'),
      ].sort(),
    );
    const roots = [...reachableFields(effectiveScopes(['assign']))].filter((c) =>
      /^(Query|Mutation|Subscription)\./.test(c),
    );
    expect(roots.sort()).toEqual(
      [
        'Query.assignment',
        'Query.viewer',
        'Mutation.assignVariant',
        'Mutation.recordExposure',
        'Mutation.recordConversion',
        'Mutation.recordMetric',
        'Mutation.recordEvents',
      ].sort(),
    );
  });

  it('read reaches experiments, results and users but no mutation, no key and no event result', () => {
    const reached = reachableFields(effectiveScopes(['read']));
    expect([...reached].filter((c) => c.startsWith('Mutation.'))).toEqual([]);
    const data = dataFields('read');
    const types = new Set(data.map((c) => c.split('.')[0]));
    for (const type of ['Experiment', 'Variant', 'AuditEntry', 'ExperimentResults', 'User', 'SampleSizePlan'])
      expect(types).toContain(type);
    for (const type of ['ApiKey', 'CreateApiKeySuccess', 'RecordEventSuccess', 'DeleteExperimentSuccess'])
      expect(types).not.toContain(type);
  });

  it('write adds management (not assignment, events or keys) to read', () => {
    const reached = reachableFields(effectiveScopes(['write']));
    const mutations = [...reached].filter((c) => c.startsWith('Mutation.'));
    expect(mutations).toContain('Mutation.createExperiment');
    expect(mutations).toContain('Mutation.deleteExperiment');
    for (const m of ['assignVariant', 'recordEvents', 'createApiKey', 'revokeApiKey'])
      expect(mutations).not.toContain(`Mutation.${m}`);
    expect(dataFields('write')).toEqual(
      [...dataFields('read'), ...fieldsOf('DeleteExperimentSuccess')].sort(),
    );
  });
});

describe('operation check (before execution)', () => {
  const check = (scopes: Scope[], query: string, operationName?: string) =>
    forbiddenSelections(schema, parse(query), operationName, effectiveScopes(scopes)).map((e) => ({
      message: e.message,
      code: e.extensions.code,
      requiredScopes: e.extensions.requiredScopes,
    }));

  // The attack run's query: an assign key reading a whole experiment through its assignment.
  const LEAK = `mutation {
    assignVariant(experimentKey: "continue-watching-ranking", userId: "probe") {
      ... on Assignment {
        experiment {
          description
          variants { config }
          auditLog { actor action details }
          results(metric: "conversion") { variants { units mean } }
        }
      }
    }
  }`;

  it('refuses an assign key reading an experiment through Assignment.experiment, once', () => {
    expect(check(['assign'], LEAK)).toEqual([
      {
        message: 'Experiment needs the `read` scope; this key has assign',
        code: 'FORBIDDEN',
        requiredScopes: ['read'],
      },
    ]);
    expect(check(['read', 'assign'], LEAK)).toEqual([]);
  });

  it('finds forbidden fields behind named fragments, nested fragments and the other assignment paths', () => {
    const throughFragments = `
      query Q { assignment(experimentKey: "k", userId: "u") { ...A } }
      fragment A on Assignment { variant { ...V } }
      fragment V on Variant { name weight }`;
    expect(check(['assign'], throughFragments).map((e) => e.message)).toEqual([
      'Variant needs the `read` scope; this key has assign',
    ]);
    expect(
      check(['assign'], `query { assignment(experimentKey: "k", userId: "u") { experiment { id } } }`),
    ).toHaveLength(1);
    expect(
      check(
        ['assign'],
        `mutation { assignVariant(experimentKey: "k", userId: "u") { ... on Assignment { variant { id name config isControl } } } }`,
      ),
    ).toEqual([]);
  });

  it('checks every root field of a mutation before any runs, and only the operation asked for', () => {
    const escalation = `mutation {
      a: createExperiment(input: { key: "partial-403", name: "x", variants: [] }) { __typename }
      b: createApiKey(input: { name: "esc", scopes: [ADMIN] }) { __typename }
    }`;
    expect(check(['write'], escalation)).toEqual([
      {
        message: 'Mutation.createApiKey needs the `admin` scope; this key has write, read',
        code: 'FORBIDDEN',
        requiredScopes: ['admin'],
      },
    ]);
    expect(check(['admin'], escalation)).toEqual([]);
    const twoOperations = `query Mine { experiments(first: 1) { totalCount } } query Theirs { apiKeys { id } }`;
    expect(check(['read'], twoOperations, 'Mine')).toEqual([]);
    expect(check(['read'], twoOperations, 'Theirs')).toHaveLength(1);
  });

  it('checks a field selected on an interface against every implementation (the only check below the root fields)', () => {
    // A schema shaped as Pothos builds it: an interface without scopes, one implementation open to read
    // keys and one to admins only. Selecting `name` on the interface may resolve on either.
    const declared = (authScopes?: Record<string, boolean>) => ({
      pothosOptions: authScopes ? { authScopes } : {},
    });
    const Thing: GraphQLInterfaceType = new GraphQLInterfaceType({
      name: 'Thing',
      fields: { name: { type: GraphQLString } },
    });
    const implementation = (name: string, scopes: Record<string, boolean>) =>
      new GraphQLObjectType({
        name,
        interfaces: [Thing],
        extensions: declared(scopes),
        fields: { name: { type: GraphQLString } },
      });
    const shaped = new GraphQLSchema({
      query: new GraphQLObjectType({
        name: 'Query',
        fields: {
          thing: { type: Thing, extensions: declared({ read: true }) },
        },
      }),
      types: [implementation('Open', { read: true }), implementation('Secret', { admin: true })],
    });
    const refusals = (scopes: Scope[], query: string) =>
      forbiddenSelections(shaped, parse(query), null, effectiveScopes(scopes)).map((e) => e.message);
    expect(refusals(['read'], '{ thing { name } }')).toEqual([
      'Secret needs the `admin` scope; this key has read',
    ]);
    expect(refusals(['read'], '{ thing { __typename ... on Open { name } } }')).toEqual([]);
    expect(refusals(['admin'], '{ thing { name } }')).toEqual([]);
  });
});

describe('scope checks while resolving', () => {
  it('stay on every root field, and only there (below them the operation check has refused the operation)', () => {
    const wrapped = (type: GraphQLObjectType) =>
      Object.values(type.getFields()).filter((f) => f.extensions?.pothosResolveWrapped === true).length;
    for (const root of ROOTS) expect(wrapped(root)).toBe(Object.keys(root.getFields()).length);
    // A field that only reads a property runs no resolver at all (graphql-jit reads it directly).
    const experiment = schema.getType('Experiment') as GraphQLObjectType;
    expect(experiment.getFields().key.resolve).toBeUndefined();
    expect(wrapped(experiment)).toBe(0);
  });
});
