/**
 * No N+1: the dashboard query costs the same number of SQL statements for 5 experiments as for 50.
 * It runs on a scratch database of its own, so the page holds exactly the experiments made here (the
 * run database on PostgreSQL is shared with files running at the same time).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
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

async function measure(): Promise<{ statements: number; experiments: number; data: any }> {
  const before = handle.statements.count;
  const data = await gqlOk(app, DASHBOARD);
  return { statements: handle.statements.count - before, experiments: data.experiments.edges.length, data };
}

describe('dashboard query statement count', () => {
  it('is the same small number for 5 experiments as for 50', async () => {
    await addExperiments(0, 5);
    const five = await measure();
    expect(five.experiments).toBe(5);

    await addExperiments(5, 50);
    const fifty = await measure();
    expect(fifty.experiments).toBe(50);

    // Reported in the test output so a change in the count is easy to see.
    console.log(
      `dashboard query: ${five.statements} statements for 5 experiments, ${fifty.statements} for 50`,
    );
    expect(five.statements).toBeGreaterThan(0); // the counter counts
    expect(fifty.statements).toBe(five.statements);
    expect(fifty.statements).toBeLessThanOrEqual(6);

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
});
