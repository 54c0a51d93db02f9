/**
 * No N+1: the dashboard query costs the same number of SQL statements for 5 experiments as for 50 —
 * one, as the page and its nested lists are planned as one statement; fields the plan does not cover
 * still cost one batched statement per loader, whatever the page size.
 * It runs on a scratch database of its own, so the page holds exactly the experiments made here (the
 * run database on PostgreSQL is shared with files running at the same time).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import type { App } from '../../src/http/app';
import { createTestApp, gql, gqlOk } from '../support/app';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { createRunningExperiment, createTestExperiment } from '../support/factories';

const DASHBOARD = `{
  experiments(first: 50) {
    edges { node {
      variants { metrics { exposures conversions conversionRate } }
      metrics { variantMetrics { conversions } }
      assignmentCount
    } }
  }
}`;

let scratch: ScratchDatabase;
let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  scratch = await createScratchDatabase();
  handle = scratch.handle;
  await migrateDatabase(handle);
  app = createTestApp(handle);
});
afterAll(async () => scratch.drop());

/** Experiments with three variants; every other one running, with an assigned, exposed, converted user. */
async function addExperiments(from: number, to: number) {
  for (let i = from; i < to; i++) {
    const variants = [
      { name: 'control', isControl: true },
      { name: 'b', config: { i } },
      { name: 'c', weight: 2 },
    ];
    if (i % 2 === 1) {
      await createTestExperiment(handle.db, { variants });
      continue;
    }
    const experiment = await createRunningExperiment(handle.db, { variants });
    await gqlOk(
      app,
      `mutation ($key: String!) {
        a: assignVariant(experimentKey: $key, userId: "u1") { __typename }
        e: recordExposure(input: { experimentKey: $key, userId: "u1" }) { __typename }
        c: recordConversion(input: { experimentKey: $key, userId: "u1", metricName: "conversion" }) { __typename }
      }`,
      { key: experiment.key },
    );
  }
}

/** Through loaders, not the planned statement: metric names and the variants' experiment. */
const UNPLANNED = `{
  experiments(first: 50) { edges { node { metricNames variants { experiment { key } } } } }
}`;

async function measure(
  query = DASHBOARD,
  variables?: Record<string, unknown>,
): Promise<{ statements: number; experiments: number; data: any }> {
  const before = handle.statements.count;
  const data = await gqlOk(app, query, variables);
  return {
    statements: handle.statements.count - before,
    experiments: data.experiments?.edges.length ?? 0,
    data,
  };
}

describe('dashboard query statement count', () => {
  it('is the same small number for 5 experiments as for 50', async () => {
    await addExperiments(0, 5);
    const five = await measure();
    expect(five.experiments).toBe(5);
    const fiveUnplanned = await measure(UNPLANNED);

    await addExperiments(5, 50);
    const fifty = await measure();
    expect(fifty.experiments).toBe(50);
    const fiftyUnplanned = await measure(UNPLANNED);
    expect(fiftyUnplanned.statements).toBe(fiveUnplanned.statements);
    // The page (with its variants) plus one batched statement for the metric names.
    expect(fiftyUnplanned.statements).toBe(2);
    for (const edge of fiftyUnplanned.data.experiments.edges) {
      expect(edge.node.variants).toHaveLength(3);
      expect(new Set(edge.node.variants.map((v: any) => v.experiment.key)).size).toBe(1);
    }

    // Reported in the test output so a change in the count is easy to see.
    console.log(
      `dashboard query: ${five.statements} statements for 5 experiments, ${fifty.statements} for 50`,
    );
    expect(five.statements).toBeGreaterThan(0); // the counter counts
    expect(fifty.statements).toBe(five.statements);
    expect(fifty.statements).toBe(1);

    // And it answers correctly: running experiments have one exposed, converted user.
    const nodes = fifty.data.experiments.edges.map((e: any) => e.node);
    const running = nodes.filter((n: any) => n.assignmentCount === 1);
    expect(running).toHaveLength(25);
    for (const node of running) {
      expect(node.variants).toHaveLength(3);
      const exposed = node.variants.filter((v: any) => v.metrics.exposures === 1);
      expect(exposed).toHaveLength(1);
      expect(exposed[0].metrics).toEqual({ exposures: 1, conversions: 1, conversionRate: 1 });
      expect(node.metrics.variantMetrics.map((m: any) => m.conversions).sort()).toEqual([0, 0, 1]);
    }
  });

  it('pages through this database exactly: totalCount, no duplicates, no gaps', async () => {
    const all = await gqlOk(app, `{ experiments(first: 100) { totalCount edges { node { id } } } }`);
    expect(all.experiments.totalCount).toBe(50);
    const expected = all.experiments.edges.map((e: any) => e.node.id);
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const data: any = await gqlOk(
        app,
        `query ($after: String) { experiments(first: 7, after: $after) {
           totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`,
        { after },
      );
      expect(data.experiments.totalCount).toBe(50);
      seen.push(...data.experiments.edges.map((e: any) => e.node.id));
      if (!data.experiments.pageInfo.hasNextPage) break;
      after = data.experiments.pageInfo.endCursor;
    }
    expect(seen).toEqual(expected);
    const running = await gqlOk(
      app,
      `{ experiments(status: RUNNING, first: 100) { totalCount edges { node { id } } } }`,
    );
    expect(running.experiments.totalCount).toBe(25);
    expect(running.experiments.edges).toHaveLength(25);
  });

  // Runs last: it adds an experiment to the page the tests above count.
  it('reads one experiment with its variants and audit log in one statement, through fragments and aliases', async () => {
    const experiment = await createRunningExperiment(handle.db, {
      variants: [{ name: 'control', isControl: true }, { name: 'b' }],
    });
    const query = `query ($key: String!) {
      experiment(key: $key) { ...Card newest: auditLog(first: 1) { action } }
    }
    fragment Card on Experiment {
      key variants { name metrics { exposures } } assignmentCount
      auditLog(first: 5) { action entityId }
    }`;
    const { statements, data } = await measure(query, { key: experiment.key });
    expect(statements).toBe(1);
    expect(data.experiment.key).toBe(experiment.key);
    expect(data.experiment.variants).toEqual([
      { name: 'control', metrics: { exposures: 0 } },
      { name: 'b', metrics: { exposures: 0 } },
    ]);
    expect(data.experiment.assignmentCount).toBe(0);
    // Newest first, each selection its own length.
    expect(data.experiment.auditLog.map((a: any) => a.action)).toEqual([
      'experiment.started',
      'experiment.created',
    ]);
    expect(data.experiment.auditLog.every((a: any) => a.entityId === experiment.id)).toBe(true);
    expect(data.experiment.newest).toEqual([{ action: 'experiment.started' }]);
    // A bad page size is still the resolver's typed error, with the other fields answered.
    const bad = await gql(
      app,
      `{ experiment(key: "${experiment.key}") { key auditLog(first: -1) { action } } }`,
    );
    expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  });
});

