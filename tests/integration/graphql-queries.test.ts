/** Every query of the API through `yoga.fetch`, on the seed data and on experiments each test creates. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { users } from '../../src/db/schema';
import type { App } from '../../src/http/app';
import { experiments as seedExperiments, sid, users as seedUsers } from '../../seed/data';
import { createTestApp, gql, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import {
  createRunningExperiment,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

const HOMEPAGE = seedExperiments[0];
const DRAFT = seedExperiments[1];
const COMPLETED = seedExperiments[2];

const EXPERIMENT_FIELDS = `
  id key name description status trafficAllocation hashSeed startAt endAt createdAt updatedAt
  variants { id name weight config isControl position }
`;

async function assignmentCount(experimentId: string, userId?: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(
    handle.db,
    userId === undefined
      ? sql`SELECT count(*)::int AS n FROM experiment_assignments WHERE experiment_id = ${experimentId}`
      : sql`SELECT count(*)::int AS n FROM experiment_assignments WHERE experiment_id = ${experimentId} AND user_id = ${userId}`,
  );
  return row.n;
}

async function summaryOf(experimentId: string) {
  return queryRows<Record<string, unknown>>(
    handle.db,
    sql`SELECT variant_id, variant_name, exposures::int AS exposures, unique_users::int AS unique_users,
               conversions::int AS conversions, conversion_rate, avg_metric_value
          FROM get_experiment_summary(${experimentId}::uuid)`,
  );
}

/** An experiment of our own with known assignments and events: a:control, b:treatment, c:treatment. */
async function experimentWithEvents() {
  const experiment = await createRunningExperiment(handle.db);
  const variants = (
    await gqlOk(app, `query ($id: ID) { experiment(id: $id) { variants { id name } } }`, {
      id: experiment.id,
    })
  ).experiment.variants as { id: string; name: string }[];
  const [control, treatment] = variants;
  const record = (field: string, input: Record<string, unknown>) =>
    gqlOk(
      app,
      `mutation ($input: ${field === 'recordExposure' ? 'RecordExposureInput' : 'RecordConversionInput'}!) {
        ${field}(input: $input) { __typename ... on Error { code message } }
      }`,
      { input: { experimentKey: experiment.key, ...input } },
    );
  const plan = [
    { userId: 'unit-a', variantId: control.id, exposures: 2, conversions: [] as number[] },
    { userId: 'unit-b', variantId: treatment.id, exposures: 1, conversions: [3, 5] },
    { userId: 'unit-c', variantId: treatment.id, exposures: 1, conversions: [] },
  ];
  for (const unit of plan) {
    for (let i = 0; i < unit.exposures; i++) {
      const r = await record('recordExposure', { userId: unit.userId, variantId: unit.variantId });
      expect(r.recordExposure.__typename).toBe('RecordEventSuccess');
    }
    for (const value of unit.conversions) {
      const r = await record('recordConversion', { userId: unit.userId, metricName: 'watch_minutes', value });
      expect(r.recordConversion.__typename).toBe('RecordEventSuccess');
    }
  }
  return { experiment, control, treatment };
}

