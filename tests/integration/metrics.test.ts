/**
 * Metric definitions and the metrics an experiment lists with their roles, through GraphQL: typed errors
 * naming the field, nothing written on bad input, the audit trail, the Relay list, and what may change once
 * an experiment has started.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { experimentService, uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const METRIC_FIELDS = `id key name description kind eventName denominatorEventName direction capValue conversionWindowHours archivedAt`;
const FRAGMENTS = {
  ValidationError: '... on ValidationError { fieldErrors { path message } }',
  ConflictError: '... on ConflictError { field message }',
  NotFoundError: '... on NotFoundError { entity ref }',
  RuleViolationError: '... on RuleViolationError { rule message }',
};
/** The selection of a mutation's result, with the fragments of the errors it can return. */
const result = (...errors: (keyof typeof FRAGMENTS)[]) =>
  `__typename ... on Metric { ${METRIC_FIELDS} } ${errors.map((e) => FRAGMENTS[e]).join(' ')}`;
const CREATED = result('ValidationError', 'ConflictError');
const UPDATED = result('ValidationError', 'NotFoundError', 'RuleViolationError');
const ARCHIVED = result('ValidationError', 'NotFoundError');

async function createMetric(input: Record<string, unknown>) {
  const data = await gqlOk(
    app,
    `mutation ($input: CreateMetricInput!) { createMetric(input: $input) { ${CREATED} } }`,
    {
      input,
    },
  );
  return data.createMetric;
}

async function updateMetric(id: string, input: Record<string, unknown>) {
  const data = await gqlOk(
    app,
    `mutation ($id: ID!, $input: UpdateMetricInput!) { updateMetric(id: $id, input: $input) { ${UPDATED} } }`,
    { id, input },
  );
  return data.updateMetric;
}

async function countMetricsWithKey(key: string) {
  const [{ n }] = await queryRows<{ n: number }>(
    handle.db,
    sql`SELECT count(*)::int AS n FROM metrics WHERE key = ${key}`,
  );
  return n;
}

