/**
 * Every input rule, with the path and message a client gets back, and proof that a rejected call wrote
 * nothing. Paths start at the argument name, as the GraphQL layer reports them.
 */
import { afterAll, beforeAll, describe, expect, it as serial } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { assignVariant } from '../../src/assignments/service';
import { ValidationError } from '../../src/common/errors';
import { queryRows, type Database, type DatabaseHandle } from '../../src/db/client';
import { recordConversion, recordExposure, recordMetric } from '../../src/events/service';
import * as repo from '../../src/experiments/repository';
import type { CreateExperimentInput } from '../../src/experiments/service';
import { openTestDatabase } from '../support/db';
import {
  createRunningExperiment,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import { rowCounts } from '../support/rows';

// Every test makes its own experiments (unique keys) and looks only at them: they run concurrently.
const it = serial.concurrent;

let handle: DatabaseHandle;
let db: Database;

beforeAll(async () => {
  handle = await openTestDatabase();
  db = handle.db;
});
afterAll(async () => handle.close());

const service = () => experimentService(db, 'validation-tester');
const SLUG_MESSAGE = (what: string) =>
  `${what} must start with a lowercase letter or digit and contain only a-z, 0-9, "_", "." and "-"`;
const over64KB = { blob: 'x'.repeat(64 * 1024) };
const over16KB = { blob: 'x'.repeat(16 * 1024) };
const inTwoDays = () => new Date(Date.now() + 2 * 24 * 3600 * 1000);

/** Awaits a call that must fail validation on exactly one field, with that message among its errors. */
async function expectInvalid(
  call: Promise<unknown>,
  path: string[],
  message: string,
): Promise<ValidationError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ValidationError);
  const { fieldErrors, code } = err as ValidationError;
  expect(code).toBe('VALIDATION_FAILED');
  expect(fieldErrors).toContainEqual({ path, message });
  expect([...new Set(fieldErrors.map((e) => e.path.join('.')))]).toEqual([path.join('.')]);
  return err as ValidationError;
}

/** Audit rows that mention a key: a rejected create must not leave one behind. */
async function auditRowsForKey(key: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    db,
    sql`SELECT count(*)::int AS n FROM audit_log WHERE details->'after'->>'key' = ${key}`,
  );
  return row.n;
}

const validCreate = (overrides: Partial<CreateExperimentInput> = {}): CreateExperimentInput => ({
  key: uniqueKey('val'),
  name: 'Validation',
  variants: [
    { name: 'control', weight: 1, isControl: true },
    { name: 'treatment', weight: 1 },
  ],
  ...overrides,
});

const withVariant = (index: number, patch: Record<string, unknown>) =>
  validCreate().variants!.map((v, i) => (i === index ? { ...v, ...patch } : v));