describe('experiment(id | key)', () => {
  it('finds a seed experiment by id and by key, with every field', async () => {
    const byId = await gqlOk(app, `query ($id: ID) { experiment(id: $id) { ${EXPERIMENT_FIELDS} } }`, {
      id: HOMEPAGE.id,
    });
    const byKey = await gqlOk(
      app,
      `query ($key: String) { experiment(key: $key) { ${EXPERIMENT_FIELDS} } }`,
      {
        key: HOMEPAGE.key,
      },
    );
    expect(byKey.experiment).toEqual(byId.experiment);
    expect(byId.experiment).toMatchObject({
      id: HOMEPAGE.id,
      key: HOMEPAGE.key,
      name: HOMEPAGE.name,
      description: HOMEPAGE.description,
      status: 'RUNNING',
      trafficAllocation: 1,
      hashSeed: null,
      startAt: HOMEPAGE.startAt!.toISOString(),
      endAt: null,
      createdAt: HOMEPAGE.createdAt.toISOString(),
    });
    expect(byId.experiment.variants).toEqual(
      HOMEPAGE.variants.map((v, position) => ({
        id: v.id,
        name: v.name,
        weight: v.weight,
        config: v.config,
        isControl: v.isControl,
        position,
      })),
    );
  });

  it('shows the completed seed experiment with its dates and traffic', async () => {
    const data = await gqlOk(
      app,
      `{ experiment(key: "${COMPLETED.key}") { status trafficAllocation startAt endAt } }`,
    );
    expect(data.experiment).toEqual({
      status: 'COMPLETED',
      trafficAllocation: COMPLETED.trafficAllocation,
      startAt: COMPLETED.startAt!.toISOString(),
      endAt: COMPLETED.endAt!.toISOString(),
    });
  });

  it('returns null when nothing matches', async () => {
    expect(await gqlOk(app, `{ experiment(key: "no-such-experiment-${randomUUID()}") { id } }`)).toEqual({
      experiment: null,
    });
    expect(await gqlOk(app, `{ experiment(id: "${randomUUID()}") { id } }`)).toEqual({ experiment: null });
  });

  it.each([
    ['both arguments', `{ experiment(id: "${sid(3, 1)}", key: "homepage-recs-collaborative") { id } }`],
    ['no argument', `{ experiment { id } }`],
    ['an id that is not a UUID', `{ experiment(id: "42") { id } }`],
  ])('rejects %s with BAD_USER_INPUT', async (_what, query) => {
    const body = await gql(app, query);
    expect(body.data).toEqual({ experiment: null });
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]).toMatchObject({ path: ['experiment'], extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('says "exactly one" when both or neither are given', async () => {
    const body = await gql(app, `{ experiment { id } }`);
    expect(body.errors![0].message).toMatch(/exactly one of id and key/);
  });
});

describe('experiments connection', () => {
  const PAGE = `
    query ($first: Int, $after: String, $status: ExperimentStatus) {
      experiments(first: $first, after: $after, status: $status) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { id key status createdAt } }
      }
    }`;
  type Page = {
    totalCount: number;
    pageInfo: {
      hasNextPage: boolean;
      hasPreviousPage: boolean;
      startCursor: string | null;
      endCursor: string | null;
    };
    edges: { cursor: string; node: { id: string; key: string; status: string; createdAt: string } }[];
  };

  async function walk(
    first: number,
    status?: string,
  ): Promise<{ pages: Page[]; nodes: Page['edges'][number]['node'][] }> {
    const pages: Page[] = [];
    let after: string | null = null;
    for (;;) {
      const data: { experiments: Page } = await gqlOk<{ experiments: Page }>(app, PAGE, {
        first,
        after,
        status,
      });
      pages.push(data.experiments);
      if (!data.experiments.pageInfo.hasNextPage) break;
      after = data.experiments.pageInfo.endCursor;
      if (pages.length > 1000) throw new Error('pagination does not end');
    }
    return { pages, nodes: pages.flatMap((p) => p.edges.map((e) => e.node)) };
  }

  /** Strictly newest first by (createdAt, id): no duplicates, and the order a cursor relies on. */
  function expectNewestFirst(nodes: { id: string; createdAt: string }[]) {
    for (let i = 1; i < nodes.length; i++) {
      const [a, b] = [nodes[i - 1], nodes[i]];
      const older = a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);
      if (!older) throw new Error(`not newest first at ${i}: ${JSON.stringify([a, b])}`);
    }
  }

  it('lists newest first, the seed included, with a totalCount', async () => {
    const mine = await createTestExperiment(handle.db);
    const data = await gqlOk<{ experiments: Page }>(app, PAGE, { first: 100 });
    const nodes = data.experiments.edges.map((e) => e.node);
    expectNewestFirst(nodes);
    // Created just now, so it is ahead of the seed, whose experiments are months old.
    const keys = nodes.map((n) => n.key);
    expect(keys).toContain(mine.key);
    expect(data.experiments.totalCount).toBeGreaterThanOrEqual(4);
    // The seed (when this database has it; other files' experiments may push it past the first page):
    // the draft was created an hour after the running one, the completed one weeks before.
    const all = (await walk(100)).nodes.map((n) => n.key);
    if (all.includes(HOMEPAGE.key)) {
      expect(all.indexOf(mine.key)).toBeLessThan(all.indexOf(DRAFT.key));
      expect(all.indexOf(DRAFT.key)).toBeLessThan(all.indexOf(HOMEPAGE.key));
      expect(all.indexOf(HOMEPAGE.key)).toBeLessThan(all.indexOf(COMPLETED.key));
    }
  });

  it('pages with `after` without duplicates or gaps, and the last page says so', async () => {
    const created = [];
    for (let i = 0; i < 7; i++) created.push(await createTestExperiment(handle.db));
    const { pages, nodes } = await walk(3);
    expectNewestFirst(nodes);
    const ids = nodes.map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Ours were created one after another, so they are adjacent in the list unless another file
    // created one in between (PostgreSQL shares the run database); they keep their relative order.
    const positions = created.map((e) => ids.indexOf(e.id));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => b - a)).toEqual(positions);
    for (const e of seedExperiments) expect(ids).toContain(e.id);
    for (const page of pages.slice(0, -1)) {
      expect(page.edges).toHaveLength(3);
      expect(page.pageInfo.hasNextPage).toBe(true);
      expect(page.pageInfo.startCursor).toBe(page.edges[0].cursor);
      expect(page.pageInfo.endCursor).toBe(page.edges[2].cursor);
    }
    const last = pages.at(-1)!;
    expect(last.pageInfo.hasNextPage).toBe(false);
    expect(last.pageInfo.hasPreviousPage).toBe(false);
    expect(last.edges.length).toBeLessThanOrEqual(3);
    expect(last.edges.at(-1)!.node.id).toBe(COMPLETED.id);
  });

  it('filters by status, totalCount counting the filtered rows', async () => {
    const paused = await createRunningExperiment(handle.db);
    await experimentService(handle.db).transition(paused.id, 'pause');
    for (const [status, seed] of [
      ['RUNNING', HOMEPAGE],
      ['DRAFT', DRAFT],
      ['COMPLETED', COMPLETED],
      ['PAUSED', null],
    ] as const) {
      const { pages, nodes } = await walk(100, status);
      expect(nodes.every((n) => n.status === status)).toBe(true);
      if (seed) expect(nodes.map((n) => n.id)).toContain(seed.id);
      if (status === 'PAUSED') expect(nodes.map((n) => n.id)).toContain(paused.id);
      // Exact on PGlite; on PostgreSQL other files may change experiments between the reads.
      if (handle.driver === 'pglite') expect(pages[0].totalCount).toBe(nodes.length);
      else expect(pages[0].totalCount).toBeGreaterThan(0);
    }
  });

  it('defaults to 20 per page and accepts up to 100', async () => {
    const small = await gqlOk<{ experiments: Page }>(app, PAGE, {});
    expect(small.experiments.edges.length).toBeLessThanOrEqual(20);
    const max = await gql(app, PAGE, { first: 100 });
    expect(max.errors).toBeUndefined();
    const none = await gqlOk<{ experiments: Page }>(app, PAGE, { first: 0 });
    expect(none.experiments.edges).toEqual([]);
    expect(none.experiments.pageInfo).toMatchObject({ startCursor: null, endCursor: null });
  });

  it.each([
    ['first above 100', { first: 101 }, 'first'],
    ['a negative first', { first: -1 }, 'first'],
    ['an after that is no cursor', { after: 'not-a-cursor' }, 'after'],
  ])('rejects %s with BAD_USER_INPUT naming the argument', async (_what, variables, argument) => {
    const body = await gql(app, PAGE, variables);
    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0]).toMatchObject({
      path: ['experiments'],
      extensions: { code: 'BAD_USER_INPUT', argument },
    });
  });
});