describe('metric definitions', () => {
  it('creates a metric, defaults direction to INCREASE, and audits it', async () => {
    const key = uniqueKey('watch');
    const m = await createMetric({
      key,
      name: 'Watch minutes',
      kind: 'MEAN',
      eventName: 'watch_minutes',
      capValue: 600,
    });
    expect(m).toMatchObject({
      __typename: 'Metric',
      key,
      kind: 'MEAN',
      eventName: 'watch_minutes',
      denominatorEventName: null,
      direction: 'INCREASE',
      capValue: 600,
      archivedAt: null,
    });
    const audit = await queryRows<{ action: string; entity_type: string }>(
      handle.db,
      sql`SELECT action, entity_type FROM audit_log WHERE entity_id = ${m.id}`,
    );
    expect(audit).toEqual([{ action: 'metric.created', entity_type: 'metric' }]);
    const byKey = await gqlOk(app, `query ($key: String!) { metric(key: $key) { id name } }`, { key });
    expect(byKey.metric).toEqual({ id: m.id, name: 'Watch minutes' });
  });

  it('refuses bad definitions with a ValidationError naming the field, writing nothing', async () => {
    const key = uniqueKey('bad');
    const cases: [Record<string, unknown>, string][] = [
      [{ kind: 'RATIO', eventName: 'watch_minutes' }, 'input.denominatorEventName'],
      [
        { kind: 'MEAN', eventName: 'watch_minutes', denominatorEventName: 'sessions' },
        'input.denominatorEventName',
      ],
      [{ kind: 'MEAN', eventName: 'Not A Slug' }, 'input.eventName'],
      [{ kind: 'MEAN', eventName: 'x', capValue: -1 }, 'input.capValue'],
      [{ kind: 'MEAN', eventName: 'x', capPercentile: 0.99 }, 'input.capPercentile'],
      [{ kind: 'MEAN', eventName: 'x', conversionWindowHours: 0 }, 'input.conversionWindowHours'],
      [{ kind: 'RATIO', eventName: 'x', denominatorEventName: 'y', capValue: 5 }, 'input.capValue'],
    ];
    for (const [input, path] of cases) {
      const r = await createMetric({ key, name: 'Bad', ...input });
      expect(r.__typename).toBe('ValidationError');
      expect(r.fieldErrors.map((e: { path: string[] }) => e.path.join('.'))).toContain(path);
    }
    expect(await countMetricsWithKey(key)).toBe(0);
  });

  it('answers a duplicate key with a ConflictError on key', async () => {
    const key = uniqueKey('dup');
    await createMetric({ key, name: 'A', kind: 'BINOMIAL', eventName: 'signup' });
    const again = await createMetric({ key, name: 'B', kind: 'MEAN', eventName: 'other' });
    expect(again).toMatchObject({ __typename: 'ConflictError', field: 'key' });
    expect(await countMetricsWithKey(key)).toBe(1);
  });

  it('updates (null clears), keeps the definition valid, archives, and answers NotFound', async () => {
    const m = await createMetric({
      key: uniqueKey('upd'),
      name: 'Minutes per session',
      kind: 'RATIO',
      eventName: 'watch_minutes',
      denominatorEventName: 'session',
      conversionWindowHours: 48,
    });
    const updated = await updateMetric(m.id, {
      direction: 'DECREASE',
      conversionWindowHours: null,
      name: null,
    });
    expect(updated).toMatchObject({
      direction: 'DECREASE',
      conversionWindowHours: null,
      name: 'Minutes per session',
    });
    // MEAN with the RATIO's denominator left in place is not a valid definition.
    const bad = await updateMetric(m.id, { kind: 'MEAN' });
    expect(bad.__typename).toBe('ValidationError');
    expect(bad.fieldErrors[0].path).toEqual(['input', 'denominatorEventName']);
    const mean = await updateMetric(m.id, { kind: 'MEAN', denominatorEventName: null });
    expect(mean).toMatchObject({ kind: 'MEAN', denominatorEventName: null });

    const archived = await gqlOk(app, `mutation ($id: ID!) { archiveMetric(id: $id) { ${ARCHIVED} } }`, {
      id: m.id,
    });
    expect(archived.archiveMetric.archivedAt).not.toBeNull();
    const missing = await updateMetric('00000000-0000-4000-8000-000000000000', { name: 'x' });
    expect(missing).toMatchObject({ __typename: 'NotFoundError', entity: 'Metric' });
    const actions = await queryRows<{ action: string }>(
      handle.db,
      sql`SELECT action FROM audit_log WHERE entity_id = ${m.id} ORDER BY created_at, action`,
    );
    expect(actions.map((a) => a.action)).toEqual([
      'metric.created',
      'metric.updated',
      'metric.updated',
      'metric.archived',
    ]);
  });

  it('lists metrics newest first as a Relay connection, archived ones only when asked', async () => {
    const keys = [uniqueKey('l1'), uniqueKey('l2'), uniqueKey('l3')];
    const ids: string[] = [];
    for (const key of keys)
      ids.push((await createMetric({ key, name: key, kind: 'MEAN', eventName: 'x' })).id);
    await gqlOk(app, `mutation ($id: ID!) { archiveMetric(id: $id) { __typename } }`, { id: ids[1] });
    const page = async (after: string | null, includeArchived: boolean) =>
      (
        await gqlOk(
          app,
          `query ($after: String, $all: Boolean) { metrics(first: 1, after: $after, includeArchived: $all) {
             totalCount edges { cursor node { key } } pageInfo { hasNextPage endCursor } } }`,
          { after, all: includeArchived },
        )
      ).metrics;
    const first = await page(null, false);
    expect(first.edges.map((e: { node: { key: string } }) => e.node.key)).toEqual([keys[2]]);
    expect(first.pageInfo.hasNextPage).toBe(true);
    const second = await page(first.pageInfo.endCursor, false);
    expect(second.edges[0].node.key).toBe(keys[0]);
    const withArchived = await page(first.pageInfo.endCursor, true);
    expect(withArchived.edges[0].node.key).toBe(keys[1]);
    expect(withArchived.totalCount).toBeGreaterThan(second.totalCount);
  });
});

