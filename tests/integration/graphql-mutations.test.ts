/**
 * Every mutation through `yoga.fetch`: its success type, each typed error it can return, and proof from
 * row counts that a rejected mutation wrote nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { getNamedType, isUnionType } from 'graphql';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { schema } from '../../src/graphql/schema';
import type { App } from '../../src/http/app';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import {
  createRunningExperiment,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';

// Every test makes its own experiments (unique keys) and looks only at them: they run concurrently.
const it = serial.concurrent;

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

/** Rows that belong to one experiment, in every table a mutation can write. */
async function rowsOf(experimentId: string) {
  const [row] = await queryRows<Record<string, number>>(
    handle.db,
    sql`SELECT (SELECT count(*) FROM experiments WHERE id = ${experimentId})::int AS experiments,
               (SELECT count(*) FROM experiment_variants WHERE experiment_id = ${experimentId})::int AS variants,
               (SELECT count(*) FROM experiment_assignments WHERE experiment_id = ${experimentId})::int AS assignments,
               (SELECT count(*) FROM experiment_exposures WHERE experiment_id = ${experimentId})::int AS exposures,
               (SELECT count(*) FROM experiment_conversions WHERE experiment_id = ${experimentId})::int AS conversions,
               (SELECT count(*) FROM audit_log WHERE entity_id = ${experimentId})::int AS audit,
               (SELECT max(updated_at)::text FROM experiments WHERE id = ${experimentId}) AS updated_at,
               (SELECT string_agg(name || ':' || weight || ':' || is_control || ':' || config::text, ',' ORDER BY position)
                  FROM experiment_variants WHERE experiment_id = ${experimentId}) AS variant_state`,
  );
  return row;
}

/** Runs a mutation that must be rejected, and checks the experiment's rows did not change. */
async function rejected(experimentId: string, query: string, variables?: Record<string, unknown>) {
  const before = await rowsOf(experimentId);
  const data = await gqlOk(app, query, variables);
  expect(await rowsOf(experimentId)).toEqual(before);
  return Object.values(data)[0] as Record<string, any>;
}

/** What the tests read of each error type. */
const ERROR_SELECTIONS: Record<string, string> = {
  ValidationError: 'fieldErrors { path message }',
  NotFoundError: 'entity ref',
  ConflictError: 'field',
  InvalidTransitionError: 'from to',
  RuleViolationError: 'rule',
};

/** Selections of every error a management mutation can return (its union lists only those). */
function errorFields(mutation: string): string {
  const union = getNamedType(schema.getMutationType()!.getFields()[mutation].type);
  const types = isUnionType(union) ? union.getTypes().map((t) => t.name) : [];
  const errors = types.filter((name) => name in ERROR_SELECTIONS);
  return `__typename ... on Error { code message } ${errors.map((name) => `... on ${name} { ${ERROR_SELECTIONS[name]} }`).join(' ')}`;
}

/** Selections of every error an event mutation can return. */
const EVENT_ERROR_FIELDS = `
  __typename
  ... on Error { code message }
  ... on ValidationError { fieldErrors { path message } }
  ... on NotFoundError { entity ref }
  ... on NotAssignedError { experimentKey userId }
  ... on VariantMismatchError { assignedVariantId givenVariantId }
`;
const EXPERIMENT = `... on Experiment { id key name description status trafficAllocation hashSeed startAt endAt
  variants { id name weight config isControl position } }`;
const VARIANT = `... on Variant { id name weight config isControl position experiment { id } }`;

async function variantsOf(experimentId: string): Promise<{ id: string; name: string }[]> {
  const data = await gqlOk(app, `query ($id: ID) { experiment(id: $id) { variants { id name } } }`, {
    id: experimentId,
  });
  return data.experiment.variants;
}