describe('assignment(experimentKey, userId)', () => {
  const QUERY = `
    query ($key: String!, $userId: String!) {
      assignment(experimentKey: $key, userId: $userId) {
        experiment { id key } experimentKey userId enrolled reason assignedAt variant { id name }
      }
    }`;

  it('returns null for a user without an assignment, and writes nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const before = handle.statements.count;
    for (let i = 0; i < 3; i++) {
      expect(await gqlOk(app, QUERY, { key: experiment.key, userId: 'never-assigned' })).toEqual({
        assignment: null,
      });
    }
    expect(handle.statements.count).toBeGreaterThan(before);
    expect(await assignmentCount(experiment.id)).toBe(0);
  });

  it('returns null for an unknown experiment key', async () => {
    expect(await gqlOk(app, QUERY, { key: uniqueKey('missing'), userId: 'u' })).toEqual({ assignment: null });
  });

  it('returns the stored assignment after assignVariant, and reading it writes nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const assigned = await gqlOk(
      app,
      `mutation ($key: String!) { assignVariant(experimentKey: $key, userId: "reader-1") {
         ... on Assignment { reason variant { id } assignedAt } } }`,
      { key: experiment.key },
    );
    expect(assigned.assignVariant.reason).toBe('ASSIGNED');
    expect(await assignmentCount(experiment.id)).toBe(1);
    const read = await gqlOk(app, QUERY, { key: experiment.key, userId: 'reader-1' });
    expect(read.assignment).toEqual({
      experiment: { id: experiment.id, key: experiment.key },
      experimentKey: experiment.key,
      userId: 'reader-1',
      enrolled: true,
      reason: 'EXISTING',
      assignedAt: assigned.assignVariant.assignedAt,
      variant: { id: assigned.assignVariant.variant.id, name: expect.any(String) },
    });
    expect(await assignmentCount(experiment.id)).toBe(1);
  });

  it('shows the seed’s assignment of alice', async () => {
    const alice = seedUsers[0].id;
    const [row] = await queryRows<{ variant_id: string }>(
      handle.db,
      sql`SELECT variant_id FROM experiment_assignments WHERE experiment_id = ${HOMEPAGE.id} AND user_id = ${alice}`,
    );
    const data = await gqlOk(app, QUERY, { key: HOMEPAGE.key, userId: alice });
    expect(data.assignment).toMatchObject({
      enrolled: true,
      reason: 'EXISTING',
      variant: { id: row.variant_id },
    });
  });

  it('rejects an empty userId with BAD_USER_INPUT', async () => {
    const body = await gql(app, QUERY, { key: HOMEPAGE.key, userId: '' });
    expect(body.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'userId' });
  });
});