// After the counts above: these add experiments of their own.
describe('planned reads with the selected columns', () => {
  it('answers each field as a whole-row read does, and a lookup elsewhere in the request still sees the whole row', async () => {
    const experiment = await createRunningExperiment(handle.db, {
      description: 'Personal rails beat popular ones',
      trafficAllocation: 0.5,
      hashSeed: 'seed-x',
      targeting: { country: { $in: ['US'] } },
      variants: [
        { name: 'control', isControl: true, config: { rail: 'popular' } },
        { name: 'b', weight: 3 },
      ],
    });
    const FIELDS =
      'id key name description status trafficAllocation kind hashSeed targeting startAt endAt createdAt updatedAt';
    // `metricNames` is not planned: the same experiment read with every column, for comparison.
    const whole = (
      await gqlOk(app, `query ($id: ID!) { experiment(id: $id) { ${FIELDS} metricNames } }`, {
        id: experiment.id,
      })
    ).experiment;
    expect(whole.description).toBe('Personal rails beat popular ones');
    expect(whole.startAt).not.toBeNull();

    const page = await measure(`{ experiments(first: 100) { edges { node {
      ${FIELDS} variants { id name weight config isControl position } } } } }`);
    expect(page.statements).toBe(1);
    const node = page.data.experiments.edges.find((e: any) => e.node.id === experiment.id).node;
    const { variants, ...fields } = node;
    const { metricNames: _, ...wholeFields } = whole;
    expect(fields).toEqual(wholeFields);
    expect(variants).toEqual([
      {
        id: expect.any(String),
        name: 'control',
        weight: 1,
        config: { rail: 'popular' },
        isControl: true,
        position: 0,
      },
      { id: expect.any(String), name: 'b', weight: 3, config: {}, isControl: false, position: 1 },
    ]);

    // The page reads names only; the variants' experiment is loaded whole (a second statement), not
    // taken from the page's partial rows.
    const mixed = await measure(`{ experiments(first: 100) { edges { node {
      id name variants { experiment { description trafficAllocation createdAt } } } } } }`);
    expect(mixed.statements).toBe(2);
    const mixedNode = mixed.data.experiments.edges.find((e: any) => e.node.id === experiment.id);
    expect(mixedNode.node.variants[0].experiment).toEqual({
      description: whole.description,
      trafficAllocation: whole.trafficAllocation,
      createdAt: whole.createdAt,
    });
  });

  it('finds an experiment by key when the key is not selected, and batches lookups with different selections', async () => {
    const one = await createTestExperiment(handle.db, { description: 'first' });
    const two = await createTestExperiment(handle.db, { description: 'second' });
    const { statements, data } = await measure(
      `query ($key: String!, $id: ID!) {
        a: experiment(key: $key) { name variants { weight } }
        b: experiment(id: $id) { description variants { config } }
      }`,
      { key: one.key, id: two.id },
    );
    expect(statements).toBe(1);
    expect(data.a).toEqual({ name: 'Test experiment', variants: [{ weight: 0.5 }, { weight: 0.5 }] });
    expect(data.b).toEqual({
      description: 'second',
      variants: [{ config: { strategy: 'baseline' } }, { config: { strategy: 'new' } }],
    });
  });

  it('gives cursors and page info when only they and the ids are selected', async () => {
    const first = await gqlOk(
      app,
      `{ experiments(first: 3) { edges { cursor node { id } } pageInfo { endCursor hasNextPage } } }`,
    );
    const { edges, pageInfo } = first.experiments;
    expect(pageInfo.endCursor).toBe(edges[2].cursor);
    const next = await gqlOk(
      app,
      `query ($after: String) { experiments(first: 1, after: $after) { edges { node { id } } } }`,
      {
        after: pageInfo.endCursor,
      },
    );
    const all = await gqlOk(app, `{ experiments(first: 4) { edges { node { id } } } }`);
    expect(next.experiments.edges[0].node.id).toBe(all.experiments.edges[3].node.id);
  });
});