describe('createExperiment', () => {
  const CREATE = `mutation ($input: CreateExperimentInput!) { createExperiment(input: $input) { ${EXPERIMENT} ${errorFields('createExperiment')} } }`;

  it('creates a draft with its variants and returns the Experiment', async () => {
    const key = uniqueKey('create');
    const data = await gqlOk(app, CREATE, {
      input: {
        key,
        name: 'Rail ordering',
        description: 'Does ordering matter?',
        trafficAllocation: 0.25,
        hashSeed: 'seed-1',
        variants: [
          { name: 'control', weight: 2, isControl: true, config: { order: 'popular' } },
          { name: 'fresh', config: { order: 'new' } },
        ],
      },
    });
    expect(data.createExperiment).toEqual({
      __typename: 'Experiment',
      id: expect.any(String),
      key,
      name: 'Rail ordering',
      description: 'Does ordering matter?',
      status: 'DRAFT',
      trafficAllocation: 0.25,
      hashSeed: 'seed-1',
      startAt: null,
      endAt: null,
      variants: [
        {
          id: expect.any(String),
          name: 'control',
          weight: 2,
          config: { order: 'popular' },
          isControl: true,
          position: 0,
        },
        {
          id: expect.any(String),
          name: 'fresh',
          weight: 1,
          config: { order: 'new' },
          isControl: false,
          position: 1,
        },
      ],
    });
    expect(await rowsOf(data.createExperiment.id)).toMatchObject({
      experiments: 1,
      variants: 2,
      audit: 1,
    });
  });

  it('returns a ValidationError with a path per bad field, and writes nothing', async () => {
    const key = uniqueKey('invalid');
    const data = await gqlOk(app, CREATE, {
      input: {
        key: 'Not A Slug',
        name: ' ',
        trafficAllocation: 1.5,
        variants: [{ name: 'a' }, { name: 'b', weight: -1, config: [1, 2] }, { name: 'a' }],
      },
    });
    expect(data.createExperiment).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION_FAILED' });
    const paths = data.createExperiment.fieldErrors.map((e: any) => e.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining([
        'input.key',
        'input.name',
        'input.trafficAllocation',
        'input.variants.1.weight',
        'input.variants.1.config',
      ]),
    );
    // Cross-field rules (unique names, one control) are checked once every field is valid.
    const duplicates = await gqlOk(app, CREATE, {
      input: {
        key,
        name: 'x',
        variants: [
          { name: 'a', isControl: true },
          { name: 'a', isControl: true },
        ],
      },
    });
    expect(duplicates.createExperiment.fieldErrors.map((e: any) => e.path)).toEqual([
      ['input', 'variants', '1', 'name'],
      ['input', 'variants'],
    ]);
    for (const e of data.createExperiment.fieldErrors) expect(e.message).toEqual(expect.any(String));
    const again = await gqlOk(app, CREATE, { input: { key, name: 'x', trafficAllocation: 2 } });
    expect(again.createExperiment.fieldErrors).toEqual([
      { path: ['input', 'trafficAllocation'], message: expect.stringMatching(/between 0 and 1/) },
    ]);
    const [row] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${key}`,
    );
    expect(row.n).toBe(0);
  });

  it('returns a ConflictError for a key that exists, and writes nothing', async () => {
    const existing = await createTestExperiment(handle.db);
    const result = await rejected(existing.id, CREATE, { input: { key: existing.key, name: 'Twin' } });
    expect(result).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', field: 'key' });
    expect(result.message).toContain(existing.key);
  });
});

describe('updateExperiment', () => {
  const UPDATE = `mutation ($id: ID!, $input: UpdateExperimentInput!) {
    updateExperiment(id: $id, input: $input) { ${EXPERIMENT} ${errorFields('updateExperiment')} } }`;

  it('changes the given fields and leaves the others', async () => {
    const experiment = await createTestExperiment(handle.db, { description: 'old', hashSeed: 'old-seed' });
    const data = await gqlOk(app, UPDATE, {
      id: experiment.id,
      input: { name: 'Renamed', trafficAllocation: 0.5, hashSeed: null },
    });
    expect(data.updateExperiment).toMatchObject({
      __typename: 'Experiment',
      id: experiment.id,
      name: 'Renamed',
      description: 'old',
      trafficAllocation: 0.5,
      hashSeed: null,
    });
    const cleared = await gqlOk(app, UPDATE, { id: experiment.id, input: { description: null } });
    expect(cleared.updateExperiment).toMatchObject({ name: 'Renamed', description: null });
  });

  it('returns NotFoundError for an unknown id', async () => {
    const id = randomUUID();
    const data = await gqlOk(app, UPDATE, { id, input: { name: 'x' } });
    expect(data.updateExperiment).toMatchObject({
      __typename: 'NotFoundError',
      code: 'NOT_FOUND',
      entity: 'Experiment',
      ref: id,
    });
  });

  it('returns ValidationError for bad values and for an id that is not a UUID, writing nothing', async () => {
    const experiment = await createTestExperiment(handle.db);
    const bad = await rejected(experiment.id, UPDATE, {
      id: experiment.id,
      input: { name: '', trafficAllocation: -0.1 },
    });
    expect(bad.__typename).toBe('ValidationError');
    expect(bad.fieldErrors.map((e: any) => e.path)).toEqual(
      expect.arrayContaining([
        ['input', 'name'],
        ['input', 'trafficAllocation'],
      ]),
    );
    const notUuid = await gqlOk(app, UPDATE, { id: 'abc', input: { name: 'x' } });
    expect(notUuid.updateExperiment).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['id'], message: expect.any(String) }],
    });
  });

  it('returns RuleViolationError READ_ONLY for an archived experiment, writing nothing', async () => {
    const experiment = await createTestExperiment(handle.db);
    await experimentService(handle.db).transition(experiment.id, 'archive');
    const result = await rejected(experiment.id, UPDATE, { id: experiment.id, input: { name: 'x' } });
    expect(result).toMatchObject({
      __typename: 'RuleViolationError',
      code: 'RULE_VIOLATION',
      rule: 'READ_ONLY',
    });
  });
});

describe('lifecycle mutations', () => {
  const lifecycle = (action: string) => `mutation ($id: ID!) { ${action}Experiment(id: $id) {
    ${EXPERIMENT} ... on Experiment { auditLog(first: 1) { action details } } ${errorFields(`${action}Experiment`)} } }`;

  it('start → pause → start → complete → archive, each returning the Experiment', async () => {
    const experiment = await createTestExperiment(handle.db);
    const steps = [
      ['start', 'RUNNING', 'experiment.started'],
      ['pause', 'PAUSED', 'experiment.paused'],
      ['start', 'RUNNING', 'experiment.started'],
      ['complete', 'COMPLETED', 'experiment.completed'],
      ['archive', 'ARCHIVED', 'experiment.archived'],
    ];
    let startAt: string | null = null;
    for (const [action, status, audit] of steps) {
      const data = await gqlOk(app, lifecycle(action), { id: experiment.id });
      const result = data[`${action}Experiment`];
      expect(result).toMatchObject({ __typename: 'Experiment', id: experiment.id, status });
      expect(result.auditLog[0].action).toBe(audit);
      startAt ??= result.startAt;
      // Resuming keeps the first start time.
      expect(result.startAt).toBe(startAt);
      if (status === 'COMPLETED') expect(result.endAt).toEqual(expect.any(String));
    }
    expect((await rowsOf(experiment.id)).audit).toBe(1 + steps.length);
  });

  // Which transitions are refused, and which experiments cannot start, is the service's rule, tested for
  // every case in lifecycle.test.ts; here, how each refusal reaches a client.
  it('a refused transition returns InvalidTransitionError(from, to), writing nothing', async () => {
    const experiment = await createTestExperiment(handle.db);
    const result = await rejected(experiment.id, lifecycle('pause'), { id: experiment.id });
    expect(result).toMatchObject({
      __typename: 'InvalidTransitionError',
      code: 'INVALID_TRANSITION',
      from: 'DRAFT',
      to: 'PAUSED',
    });
    expect(result.message).toEqual(expect.any(String));
  });

  it('start without two variants returns ValidationError on `variants`, writing nothing', async () => {
    const experiment = await createTestExperiment(handle.db, { variants: [{ name: 'only' }] });
    const result = await rejected(experiment.id, lifecycle('start'), { id: experiment.id });
    expect(result).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['variants'], message: expect.stringMatching(/two variants/) }],
    });
  });

  it('returns NotFoundError for an unknown id, for every action', async () => {
    for (const action of ['start', 'pause', 'complete', 'archive']) {
      const id = randomUUID();
      const data = await gqlOk(app, lifecycle(action), { id });
      expect(data[`${action}Experiment`]).toMatchObject({ __typename: 'NotFoundError', ref: id });
    }
  });
});

describe('deleteExperiment', () => {
  const DELETE = `mutation ($id: ID!) { deleteExperiment(id: $id) {
    ... on DeleteExperimentSuccess { deletedId } ${errorFields('deleteExperiment')} } }`;

  it('deletes a draft with its variants and returns DeleteExperimentSuccess', async () => {
    const experiment = await createTestExperiment(handle.db);
    const data = await gqlOk(app, DELETE, { id: experiment.id });
    expect(data.deleteExperiment).toEqual({
      __typename: 'DeleteExperimentSuccess',
      deletedId: experiment.id,
    });
    // The audit trail outlives the experiment (created + deleted).
    expect(await rowsOf(experiment.id)).toMatchObject({ experiments: 0, variants: 0, audit: 2 });
    expect(await gqlOk(app, `query ($id: ID) { experiment(id: $id) { id } }`, { id: experiment.id })).toEqual(
      {
        experiment: null,
      },
    );
  });

  it('deletes an archived experiment with its assignments and events', async () => {
    const experiment = await createRunningExperiment(handle.db);
    await gqlOk(
      app,
      `mutation { assignVariant(experimentKey: "${experiment.key}", userId: "gone") { __typename } }`,
    );
    await gqlOk(
      app,
      `mutation { recordExposure(input: { experimentKey: "${experiment.key}", userId: "gone" }) { __typename } }`,
    );
    const service = experimentService(handle.db);
    await service.transition(experiment.id, 'complete');
    await service.transition(experiment.id, 'archive');
    const data = await gqlOk(app, DELETE, { id: experiment.id });
    expect(data.deleteExperiment.__typename).toBe('DeleteExperimentSuccess');
    expect(await rowsOf(experiment.id)).toMatchObject({ experiments: 0, assignments: 0, exposures: 0 });
  });

  it('refuses a running experiment with InvalidTransitionError(RUNNING → DELETED), writing nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const result = await rejected(experiment.id, DELETE, { id: experiment.id });
    expect(result).toMatchObject({ __typename: 'InvalidTransitionError', from: 'RUNNING', to: 'DELETED' });
  });

  it('returns NotFoundError for an unknown id and ValidationError for a malformed one', async () => {
    const id = randomUUID();
    expect((await gqlOk(app, DELETE, { id })).deleteExperiment).toMatchObject({
      __typename: 'NotFoundError',
      ref: id,
    });
    expect((await gqlOk(app, DELETE, { id: 'nope' })).deleteExperiment).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['id'] }],
    });
  });
});

describe('variant mutations', () => {
  const ADD = `mutation ($experimentId: ID!, $input: VariantInput!) {
    addVariant(experimentId: $experimentId, input: $input) { ${VARIANT} ${errorFields('addVariant')} } }`;
  const UPDATE = `mutation ($id: ID!, $input: UpdateVariantInput!) {
    updateVariant(id: $id, input: $input) { ${VARIANT} ${errorFields('updateVariant')} } }`;
  const REMOVE = `mutation ($id: ID!) { removeVariant(id: $id) { ${VARIANT} ${errorFields('removeVariant')} } }`;

  it('addVariant appends a Variant to a draft', async () => {
    const experiment = await createTestExperiment(handle.db);
    const data = await gqlOk(app, ADD, {
      experimentId: experiment.id,
      input: { name: 'third', weight: 0.25, config: { rail: 3 } },
    });
    expect(data.addVariant).toEqual({
      __typename: 'Variant',
      id: expect.any(String),
      name: 'third',
      weight: 0.25,
      config: { rail: 3 },
      isControl: false,
      position: 2,
      experiment: { id: experiment.id },
    });
    expect((await variantsOf(experiment.id)).map((v) => v.name)).toEqual(['control', 'treatment', 'third']);
  });

  it('addVariant returns ConflictError for a taken name or a second control, writing nothing', async () => {
    const experiment = await createTestExperiment(handle.db);
    expect(
      await rejected(experiment.id, ADD, { experimentId: experiment.id, input: { name: 'treatment' } }),
    ).toMatchObject({ __typename: 'ConflictError', code: 'CONFLICT', field: 'name' });
    expect(
      await rejected(experiment.id, ADD, {
        experimentId: experiment.id,
        input: { name: 'c2', isControl: true },
      }),
    ).toMatchObject({ __typename: 'ConflictError', field: 'isControl' });
  });

  it('addVariant returns ValidationError, NotFoundError and RuleViolationError', async () => {
    const experiment = await createRunningExperiment(handle.db);
    expect(
      await rejected(experiment.id, ADD, {
        experimentId: experiment.id,
        input: { name: 'x', weight: Number.MAX_VALUE },
      }),
    ).toMatchObject({ __typename: 'ValidationError', fieldErrors: [{ path: ['input', 'weight'] }] });
    expect(
      await rejected(experiment.id, ADD, { experimentId: experiment.id, input: { name: 'late' } }),
    ).toMatchObject({ __typename: 'RuleViolationError', rule: 'VARIANTS_FIXED' });
    const id = randomUUID();
    expect((await gqlOk(app, ADD, { experimentId: id, input: { name: 'x' } })).addVariant).toMatchObject({
      __typename: 'NotFoundError',
      entity: 'Experiment',
      ref: id,
    });
  });

  it('updateVariant changes a draft’s variant and returns it', async () => {
    const experiment = await createTestExperiment(handle.db);
    const [, treatment] = await variantsOf(experiment.id);
    const data = await gqlOk(app, UPDATE, {
      id: treatment.id,
      input: { name: 'renamed', weight: 3, config: { strategy: 'v2' } },
    });
    expect(data.updateVariant).toMatchObject({
      __typename: 'Variant',
      id: treatment.id,
      name: 'renamed',
      weight: 3,
      config: { strategy: 'v2' },
      position: 1,
    });
  });

  it('updateVariant on a running experiment: weight yes, name no', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control, treatment] = await variantsOf(experiment.id);
    const ok = await gqlOk(app, UPDATE, { id: treatment.id, input: { weight: 0.1 } });
    expect(ok.updateVariant).toMatchObject({ __typename: 'Variant', weight: 0.1 });
    expect(
      await rejected(experiment.id, UPDATE, { id: treatment.id, input: { name: 'nope' } }),
    ).toMatchObject({
      __typename: 'RuleViolationError',
      rule: 'VARIANT_IDENTITY_FIXED',
    });
    await gqlOk(app, UPDATE, { id: control.id, input: { weight: 0 } });
    expect(await rejected(experiment.id, UPDATE, { id: treatment.id, input: { weight: 0 } })).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['input', 'weight'] }],
    });
  });

  it('updateVariant returns ConflictError, NotFoundError and ValidationError', async () => {
    const experiment = await createTestExperiment(handle.db);
    const [control, treatment] = await variantsOf(experiment.id);
    expect(
      await rejected(experiment.id, UPDATE, { id: treatment.id, input: { name: control.name } }),
    ).toMatchObject({
      __typename: 'ConflictError',
      field: 'name',
    });
    expect(
      await rejected(experiment.id, UPDATE, { id: treatment.id, input: { isControl: true } }),
    ).toMatchObject({
      __typename: 'ConflictError',
      field: 'isControl',
    });
    expect(
      await rejected(experiment.id, UPDATE, { id: treatment.id, input: { config: 'flat' } }),
    ).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['input', 'config'] }],
    });
    const id = randomUUID();
    expect((await gqlOk(app, UPDATE, { id, input: { weight: 1 } })).updateVariant).toMatchObject({
      __typename: 'NotFoundError',
      entity: 'Variant',
      ref: id,
    });
  });

  it('removeVariant returns the removed Variant of a draft', async () => {
    const experiment = await createTestExperiment(handle.db);
    const [, treatment] = await variantsOf(experiment.id);
    const data = await gqlOk(app, REMOVE, { id: treatment.id });
    expect(data.removeVariant).toMatchObject({ __typename: 'Variant', id: treatment.id, name: 'treatment' });
    expect((await variantsOf(experiment.id)).map((v) => v.name)).toEqual(['control']);
  });

  it('removeVariant refuses a running experiment and unknown ids, writing nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control] = await variantsOf(experiment.id);
    expect(await rejected(experiment.id, REMOVE, { id: control.id })).toMatchObject({
      __typename: 'RuleViolationError',
      rule: 'VARIANTS_FIXED',
    });
    expect((await gqlOk(app, REMOVE, { id: randomUUID() })).removeVariant.__typename).toBe('NotFoundError');
    expect((await gqlOk(app, REMOVE, { id: 'x' })).removeVariant).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['id'] }],
    });
  });
});

describe('assignVariant', () => {
  const ASSIGN = `mutation ($key: String!, $userId: String!) { assignVariant(experimentKey: $key, userId: $userId) {
    __typename
    ... on Assignment { experimentKey userId enrolled reason assignedAt experiment { id } variant { id name config } }
    ... on ValidationError { code message fieldErrors { path message } } } }`;

  it('assigns a user once and returns the same variant afterwards', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const first = await gqlOk(app, ASSIGN, { key: experiment.key, userId: 'sticky-user' });
    expect(first.assignVariant).toMatchObject({
      __typename: 'Assignment',
      experimentKey: experiment.key,
      userId: 'sticky-user',
      enrolled: true,
      reason: 'ASSIGNED',
      assignedAt: expect.any(String),
      experiment: { id: experiment.id },
      variant: { id: expect.any(String), config: expect.any(Object) },
    });
    const second = await gqlOk(app, ASSIGN, { key: experiment.key, userId: 'sticky-user' });
    expect(second.assignVariant).toEqual({ ...first.assignVariant, reason: 'EXISTING' });
    expect((await rowsOf(experiment.id)).assignments).toBe(1);
  });

  it('does not enroll in a draft or an unknown experiment, and stores nothing', async () => {
    const draft = await createTestExperiment(handle.db);
    const result = await rejected(draft.id, ASSIGN, { key: draft.key, userId: 'u1' });
    expect(result).toMatchObject({
      __typename: 'Assignment',
      enrolled: false,
      reason: 'NOT_RUNNING',
      variant: null,
    });
    const missing = await gqlOk(app, ASSIGN, { key: uniqueKey('missing'), userId: 'u1' });
    expect(missing.assignVariant).toMatchObject({ reason: 'NOT_FOUND', experiment: null, variant: null });
  });

  it('leaves users outside the traffic allocation unassigned', async () => {
    const experiment = await createRunningExperiment(handle.db, { trafficAllocation: 0 });
    const result = await rejected(experiment.id, ASSIGN, { key: experiment.key, userId: 'outsider' });
    expect(result).toMatchObject({
      enrolled: false,
      reason: 'OUTSIDE_TRAFFIC',
      variant: null,
      assignedAt: null,
    });
  });

  it('returns ValidationError for an empty or overlong userId, storing nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    for (const userId of ['', 'x'.repeat(257)]) {
      const result = await rejected(experiment.id, ASSIGN, { key: experiment.key, userId });
      expect(result).toMatchObject({
        __typename: 'ValidationError',
        fieldErrors: [{ path: ['userId'], message: expect.any(String) }],
      });
    }
  });
});

describe('event mutations', () => {
  const RESULT = `... on RecordEventSuccess { eventId duplicate experimentId variantId } ${EVENT_ERROR_FIELDS}`;
  const EXPOSURE = `mutation ($input: RecordExposureInput!) { recordExposure(input: $input) { ${RESULT} } }`;
  const CONVERSION = `mutation ($input: RecordConversionInput!) { recordConversion(input: $input) { ${RESULT} } }`;
  const METRIC = `mutation ($input: RecordMetricInput!) { recordMetric(input: $input) { ${RESULT} } }`;

  async function assigned() {
    const experiment = await createRunningExperiment(handle.db);
    const userId = `user-${randomUUID()}`;
    const data = await gqlOk(
      app,
      `mutation ($key: String!, $userId: String!) { assignVariant(experimentKey: $key, userId: $userId) {
         ... on Assignment { variant { id } } } }`,
      { key: experiment.key, userId },
    );
    const variants = await variantsOf(experiment.id);
    const variantId: string = data.assignVariant.variant.id;
    const other = variants.find((v) => v.id !== variantId)!.id;
    return { experiment, userId, variantId, other };
  }

  it('recordExposure stores an exposure for the stored assignment; a retry is a duplicate', async () => {
    const { experiment, userId, variantId } = await assigned();
    const eventId = randomUUID();
    const input = { experimentKey: experiment.key, userId, eventId, metadata: { surface: 'home' } };
    const first = await gqlOk(app, EXPOSURE, { input });
    expect(first.recordExposure).toEqual({
      __typename: 'RecordEventSuccess',
      eventId,
      duplicate: false,
      experimentId: experiment.id,
      variantId,
    });
    const retry = await gqlOk(app, EXPOSURE, { input });
    expect(retry.recordExposure).toMatchObject({ eventId, duplicate: true });
    expect((await rowsOf(experiment.id)).exposures).toBe(1);
    const generated = await gqlOk(app, EXPOSURE, { input: { experimentKey: experiment.key, userId } });
    expect(generated.recordExposure).toMatchObject({ duplicate: false, eventId: expect.any(String) });
    expect(generated.recordExposure.eventId).not.toBe(eventId);
  });

  it('recordExposure with a variantId and no assignment records the assignment too', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [, treatment] = await variantsOf(experiment.id);
    const data = await gqlOk(app, EXPOSURE, {
      input: { experimentKey: experiment.key, userId: 'sdk-user', variantId: treatment.id },
    });
    expect(data.recordExposure).toMatchObject({ __typename: 'RecordEventSuccess', variantId: treatment.id });
    expect(await rowsOf(experiment.id)).toMatchObject({ assignments: 1, exposures: 1 });
  });

  it('recordConversion stores a conversion with its value', async () => {
    const { experiment, userId, variantId } = await assigned();
    const occurredAt = new Date(Date.now() - 60_000).toISOString();
    const data = await gqlOk(app, CONVERSION, {
      input: { experimentKey: experiment.key, userId, metricName: 'watch_minutes', value: 42.5, occurredAt },
    });
    expect(data.recordConversion).toMatchObject({
      __typename: 'RecordEventSuccess',
      duplicate: false,
      variantId,
    });
    const [row] = await queryRows<{ metric_name: string; value: number; occurred_at: string }>(
      handle.db,
      sql`SELECT metric_name, value, occurred_at FROM experiment_conversions WHERE event_id = ${data.recordConversion.eventId}`,
    );
    expect(row.metric_name).toBe('watch_minutes');
    expect(Number(row.value)).toBe(42.5);
    expect(new Date(row.occurred_at).toISOString()).toBe(occurredAt);
  });

  it('recordMetric routes `exposure` to exposures and other names to conversions', async () => {
    const { experiment, userId, variantId } = await assigned();
    const exposure = await gqlOk(app, METRIC, {
      input: { experimentId: experiment.id, userId, metricName: 'exposure' },
    });
    const conversion = await gqlOk(app, METRIC, {
      input: { experimentId: experiment.id, userId, metricName: 'conversion', value: 1 },
    });
    expect(exposure.recordMetric).toMatchObject({ __typename: 'RecordEventSuccess', variantId });
    expect(conversion.recordMetric).toMatchObject({ __typename: 'RecordEventSuccess', variantId });
    expect(await rowsOf(experiment.id)).toMatchObject({ exposures: 1, conversions: 1 });
  });

  it('returns NotAssignedError when no variant is named and the user has none, writing nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    for (const [query, input] of [
      [EXPOSURE, { experimentKey: experiment.key, userId: 'stranger' }],
      [CONVERSION, { experimentKey: experiment.key, userId: 'stranger', metricName: 'conversion' }],
      [METRIC, { experimentId: experiment.id, userId: 'stranger', metricName: 'conversion' }],
    ] as const) {
      const result = await rejected(experiment.id, query, { input });
      expect(result).toMatchObject({
        __typename: 'NotAssignedError',
        code: 'NOT_ASSIGNED',
        experimentKey: experiment.key,
        userId: 'stranger',
      });
    }
  });

  it('returns VariantMismatchError when the event names another variant, writing nothing', async () => {
    const { experiment, userId, variantId, other } = await assigned();
    for (const [query, input] of [
      [EXPOSURE, { experimentKey: experiment.key, userId, variantId: other }],
      [CONVERSION, { experimentKey: experiment.key, userId, variantId: other, metricName: 'conversion' }],
      [METRIC, { experimentId: experiment.id, userId, variantId: other, metricName: 'exposure' }],
    ] as const) {
      const result = await rejected(experiment.id, query, { input });
      expect(result).toMatchObject({
        __typename: 'VariantMismatchError',
        code: 'VARIANT_MISMATCH',
        assignedVariantId: variantId,
        givenVariantId: other,
      });
    }
  });

  it('returns NotFoundError for an unknown experiment', async () => {
    const key = uniqueKey('missing');
    const exposure = await gqlOk(app, EXPOSURE, { input: { experimentKey: key, userId: 'u' } });
    expect(exposure.recordExposure).toMatchObject({
      __typename: 'NotFoundError',
      entity: 'Experiment',
      ref: key,
    });
    const id = randomUUID();
    const metric = await gqlOk(app, METRIC, {
      input: { experimentId: id, userId: 'u', metricName: 'conversion' },
    });
    expect(metric.recordMetric).toMatchObject({ __typename: 'NotFoundError', ref: id });
  });

  it('returns ValidationError for bad input, with paths under `input`, writing nothing', async () => {
    const { experiment, userId } = await assigned();
    const exposure = await rejected(experiment.id, EXPOSURE, {
      input: { experimentKey: experiment.key, userId, eventId: 'not-a-uuid', metadata: [1] },
    });
    expect(exposure.__typename).toBe('ValidationError');
    expect(exposure.fieldErrors.map((e: any) => e.path)).toEqual(
      expect.arrayContaining([
        ['input', 'eventId'],
        ['input', 'metadata'],
      ]),
    );
    const conversion = await rejected(experiment.id, CONVERSION, {
      input: { experimentKey: experiment.key, userId, metricName: 'exposure' },
    });
    expect(conversion).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['input', 'metricName'], message: expect.stringMatching(/reserved/) }],
    });
    const future = await rejected(experiment.id, CONVERSION, {
      input: {
        experimentKey: experiment.key,
        userId,
        metricName: 'conversion',
        occurredAt: new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString(),
      },
    });
    expect(future).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['input', 'occurredAt'] }],
    });
    const metric = await rejected(experiment.id, METRIC, {
      input: { experimentId: experiment.id, userId: '', metricName: 'Bad Name' },
    });
    expect(metric.fieldErrors.map((e: any) => e.path)).toEqual(
      expect.arrayContaining([
        ['input', 'userId'],
        ['input', 'metricName'],
      ]),
    );
  });

  it('returns ValidationError for a variant of another experiment, writing nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const elsewhere = await createRunningExperiment(handle.db);
    const [foreign] = await variantsOf(elsewhere.id);
    const result = await rejected(experiment.id, EXPOSURE, {
      input: { experimentKey: experiment.key, userId: 'u', variantId: foreign.id },
    });
    expect(result).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['input', 'variantId'] }],
    });
  });

  it('rejects a malformed DateTime as a request error, not a masked one', async () => {
    const { experiment, userId } = await assigned();
    const body = await gql(app, EXPOSURE, {
      input: { experimentKey: experiment.key, userId, occurredAt: 'yesterday' },
    });
    expect(body.data).toBeUndefined();
    expect(body.errors![0].message).toMatch(/occurredAt|DateTime/);
    expect(body.errors![0].extensions?.code).not.toBe('INTERNAL_SERVER_ERROR');
  });
});