describe('user(id)', () => {
  const QUERY = `
    query ($id: ID!) {
      user(id: $id) {
        id username email createdAt
        assignments { experimentKey userId enrolled reason assignedAt experiment { id } variant { id name } }
      }
    }`;

  it('returns a seed user with their stored assignments', async () => {
    const alice = seedUsers[0];
    const rows = await queryRows<{ experiment_id: string; variant_id: string }>(
      handle.db,
      sql`SELECT experiment_id, variant_id FROM experiment_assignments WHERE user_id = ${alice.id}`,
    );
    const data = await gqlOk(app, QUERY, { id: alice.id });
    expect(data.user).toMatchObject({
      id: alice.id,
      username: alice.username,
      email: alice.email,
      createdAt: alice.createdAt.toISOString(),
    });
    expect(rows.length).toBeGreaterThan(0);
    const got = data.user.assignments.map((a: any) => `${a.experiment.id}/${a.variant.id}`).sort();
    expect(got).toEqual(rows.map((r) => `${r.experiment_id}/${r.variant_id}`).sort());
    for (const a of data.user.assignments) {
      expect(a).toMatchObject({ userId: alice.id, enrolled: true, reason: 'EXISTING' });
    }
  });

  it('lists a new user’s assignments newest first', async () => {
    const [user] = await handle.db
      .insert(users)
      .values({ username: uniqueKey('user'), email: `${uniqueKey('mail')}@example.com` })
      .returning();
    const first = await createRunningExperiment(handle.db);
    const second = await createRunningExperiment(handle.db);
    for (const e of [first, second]) {
      await gqlOk(
        app,
        `mutation { assignVariant(experimentKey: "${e.key}", userId: "${user.id}") { __typename } }`,
      );
    }
    const data = await gqlOk(app, QUERY, { id: user.id });
    expect(data.user.assignments.map((a: any) => a.experimentKey)).toEqual([second.key, first.key]);
  });

  it('returns null for an unknown id and rejects an id that is not a UUID', async () => {
    expect(await gqlOk(app, QUERY, { id: randomUUID() })).toEqual({ user: null });
    const body = await gql(app, QUERY, { id: 'alice' });
    expect(body.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'id' });
  });
});