describe('createExperiment', () => {
  const rules: [string, Partial<CreateExperimentInput>, string[], string][] = [
    ['key with upper case', { key: 'Bad-Key' }, ['input', 'key'], SLUG_MESSAGE('key')],
    ['key with a space', { key: 'bad key' }, ['input', 'key'], SLUG_MESSAGE('key')],
    ['key starting with a dash', { key: '-bad' }, ['input', 'key'], SLUG_MESSAGE('key')],
    ['empty key', { key: '' }, ['input', 'key'], SLUG_MESSAGE('key')],
    [
      'key of 129 characters',
      { key: 'k'.repeat(129) },
      ['input', 'key'],
      'key must be at most 128 characters',
    ],
    ['empty name', { name: '' }, ['input', 'name'], 'name must not be empty'],
    ['blank name', { name: '   ' }, ['input', 'name'], 'name must not be empty'],
    [
      'name of 256 characters',
      { name: 'n'.repeat(256) },
      ['input', 'name'],
      'name must be at most 255 characters',
    ],
    [
      'description of 10,001 characters',
      { description: 'd'.repeat(10_001) },
      ['input', 'description'],
      'description must be at most 10000 characters',
    ],
    [
      'trafficAllocation below 0',
      { trafficAllocation: -0.01 },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be between 0 and 1',
    ],
    [
      'trafficAllocation above 1',
      { trafficAllocation: 1.01 },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be between 0 and 1',
    ],
    [
      'trafficAllocation NaN',
      { trafficAllocation: Number.NaN },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be a finite number',
    ],
    [
      'trafficAllocation Infinity',
      { trafficAllocation: Number.POSITIVE_INFINITY },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be a finite number',
    ],
    [
      'empty hashSeed',
      { hashSeed: '' },
      ['input', 'hashSeed'],
      'hashSeed must not be empty (use null to hash with the key)',
    ],
    [
      'hashSeed of 257 characters',
      { hashSeed: 's'.repeat(257) },
      ['input', 'hashSeed'],
      'hashSeed must be at most 256 characters',
    ],
    [
      'negative weight',
      { variants: withVariant(1, { weight: -1 }) },
      ['input', 'variants', '1', 'weight'],
      'weight must be between 0 and 1000000',
    ],
    [
      'weight above 1,000,000',
      { variants: withVariant(1, { weight: 1_000_001 }) },
      ['input', 'variants', '1', 'weight'],
      'weight must be between 0 and 1000000',
    ],
    [
      'weight NaN',
      { variants: withVariant(1, { weight: Number.NaN }) },
      ['input', 'variants', '1', 'weight'],
      'weight must be a finite number',
    ],
    [
      'weight -Infinity',
      { variants: withVariant(0, { weight: Number.NEGATIVE_INFINITY }) },
      ['input', 'variants', '0', 'weight'],
      'weight must be a finite number',
    ],
    [
      'empty variant name',
      { variants: withVariant(1, { name: '' }) },
      ['input', 'variants', '1', 'name'],
      'name must not be empty',
    ],
    [
      'config that is an array',
      { variants: withVariant(0, { config: [1, 2] }) },
      ['input', 'variants', '0', 'config'],
      'config must be a JSON object',
    ],
    [
      'config that is a string',
      { variants: withVariant(0, { config: '{"a":1}' }) },
      ['input', 'variants', '0', 'config'],
      'config must be a JSON object',
    ],
    [
      'config that is a number',
      { variants: withVariant(1, { config: 42 }) },
      ['input', 'variants', '1', 'config'],
      'config must be a JSON object',
    ],
    [
      'config over 64 KB',
      { variants: withVariant(1, { config: over64KB }) },
      ['input', 'variants', '1', 'config'],
      'config must be at most 64 KB when serialised',
    ],
    [
      'duplicate variant names',
      { variants: [{ name: 'same' }, { name: 'other' }, { name: 'same' }] },
      ['input', 'variants', '2', 'name'],
      'duplicate variant name "same"',
    ],
    [
      'two controls',
      {
        variants: [
          { name: 'a', isControl: true },
          { name: 'b', isControl: true },
        ],
      },
      ['input', 'variants'],
      'at most one variant can be the control',
    ],
    [
      '21 variants',
      { variants: Array.from({ length: 21 }, (_, i) => ({ name: `v${i}` })) },
      ['input', 'variants'],
      'at most 20 variants',
    ],
  ];

  it.each(rules)('rejects %s and writes nothing', async (_what, overrides, path, message) => {
    const input = validCreate(overrides);
    const key = typeof input.key === 'string' && input.key.length ? input.key : uniqueKey('val');
    await expectInvalid(service().create(input), path, message);
    expect(await repo.getExperiment(db, { key })).toBeNull();
    expect(await auditRowsForKey(key)).toBe(0);
  });

  it('accepts every value on the edge of its range', async () => {
    const key = `e${'k'.repeat(127)}`;
    const experiment = await service().create({
      key,
      name: 'n'.repeat(255),
      description: 'd'.repeat(10_000),
      trafficAllocation: 0,
      hashSeed: 's'.repeat(256),
      variants: [
        { name: 'a', weight: 0, config: { blob: 'x'.repeat(64 * 1024 - 20) } },
        { name: 'b', weight: 1_000_000, isControl: true },
      ],
    });
    expect(experiment).toMatchObject({ key, trafficAllocation: 0 });
    const variants = await repo.getVariants(db, experiment.id);
    expect(variants.map((v) => v.weight)).toEqual([0, 1_000_000]);
    await service().delete(experiment.id);
  });

  it('reports every bad field at once, one entry each', async () => {
    const err = await service()
      .create({
        key: 'Not A Slug',
        name: '',
        trafficAllocation: 2,
        variants: [
          { name: 'a', weight: Number.NaN },
          { name: 'b', config: [] as never },
        ],
      })
      .then(
        () => null,
        (e: unknown) => e as ValidationError,
      );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err!.fieldErrors.map((e) => e.path.join('.')).sort()).toEqual(
      [
        'input.key',
        'input.name',
        'input.trafficAllocation',
        'input.variants.0.weight',
        'input.variants.1.config',
      ].sort(),
    );
    expect(err!.message).toBe(`Invalid input: ${err!.fieldErrors.map((e) => e.path.join('.')).join(', ')}`);
  });

  it('names the field in the message of a single error', async () => {
    const err = await expectInvalid(
      service().create(validCreate({ name: '' })),
      ['input', 'name'],
      'name must not be empty',
    );
    expect(err.message).toBe('Invalid input.name: name must not be empty');
  });
});