describe('experiment metric roles', () => {
  async function defineMetrics() {
    const primary = await createMetric({
      key: uniqueKey('p'),
      name: 'P',
      kind: 'BINOMIAL',
      eventName: 'signup',
    });
    const secondary = await createMetric({
      key: uniqueKey('s'),
      name: 'S',
      kind: 'MEAN',
      eventName: 'watch_minutes',
    });
    const guardrail = await createMetric({
      key: uniqueKey('g'),
      name: 'G',
      kind: 'MEAN',
      eventName: 'errors',
      direction: 'DECREASE',
    });
    return { primary, secondary, guardrail };
  }

  const CREATE = `mutation ($input: CreateExperimentInput!) { createExperiment(input: $input) {
    __typename
    ... on Experiment { id metricRoles { metric { key direction } role toleratedHarm } }
    ... on ValidationError { fieldErrors { path message } } } }`;
  const UPDATE = `mutation ($id: ID!, $input: UpdateExperimentInput!) { updateExperiment(id: $id, input: $input) {
    __typename
    ... on Experiment { metricRoles { metric { key } role toleratedHarm } }
    ... on ValidationError { fieldErrors { path message } }
    ... on RuleViolationError { rule } } }`;

  it('lists metrics with roles on create, in order, with a guardrail’s tolerated harm', async () => {
    const { primary, secondary, guardrail } = await defineMetrics();
    const data = await gqlOk(app, CREATE, {
      input: {
        key: uniqueKey(),
        name: 'Roles',
        metricRoles: [
          { metric: primary.key, role: 'PRIMARY' },
          { metric: secondary.key, role: 'SECONDARY' },
          { metric: guardrail.key, role: 'GUARDRAIL', toleratedHarm: -0.02 },
        ],
      },
    });
    expect(data.createExperiment.metricRoles).toEqual([
      { metric: { key: primary.key, direction: 'INCREASE' }, role: 'PRIMARY', toleratedHarm: null },
      { metric: { key: secondary.key, direction: 'INCREASE' }, role: 'SECONDARY', toleratedHarm: null },
      { metric: { key: guardrail.key, direction: 'DECREASE' }, role: 'GUARDRAIL', toleratedHarm: -0.02 },
    ]);
  });

  it('refuses unknown or archived metrics, no primary, duplicates and misplaced harms, creating nothing', async () => {
    const { primary, secondary } = await defineMetrics();
    await gqlOk(app, `mutation ($id: ID!) { archiveMetric(id: $id) { __typename } }`, { id: secondary.id });
    const key = uniqueKey();
    const cases: [unknown[], string][] = [
      [[{ metric: 'no-such-metric', role: 'PRIMARY' }], 'input.metricRoles.0.metric'],
      [
        [
          { metric: primary.key, role: 'PRIMARY' },
          { metric: secondary.key, role: 'SECONDARY' },
        ],
        'input.metricRoles.1.metric',
      ],
      [[{ metric: primary.key, role: 'SECONDARY' }], 'input.metricRoles'],
      [
        [
          { metric: primary.key, role: 'PRIMARY' },
          { metric: primary.key, role: 'SECONDARY' },
        ],
        'input.metricRoles.1.metric',
      ],
      [[{ metric: primary.key, role: 'PRIMARY', toleratedHarm: -0.1 }], 'input.metricRoles.0.toleratedHarm'],
    ];
    for (const [metricRoles, path] of cases) {
      const r = (await gqlOk(app, CREATE, { input: { key, name: 'x', metricRoles } })).createExperiment;
      expect(r.__typename).toBe('ValidationError');
      expect(r.fieldErrors.map((e: { path: string[] }) => e.path.join('.'))).toContain(path);
    }
    const [{ n }] = await queryRows<{ n: number }>(
      handle.db,
      sql`SELECT count(*)::int AS n FROM experiments WHERE key = ${key}`,
    );
    expect(n).toBe(0);
  });

  it('once started, only SECONDARY and GUARDRAIL metrics can be added', async () => {
    const { primary, secondary, guardrail } = await defineMetrics();
    const other = await createMetric({ key: uniqueKey('o'), name: 'O', kind: 'MEAN', eventName: 'other' });
    const created = await gqlOk(app, CREATE, {
      input: {
        key: uniqueKey(),
        name: 'Running',
        variants: [{ name: 'a', isControl: true }, { name: 'b' }],
        metricRoles: [{ metric: primary.key, role: 'PRIMARY' }],
      },
    });
    const id = created.createExperiment.id;
    await experimentService(handle.db).transition(id, 'start');
    const update = async (metricRoles: unknown[]) =>
      (await gqlOk(app, UPDATE, { id, input: { metricRoles } })).updateExperiment;

    expect(await update([{ metric: other.key, role: 'PRIMARY' }])).toMatchObject({
      rule: 'METRICS_FIXED',
    });
    expect(
      await update([
        { metric: primary.key, role: 'PRIMARY' },
        { metric: other.key, role: 'PRIMARY' },
      ]),
    ).toMatchObject({ rule: 'METRICS_FIXED' });
    expect(
      await update([
        { metric: primary.key, role: 'SECONDARY' },
        { metric: other.key, role: 'PRIMARY' },
      ]),
    ).toMatchObject({
      rule: 'METRICS_FIXED',
    });
    const grown = await update([
      { metric: primary.key, role: 'PRIMARY' },
      { metric: secondary.key, role: 'SECONDARY' },
      { metric: guardrail.key, role: 'GUARDRAIL', toleratedHarm: -0.05 },
    ]);
    expect(grown.metricRoles.map((r: { role: string }) => r.role)).toEqual([
      'PRIMARY',
      'SECONDARY',
      'GUARDRAIL',
    ]);
    const audit = await queryRows<{ details: { metricRoles?: unknown } }>(
      handle.db,
      sql`SELECT details FROM audit_log WHERE entity_id = ${id} AND action = 'experiment.updated'`,
    );
    expect(audit).toHaveLength(1);
    expect(audit[0].details.metricRoles).toBeDefined();

    // What the metric counts is fixed while a started experiment lists it; its direction is not.
    expect(await updateMetric(primary.id, { eventName: 'other_event' })).toMatchObject({
      rule: 'METRIC_IN_USE',
    });
    expect(await updateMetric(primary.id, { direction: 'DECREASE' })).toMatchObject({
      direction: 'DECREASE',
    });
  });
});