describe('Experiment fields', () => {
  it('metrics.variantMetrics and summary are the rows of get_experiment_summary (seed)', async () => {
    const data = await gqlOk(
      app,
      `query ($id: ID) { experiment(id: $id) {
         metrics { totalExposures totalUniqueUsers variantMetrics {
           variant { id name } exposures uniqueUsers conversions conversionRate avgMetricValue } }
         summary { variantId variantName exposures uniqueUsers conversions conversionRate avgMetricValue }
         assignmentCount
       } }`,
      { id: HOMEPAGE.id },
    );
    const rows = await summaryOf(HOMEPAGE.id);
    const expected = rows.map((r) => ({
      exposures: r.exposures,
      uniqueUsers: r.unique_users,
      conversions: r.conversions,
      conversionRate: expect.closeTo(Number(r.conversion_rate), 12),
      avgMetricValue: r.avg_metric_value === null ? null : expect.closeTo(Number(r.avg_metric_value), 9),
    }));
    expect(data.experiment.metrics.variantMetrics).toEqual(
      rows.map((r, i) => ({ variant: { id: r.variant_id, name: r.variant_name }, ...expected[i] })),
    );
    expect(data.experiment.summary).toEqual(
      rows.map((r, i) => ({ variantId: r.variant_id, variantName: r.variant_name, ...expected[i] })),
    );
    expect(data.experiment.metrics.totalExposures).toBe(rows.reduce((s, r) => s + Number(r.exposures), 0));
    expect(data.experiment.metrics.totalUniqueUsers).toBe(
      rows.reduce((s, r) => s + Number(r.unique_users), 0),
    );
    expect(data.experiment.metrics.variantMetrics[0].exposures).toBeGreaterThan(0);
    expect(data.experiment.assignmentCount).toBe(await assignmentCount(HOMEPAGE.id));
    expect(data.experiment.assignmentCount).toBeGreaterThanOrEqual(124);
  });

  it('counts exactly what was recorded on an experiment of our own', async () => {
    const { experiment, control, treatment } = await experimentWithEvents();
    const data = await gqlOk(
      app,
      `query ($id: ID) { experiment(id: $id) {
         assignmentCount
         metrics { totalExposures totalUniqueUsers variantMetrics {
           variant { name } exposures uniqueUsers conversions conversionRate avgMetricValue } }
         variants { name metrics { exposures uniqueUsers conversions conversionRate avgMetricValue } }
       } }`,
      { id: experiment.id },
    );
    const controlMetrics = {
      exposures: 2,
      uniqueUsers: 1,
      conversions: 0,
      conversionRate: 0,
      avgMetricValue: null,
    };
    const treatmentMetrics = {
      exposures: 2,
      uniqueUsers: 2,
      conversions: 2,
      conversionRate: 0.5,
      avgMetricValue: 4,
    };
    expect(data.experiment).toEqual({
      assignmentCount: 3,
      metrics: {
        totalExposures: 4,
        totalUniqueUsers: 3,
        variantMetrics: [
          { variant: { name: control.name }, ...controlMetrics },
          { variant: { name: treatment.name }, ...treatmentMetrics },
        ],
      },
      variants: [
        { name: control.name, metrics: controlMetrics },
        { name: treatment.name, metrics: treatmentMetrics },
      ],
    });
  });

  it('gives zeros for a variant with no events, and variants in position order', async () => {
    const experiment = await createTestExperiment(handle.db, {
      variants: [{ name: 'zeta' }, { name: 'alpha' }, { name: 'mu', isControl: true }],
    });
    const data = await gqlOk(
      app,
      `query ($id: ID) { experiment(id: $id) { assignmentCount variants { name position isControl weight config
         metrics { exposures uniqueUsers conversions conversionRate avgMetricValue } } } }`,
      { id: experiment.id },
    );
    const zero = { exposures: 0, uniqueUsers: 0, conversions: 0, conversionRate: 0, avgMetricValue: null };
    expect(data.experiment).toEqual({
      assignmentCount: 0,
      variants: [
        { name: 'zeta', position: 0, isControl: false, weight: 1, config: {}, metrics: zero },
        { name: 'alpha', position: 1, isControl: false, weight: 1, config: {}, metrics: zero },
        { name: 'mu', position: 2, isControl: true, weight: 1, config: {}, metrics: zero },
      ],
    });
  });

  it('auditLog lists changes newest first, `first` limiting them', async () => {
    const experiment = await createRunningExperiment(handle.db);
    await experimentService(handle.db).transition(experiment.id, 'pause');
    const data = await gqlOk(
      app,
      `query ($id: ID) { experiment(id: $id) {
         all: auditLog { id actor action entityType entityId details createdAt }
         one: auditLog(first: 1) { action }
         none: auditLog(first: 0) { action }
       } }`,
      { id: experiment.id },
    );
    expect(data.experiment.all.map((a: any) => a.action)).toEqual([
      'experiment.paused',
      'experiment.started',
      'experiment.created',
    ]);
    expect(data.experiment.all[0]).toMatchObject({
      actor: 'test',
      entityType: 'experiment',
      entityId: experiment.id,
      details: { from: 'running', to: 'paused' },
    });
    expect(data.experiment.one).toEqual([{ action: 'experiment.paused' }]);
    expect(data.experiment.none).toEqual([]);
    const seed = await gqlOk(app, `{ experiment(key: "${COMPLETED.key}") { auditLog { action actor } } }`);
    expect(seed.experiment.auditLog).toEqual([
      { action: 'experiment.completed', actor: 'seed' },
      { action: 'experiment.started', actor: 'seed' },
      { action: 'experiment.created', actor: 'seed' },
    ]);
  });

  it('auditLog rejects first above 100', async () => {
    const body = await gql(app, `{ experiment(key: "${HOMEPAGE.key}") { auditLog(first: 101) { id } } }`);
    expect(body.errors![0]).toMatchObject({
      path: ['experiment', 'auditLog'],
      extensions: { code: 'BAD_USER_INPUT', argument: 'first' },
    });
  });
});

describe('Variant fields', () => {
  it('reach their experiment and their metrics', async () => {
    const data = await gqlOk(
      app,
      `query ($id: ID) { experiment(id: $id) { id variants { id experiment { id key }
         metrics { variant { id } exposures uniqueUsers conversions conversionRate avgMetricValue } } } }`,
      { id: HOMEPAGE.id },
    );
    const rows = await summaryOf(HOMEPAGE.id);
    for (const [i, variant] of data.experiment.variants.entries()) {
      expect(variant.experiment).toEqual({ id: HOMEPAGE.id, key: HOMEPAGE.key });
      expect(variant.metrics).toEqual({
        variant: { id: variant.id },
        exposures: rows[i].exposures,
        uniqueUsers: rows[i].unique_users,
        conversions: rows[i].conversions,
        conversionRate: expect.closeTo(Number(rows[i].conversion_rate), 12),
        avgMetricValue:
          rows[i].avg_metric_value === null ? null : expect.closeTo(Number(rows[i].avg_metric_value), 9),
      });
    }
  });
});