describe('updateExperiment', () => {
  it.each([
    ['empty name', { name: '' }, ['input', 'name'], 'name must not be empty'],
    [
      'long description',
      { description: 'd'.repeat(10_001) },
      ['input', 'description'],
      'description must be at most 10000 characters',
    ],
    [
      'trafficAllocation above 1',
      { trafficAllocation: 1.5 },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be between 0 and 1',
    ],
    [
      'trafficAllocation Infinity',
      { trafficAllocation: Number.POSITIVE_INFINITY },
      ['input', 'trafficAllocation'],
      'trafficAllocation must be a finite number',
    ],
    [
      'empty hashSeed',
      { hashSeed: '' },
      ['input', 'hashSeed'],
      'hashSeed must not be empty (use null to hash with the key)',
    ],
  ] as const)('rejects %s and changes nothing', async (_what, input, path, message) => {
    const experiment = await createTestExperiment(db);
    const before = await rowCounts(db, experiment.id);
    await expectInvalid(service().update(experiment.id, input), [...path], message);
    expect(await repo.getExperiment(db, { id: experiment.id })).toEqual(experiment);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('rejects an id that is not a UUID', async () => {
    await expectInvalid(service().update('42', { name: 'x' }), ['id'], 'id must be a UUID');
    await expectInvalid(service().delete('42'), ['id'], 'id must be a UUID');
  });
});

describe('addVariant and updateVariant', () => {
  it.each([
    [
      'negative weight',
      { name: 'x', weight: -0.5 },
      ['input', 'weight'],
      'weight must be between 0 and 1000000',
    ],
    ['NaN weight', { name: 'x', weight: Number.NaN }, ['input', 'weight'], 'weight must be a finite number'],
    ['empty name', { name: '' }, ['input', 'name'], 'name must not be empty'],
    ['array config', { name: 'x', config: [] as never }, ['input', 'config'], 'config must be a JSON object'],
    [
      'config over 64 KB',
      { name: 'x', config: over64KB },
      ['input', 'config'],
      'config must be at most 64 KB when serialised',
    ],
  ] as const)('addVariant rejects %s and writes nothing', async (_what, input, path, message) => {
    const experiment = await createTestExperiment(db);
    const before = await rowCounts(db, experiment.id);
    await expectInvalid(service().addVariant(experiment.id, input), [...path], message);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('addVariant rejects an experimentId that is not a UUID', async () => {
    await expectInvalid(
      service().addVariant('nope', { name: 'x' }),
      ['experimentId'],
      'experimentId must be a UUID',
    );
  });

  it.each([
    [
      'weight above 1,000,000',
      { weight: 2_000_000 },
      ['input', 'weight'],
      'weight must be between 0 and 1000000',
    ],
    [
      'Infinity weight',
      { weight: Number.POSITIVE_INFINITY },
      ['input', 'weight'],
      'weight must be a finite number',
    ],
    ['string config', { config: 'x' as never }, ['input', 'config'], 'config must be a JSON object'],
    [
      'name of 256 characters',
      { name: 'n'.repeat(256) },
      ['input', 'name'],
      'name must be at most 255 characters',
    ],
  ] as const)('updateVariant rejects %s and changes nothing', async (_what, input, path, message) => {
    const experiment = await createTestExperiment(db);
    const variants = await repo.getVariants(db, experiment.id);
    const before = await rowCounts(db, experiment.id);
    await expectInvalid(service().updateVariant(variants[1].id, input), [...path], message);
    expect(await repo.getVariants(db, experiment.id)).toEqual(variants);
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('updateVariant and removeVariant reject an id that is not a UUID', async () => {
    await expectInvalid(service().updateVariant('nope', { weight: 1 }), ['id'], 'id must be a UUID');
    await expectInvalid(service().removeVariant('nope'), ['id'], 'id must be a UUID');
  });
});

describe('assignVariant', () => {
  it.each([
    ['empty userId', '', 'userId must not be empty'],
    ['userId of 257 characters', 'u'.repeat(257), 'userId must be at most 256 characters'],
  ])('rejects %s and writes nothing', async (_what, userId, message) => {
    const experiment = await createRunningExperiment(db);
    await expectInvalid(assignVariant(db, experiment.key, userId), ['userId'], message);
    expect((await rowCounts(db, experiment.id)).assignments).toBe(0);
  });

  it('accepts a userId of 256 characters', async () => {
    const experiment = await createRunningExperiment(db);
    expect((await assignVariant(db, experiment.key, 'u'.repeat(256))).enrolled).toBe(true);
  });

  it('rejects an empty experimentKey', async () => {
    await expectInvalid(
      assignVariant(db, '', 'user-1'),
      ['experimentKey'],
      'experimentKey must not be empty',
    );
  });
});

describe('events', () => {
  async function assigned() {
    const experiment = await createRunningExperiment(db);
    const userId = uniqueKey('user');
    await assignVariant(db, experiment.key, userId);
    return { experiment, userId, before: await rowCounts(db, experiment.id) };
  }

  it.each([
    ['empty userId', { userId: '' }, ['input', 'userId'], 'userId must not be empty'],
    [
      'userId of 257 characters',
      { userId: 'u'.repeat(257) },
      ['input', 'userId'],
      'userId must be at most 256 characters',
    ],
    ['variantId that is not a UUID', { variantId: 'v1' }, ['input', 'variantId'], 'variantId must be a UUID'],
    ['eventId that is not a UUID', { eventId: 'e1' }, ['input', 'eventId'], 'eventId must be a UUID'],
    [
      'metadata that is an array',
      { metadata: [] as never },
      ['input', 'metadata'],
      'metadata must be a JSON object',
    ],
    [
      'metadata over 16 KB',
      { metadata: over16KB },
      ['input', 'metadata'],
      'metadata must be at most 16 KB when serialised',
    ],
    [
      'occurredAt two days ahead',
      { occurredAt: inTwoDays() },
      ['input', 'occurredAt'],
      'occurredAt must not be more than 5 minutes in the future',
    ],
    [
      'occurredAt ten minutes ahead',
      { occurredAt: new Date(Date.now() + 10 * 60_000) },
      ['input', 'occurredAt'],
      'occurredAt must not be more than 5 minutes in the future',
    ],
  ] as const)('recordExposure rejects %s and writes nothing', async (_what, patch, path, message) => {
    const { experiment, userId, before } = await assigned();
    await expectInvalid(
      recordExposure(db, { experimentKey: experiment.key, userId, ...patch }),
      [...path],
      message,
    );
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it.each([
    [
      'metricName with upper case',
      { metricName: 'Watch_Minutes' },
      ['input', 'metricName'],
      SLUG_MESSAGE('metricName'),
    ],
    [
      'metricName with a space',
      { metricName: 'watch minutes' },
      ['input', 'metricName'],
      SLUG_MESSAGE('metricName'),
    ],
    [
      'metricName of 129 characters',
      { metricName: 'm'.repeat(129) },
      ['input', 'metricName'],
      'metricName must be at most 128 characters',
    ],
    [
      'the reserved metricName "exposure"',
      { metricName: 'exposure' },
      ['input', 'metricName'],
      'metricName "exposure" is reserved: record exposures with kind EXPOSURE / recordExposure',
    ],
    [
      'NaN value',
      { metricName: 'revenue', value: Number.NaN },
      ['input', 'value'],
      'value must be a finite number',
    ],
    [
      'Infinity value',
      { metricName: 'revenue', value: Number.POSITIVE_INFINITY },
      ['input', 'value'],
      'value must be a finite number',
    ],
  ] as const)('recordConversion rejects %s and writes nothing', async (_what, patch, path, message) => {
    const { experiment, userId, before } = await assigned();
    await expectInvalid(
      recordConversion(db, { experimentKey: experiment.key, userId, ...patch }),
      [...path],
      message,
    );
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });

  it('recordConversion accepts a 128-character metric name and a negative finite value', async () => {
    const { experiment, userId } = await assigned();
    await recordConversion(db, {
      experimentKey: experiment.key,
      userId,
      metricName: 'm'.repeat(128),
      value: -3.5,
    });
    expect((await rowCounts(db, experiment.id)).conversions).toBe(1);
  });

  it.each([
    [
      'experimentId that is not a UUID',
      { experimentId: 'exp-1' },
      ['input', 'experimentId'],
      'experimentId must be a UUID',
    ],
    ['bad metricName', { metricName: 'Bad!' }, ['input', 'metricName'], SLUG_MESSAGE('metricName')],
    ['NaN value', { value: Number.NaN }, ['input', 'value'], 'value must be a finite number'],
    ['empty userId', { userId: '' }, ['input', 'userId'], 'userId must not be empty'],
  ] as const)('recordMetric rejects %s and writes nothing', async (_what, patch, path, message) => {
    const { experiment, userId, before } = await assigned();
    await expectInvalid(
      recordMetric(db, { experimentId: experiment.id, userId, metricName: 'revenue', value: 1, ...patch }),
      [...path],
      message,
    );
    expect(await rowCounts(db, experiment.id)).toEqual(before);
  });
});
