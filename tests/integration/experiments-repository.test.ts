import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eq, sql } from 'drizzle-orm';
import { EXPOSURE_METRIC } from '../../src/aggregates/constants';
import { getExperimentMetrics } from '../../src/aggregates/read';
import { queryRows, type Database, type DatabaseHandle, type Db } from '../../src/db/client';
import { experimentConversions, experimentExposures, experimentVariants } from '../../src/db/schema';
import { recordMetric } from '../../src/events/service';
import * as repo from '../../src/experiments/repository';
import type { ExperimentRow, VariantRow } from '../../src/experiments/repository';
import { openTestDatabase } from '../support/db';
import { assignUnit, uniqueKey } from '../support/factories';
import { expectMetricsEqual, recomputeMetrics, rowCounts } from '../support/rows';

let handle: DatabaseHandle;
let db: Database;

beforeAll(async () => {
  handle = await openTestDatabase();
  db = handle.db;
});
afterAll(async () => handle.close());

const twoVariants = (): repo.NewVariantParams[] => [
  { name: 'control', weight: 1, config: { rail: 'popular' }, isControl: true },
  { name: 'treatment', weight: 1, config: { rail: 'personal' }, isControl: false },
];

async function create(
  target: Db = db,
  overrides: Partial<repo.CreateExperimentParams> = {},
): Promise<{ experiment: ExperimentRow; variants: VariantRow[] }> {
  return repo.createExperiment(target, {
    key: uniqueKey('repo'),
    name: 'Repository test',
    variants: twoVariants(),
    ...overrides,
  });
}

/** The experiment, started (so events may enroll units in the variant they name). */
async function createRunning(overrides: Partial<repo.CreateExperimentParams> = {}) {
  const created = await create(db, overrides);
  await repo.updateExperiment(db, created.experiment.id, { status: 'running' });
  return created;
}

/** Events go through the events service (recordMetric takes the experiment id); the first enrolls the unit. */
async function exposure(experimentId: string, variantId: string, userId: string) {
  return recordMetric(db, { experimentId, variantId, userId, metricName: EXPOSURE_METRIC });
}

async function conversion(experimentId: string, variantId: string, userId: string, value: number) {
  return recordMetric(db, { experimentId, variantId, userId, metricName: 'purchase', value });
}

const SEED_KEYS = ['homepage-recs-collaborative', 'continue-watching-ranking', 'genre-affinity-boost'];

describe('experiments and their lookups', () => {
  it('createExperiment stores the experiment with defaults and its variants in position order', async () => {
    const key = uniqueKey('repo');
    const { experiment, variants } = await repo.createExperiment(db, {
      key,
      name: 'Defaults',
      variants: [
        { name: 'a', weight: 2, config: { n: 1 }, isControl: true },
        { name: 'b', weight: 1, config: {}, isControl: false },
        { name: 'c', weight: 0, config: {}, isControl: false },
      ],
    });
    expect(experiment).toMatchObject({
      key,
      name: 'Defaults',
      description: null,
      status: 'draft',
      trafficAllocation: 1,
      hashSeed: null,
      startAt: null,
      endAt: null,
    });
    expect(experiment.createdAt).toBeInstanceOf(Date);
    expect(variants.map((v) => [v.name, v.position, v.weight, v.isControl])).toEqual([
      ['a', 0, 2, true],
      ['b', 1, 1, false],
      ['c', 2, 0, false],
    ]);
    expect(variants.every((v) => v.experimentId === experiment.id)).toBe(true);
    expect(variants[0].config).toEqual({ n: 1 });
  });

  it('createExperiment with no variants creates just the experiment', async () => {
    const { experiment, variants } = await create(db, { variants: [], trafficAllocation: 0.25 });
    expect(variants).toEqual([]);
    expect(experiment.trafficAllocation).toBe(0.25);
    expect(await repo.getVariants(db, experiment.id)).toEqual([]);
  });

  it('getExperiment finds by id and by key, and returns null for an unknown one', async () => {
    const { experiment } = await create(db, { description: 'why', hashSeed: 'salt' });
    expect(await repo.getExperiment(db, { id: experiment.id })).toEqual(experiment);
    expect(await repo.getExperiment(db, { key: experiment.key })).toEqual(experiment);
    expect(await repo.getExperiment(db, { id: randomUUID() })).toBeNull();
    expect(await repo.getExperiment(db, { key: uniqueKey('missing') })).toBeNull();
  });

  it('getExperimentsByIds and getExperimentsByKeys return the rows that exist and skip the rest', async () => {
    const a = (await create()).experiment;
    const b = (await create()).experiment;
    const byId = await repo.getExperimentsByIds(db, [a.id, b.id, randomUUID()]);
    expect(byId.map((e) => e.id).sort()).toEqual([a.id, b.id].sort());
    const byKey = await repo.getExperimentsByKeys(db, [b.key, uniqueKey('missing')]);
    expect(byKey).toEqual([b]);
    expect(await repo.getExperimentsByIds(db, [])).toEqual([]);
    expect(await repo.getExperimentsByKeys(db, [])).toEqual([]);
  });

  it('lockExperiment returns the row inside a transaction, and null for an unknown id', async () => {
    const { experiment } = await create();
    await db.transaction(async (tx) => {
      expect(await repo.lockExperiment(tx, experiment.id)).toEqual(experiment);
      expect(await repo.lockExperiment(tx, randomUUID())).toBeNull();
    });
  });

  it('updateExperiment changes only the patched fields and moves updatedAt', async () => {
    const { experiment } = await create(db, { description: 'before' });
    const after = await repo.updateExperiment(db, experiment.id, {
      name: 'Renamed',
      trafficAllocation: 0.4,
      hashSeed: 'new-seed',
    });
    expect(after).toMatchObject({
      id: experiment.id,
      key: experiment.key,
      name: 'Renamed',
      description: 'before',
      trafficAllocation: 0.4,
      hashSeed: 'new-seed',
      status: 'draft',
    });
    expect(after!.updatedAt.getTime()).toBeGreaterThanOrEqual(experiment.updatedAt.getTime());
    expect(await repo.getExperiment(db, { id: experiment.id })).toEqual(after);
    expect(await repo.updateExperiment(db, randomUUID(), { name: 'nobody' })).toBeNull();
  });

  it('countExperiments counts all rows, or those with one status', async () => {
    await create();
    await db.transaction(
      async (tx) => {
        const all = await queryRows<{ status: string }>(tx, sql`SELECT status FROM experiments`);
        expect(await repo.countExperiments(tx)).toBe(all.length);
        expect(await repo.countExperiments(tx, 'draft')).toBe(all.filter((r) => r.status === 'draft').length);
        expect(await repo.countExperiments(tx, 'completed')).toBeGreaterThanOrEqual(1);
      },
      { isolationLevel: 'repeatable read' },
    );
  });
});

describe('listExperiments (keyset pagination)', () => {
  /** Pages from the newest row until past `oldest`; other files may add rows meanwhile, never older ones. */
  async function pageThrough(limit: number, oldest: Date, status?: ExperimentRow['status']) {
    const seen: ExperimentRow[] = [];
    let before: { createdAt: Date; id: string } | null = null;
    for (let pages = 0; pages < 10_000; pages++) {
      const page = await repo.listExperiments(db, { limit, before, status });
      expect(page.length).toBeLessThanOrEqual(limit);
      if (page.length === 0) break;
      seen.push(...page);
      const last = page[page.length - 1];
      before = { createdAt: last.createdAt, id: last.id };
      if (last.createdAt < oldest) break;
    }
    return seen;
  }

  const newestFirst = (a: ExperimentRow, b: ExperimentRow) =>
    b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

  it('returns every row exactly once, newest first, with the id breaking created_at ties', async () => {
    // Rows made in one transaction share created_at (now() is the transaction's start).
    const tied = await db.transaction(async (tx) => {
      const rows: ExperimentRow[] = [];
      for (let i = 0; i < 5; i++) rows.push((await create(tx, { variants: [] })).experiment);
      return rows;
    });
    expect(new Set(tied.map((e) => e.createdAt.getTime())).size).toBe(1);
    const later = [(await create()).experiment, (await create()).experiment];
    const mine = [...tied, ...later].sort(newestFirst);

    const seen = await pageThrough(2, tied[0].createdAt);
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...seen].sort(newestFirst).map((e) => e.id)).toEqual(ids);
    const mineIds = new Set(mine.map((e) => e.id));
    expect(seen.filter((e) => mineIds.has(e.id)).map((e) => e.id)).toEqual(mine.map((e) => e.id));
  });

  it('filters by status on every page', async () => {
    const paused: ExperimentRow[] = [];
    for (let i = 0; i < 3; i++) {
      const { experiment } = await create();
      paused.push((await repo.updateExperiment(db, experiment.id, { status: 'paused' }))!);
    }
    const draft = (await create()).experiment;
    // Created one after another, so the first is the oldest.
    const seen = await pageThrough(2, paused[0].createdAt, 'paused');
    expect(seen.every((e) => e.status === 'paused')).toBe(true);
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(paused.map((e) => e.id)));
    expect(ids).not.toContain(draft.id);
  });

  it('returns an empty page after the oldest row', async () => {
    expect(
      await repo.listExperiments(db, {
        limit: 5,
        before: { createdAt: new Date('2000-01-01T00:00:00Z'), id: randomUUID() },
      }),
    ).toEqual([]);
  });
});

describe('variants', () => {
  it('addVariant appends at the next position; getVariants returns them in position order', async () => {
    const { experiment, variants } = await create();
    const added = await repo.addVariant(db, experiment.id, {
      name: 'third',
      weight: 0.5,
      config: { x: true },
      isControl: false,
    });
    expect(added).toMatchObject({ experimentId: experiment.id, name: 'third', position: 2, weight: 0.5 });
    const fourth = await repo.addVariant(db, experiment.id, {
      name: 'fourth',
      weight: 1,
      config: {},
      isControl: false,
    });
    expect(fourth.position).toBe(3);
    expect((await repo.getVariants(db, experiment.id)).map((v) => v.id)).toEqual([
      ...variants.map((v) => v.id),
      added.id,
      fourth.id,
    ]);
  });

  it('addVariant on an experiment with no variants starts at position 0', async () => {
    const { experiment } = await create(db, { variants: [] });
    const first = await repo.addVariant(db, experiment.id, {
      name: 'only',
      weight: 1,
      config: {},
      isControl: true,
    });
    expect(first.position).toBe(0);
  });

  it('getVariantsByExperimentIds loads many experiments in one statement, grouped and in position order', async () => {
    const a = await create();
    const b = await create(db, {
      variants: [
        { name: 'x', weight: 1, config: {}, isControl: false },
        { name: 'y', weight: 1, config: {}, isControl: false },
        { name: 'z', weight: 1, config: {}, isControl: false },
      ],
    });
    const before = handle.statements.count;
    const rows = await repo.getVariantsByExperimentIds(db, [a.experiment.id, b.experiment.id]);
    expect(handle.statements.count - before).toBe(1);
    const of = (id: string) => rows.filter((v) => v.experimentId === id).map((v) => v.name);
    expect(of(a.experiment.id)).toEqual(['control', 'treatment']);
    expect(of(b.experiment.id)).toEqual(['x', 'y', 'z']);
    expect(rows).toHaveLength(5);
    expect(await repo.getVariantsByExperimentIds(db, [])).toEqual([]);
  });

  it('getVariantsByIds returns the variants that exist', async () => {
    const { variants } = await create();
    const rows = await repo.getVariantsByIds(db, [variants[1].id, randomUUID()]);
    expect(rows).toEqual([variants[1]]);
    expect(await repo.getVariantsByIds(db, [])).toEqual([]);
  });

  it('updateVariant patches the given fields only, and returns null for an unknown id', async () => {
    const { variants } = await create();
    const after = await repo.updateVariant(db, variants[1].id, { weight: 3, config: { rail: 'v2' } });
    expect(after).toEqual({ ...variants[1], weight: 3, config: { rail: 'v2' } });
    expect(await repo.updateVariant(db, randomUUID(), { weight: 1 })).toBeNull();
  });

  it('removeVariant deletes the variant (true) and reports an unknown id (false)', async () => {
    const { experiment, variants } = await create();
    expect(await repo.removeVariant(db, variants[0].id)).toBe(true);
    expect((await repo.getVariants(db, experiment.id)).map((v) => v.id)).toEqual([variants[1].id]);
    expect(await repo.removeVariant(db, variants[0].id)).toBe(false);
  });

  it('getVariants orders by position, not by insertion', async () => {
    const { experiment } = await create(db, { variants: [] });
    await db.insert(experimentVariants).values([
      { experimentId: experiment.id, name: 'second', position: 1 },
      { experimentId: experiment.id, name: 'first', position: 0 },
    ]);
    expect((await repo.getVariants(db, experiment.id)).map((v) => v.name)).toEqual(['first', 'second']);
  });
});

describe('deleteExperiment', () => {
  it('cascades to variants, assignments, exposures, conversions and their aggregates', async () => {
    const { experiment, variants } = await createRunning();
    const other = await createRunning();
    for (const [i, user] of ['u1', 'u2', 'u3'].entries()) {
      const variant = variants[i % 2];
      await assignUnit(db, { experimentId: experiment.id, userId: user, variantId: variant.id });
      await exposure(experiment.id, variant.id, user);
      await conversion(experiment.id, variant.id, user, 5);
    }
    await assignUnit(db, {
      experimentId: other.experiment.id,
      userId: 'u1',
      variantId: other.variants[0].id,
    });
    await exposure(other.experiment.id, other.variants[0].id, 'u1');
    expect(await rowCounts(db, experiment.id)).toMatchObject({
      experiments: 1,
      variants: 2,
      assignments: 3,
      exposures: 3,
      conversions: 3,
    });

    const aggregates = async () =>
      (
        await queryRows<{ n: number }>(
          db,
          sql`SELECT (SELECT count(*) FROM experiment_user_metrics WHERE experiment_id = ${experiment.id})::int
                   + (SELECT count(*) FROM experiment_variant_stats WHERE experiment_id = ${experiment.id})::int AS n`,
        )
      )[0].n;
    expect(await aggregates()).toBeGreaterThan(0);

    expect(await repo.deleteExperiment(db, experiment.id)).toBe(true);
    expect(await aggregates()).toBe(0);
    expect(await rowCounts(db, experiment.id)).toMatchObject({
      experiments: 0,
      variants: 0,
      assignments: 0,
      exposures: 0,
      conversions: 0,
    });
    // Another experiment's rows for the same user are untouched.
    expect(await rowCounts(db, other.experiment.id)).toMatchObject({
      experiments: 1,
      variants: 2,
      assignments: 1,
      exposures: 1,
    });
    expect(await repo.deleteExperiment(db, experiment.id)).toBe(false);
  });

  it('deleting a variant removes its assignments and events too', async () => {
    const { experiment, variants } = await createRunning();
    await assignUnit(db, { experimentId: experiment.id, userId: 'gone', variantId: variants[1].id });
    await exposure(experiment.id, variants[1].id, 'gone');
    await assignUnit(db, { experimentId: experiment.id, userId: 'kept', variantId: variants[0].id });
    await repo.removeVariant(db, variants[1].id);
    expect(await rowCounts(db, experiment.id)).toMatchObject({ variants: 1, assignments: 1, exposures: 0 });
  });
});

describe('metrics', () => {
  /**
   * A small experiment with known numbers. A: 3 exposed users (a1 twice), a1 converts once (10).
   * B: 2 exposed users; b1 converts twice (20, 40); b3 converts (30) without an exposure, which is not
   * attributed. C: nothing. D: d1 converts (7) before being exposed (not attributed: its window opens at the
   * exposure), d2 is exposed only.
   */
  async function knownExperiment() {
    const { experiment, variants } = await createRunning({
      variants: [
        { name: 'a', weight: 1, config: {}, isControl: true },
        { name: 'b', weight: 1, config: {}, isControl: false },
        { name: 'c', weight: 1, config: {}, isControl: false },
        { name: 'd', weight: 1, config: {}, isControl: false },
      ],
    });
    const [a, b, , d] = variants;
    for (const user of ['a1', 'a1', 'a2', 'a3']) await exposure(experiment.id, a.id, user);
    await conversion(experiment.id, a.id, 'a1', 10);
    for (const user of ['b1', 'b2']) await exposure(experiment.id, b.id, user);
    await conversion(experiment.id, b.id, 'b1', 20);
    await conversion(experiment.id, b.id, 'b1', 40);
    await conversion(experiment.id, b.id, 'b3', 30);
    await conversion(experiment.id, d.id, 'd1', 7);
    await exposure(experiment.id, d.id, 'd1');
    await exposure(experiment.id, d.id, 'd2');
    return { experiment, variants };
  }

  it('getExperimentMetrics gives the known numbers per variant, zeros for a variant with no events', async () => {
    const { experiment, variants } = await knownExperiment();
    const rows = await getExperimentMetrics(db, [experiment.id]);
    expectMetricsEqual(rows, [
      {
        experimentId: experiment.id,
        variantId: variants[0].id,
        variantName: 'a',
        exposures: 4,
        uniqueUsers: 3,
        conversions: 1,
        conversionRate: 1 / 3,
        avgMetricValue: 10,
      },
      {
        experimentId: experiment.id,
        variantId: variants[1].id,
        variantName: 'b',
        exposures: 2,
        uniqueUsers: 2,
        conversions: 2,
        conversionRate: 1 / 2,
        avgMetricValue: 30,
      },
      {
        experimentId: experiment.id,
        variantId: variants[2].id,
        variantName: 'c',
        exposures: 0,
        uniqueUsers: 0,
        conversions: 0,
        conversionRate: 0,
        avgMetricValue: null,
      },
      {
        experimentId: experiment.id,
        variantId: variants[3].id,
        variantName: 'd',
        exposures: 2,
        uniqueUsers: 2,
        conversions: 0,
        conversionRate: 0,
        avgMetricValue: null,
      },
    ]);
  });

  it('get_experiment_summary returns one row per variant in position order with the known numbers', async () => {
    const { experiment, variants } = await knownExperiment();
    const rows = await queryRows<Record<string, unknown>>(
      db,
      sql`SELECT * FROM get_experiment_summary(${experiment.id}::uuid)`,
    );
    expect(
      rows.map((r) => [
        r.variant_id,
        r.variant_name,
        Number(r.exposures),
        Number(r.unique_users),
        Number(r.conversions),
        Number(r.conversion_rate),
        r.avg_metric_value === null ? null : Number(r.avg_metric_value),
      ]),
    ).toEqual([
      [variants[0].id, 'a', 4, 3, 1, 1 / 3, 10],
      [variants[1].id, 'b', 2, 2, 2, 0.5, 30],
      [variants[2].id, 'c', 0, 0, 0, 0, null],
      [variants[3].id, 'd', 2, 2, 0, 0, null],
    ]);
  });

  it('getExperimentMetrics agrees with a recomputation from raw rows for the seed and a new experiment, in one statement', async () => {
    const mine = await knownExperiment();
    const seed = await repo.getExperimentsByKeys(db, SEED_KEYS);
    expect(seed).toHaveLength(3);
    const ids = [...seed.map((e) => e.id), mine.experiment.id];
    await db.transaction(
      async (tx) => {
        const before = handle.statements.count;
        const rows = await getExperimentMetrics(tx, ids);
        expect(handle.statements.count - before).toBe(1);
        for (const id of ids) {
          const expected = await recomputeMetrics(tx, id);
          expectMetricsEqual(
            rows.filter((r) => r.experimentId === id),
            expected,
          );
        }
        // The seed's running and completed experiments have real traffic, so the comparison means something.
        const running = seed.find((e) => e.key === 'homepage-recs-collaborative')!;
        for (const row of rows.filter((r) => r.experimentId === running.id)) {
          expect(row.uniqueUsers).toBeGreaterThan(20);
          expect(row.conversionRate).toBeGreaterThan(0);
          expect(row.conversionRate).toBeLessThan(1);
        }
      },
      { isolationLevel: 'repeatable read' },
    );
    expect(await getExperimentMetrics(db, [])).toEqual([]);
    expect(await getExperimentMetrics(db, [randomUUID()])).toEqual([]);
  });

  it('the experiment_metrics view lists every exposure (as metric "exposure", value 1) and every conversion', async () => {
    const mine = await knownExperiment();
    const seed = await repo.getExperimentsByKeys(db, SEED_KEYS);
    await db.transaction(
      async (tx) => {
        for (const id of [...seed.map((e) => e.id), mine.experiment.id]) {
          const view = await queryRows<{ variant_id: string; metric_name: string; n: number; total: number }>(
            tx,
            sql`SELECT variant_id, metric_name, count(*)::int AS n, sum(metric_value)::float8 AS total
                  FROM experiment_metrics WHERE experiment_id = ${id} GROUP BY 1, 2`,
          );
          const exposures = await tx
            .select()
            .from(experimentExposures)
            .where(eq(experimentExposures.experimentId, id));
          const conversions = await tx
            .select()
            .from(experimentConversions)
            .where(eq(experimentConversions.experimentId, id));
          const expected = new Map<string, { n: number; total: number }>();
          const add = (variantId: string, metric: string, value: number) => {
            const k = `${variantId}/${metric}`;
            const cur = expected.get(k) ?? { n: 0, total: 0 };
            expected.set(k, { n: cur.n + 1, total: cur.total + value });
          };
          for (const e of exposures) add(e.variantId, 'exposure', 1);
          for (const c of conversions) add(c.variantId, c.metricName, c.value);
          expect(view).toHaveLength(expected.size);
          for (const row of view) {
            const want = expected.get(`${row.variant_id}/${row.metric_name}`);
            expect(want).toBeDefined();
            expect(row.n).toBe(want!.n);
            expect(Number(row.total)).toBeCloseTo(want!.total, 6);
          }
        }
      },
      { isolationLevel: 'repeatable read' },
    );
    const [a] = mine.variants;
    const rows = await queryRows<{ user_id: string; metric_name: string; metric_value: number }>(
      db,
      sql`SELECT user_id, metric_name, metric_value FROM experiment_metrics
           WHERE experiment_id = ${mine.experiment.id} AND variant_id = ${a.id} ORDER BY metric_name, user_id`,
    );
    expect(rows.map((r) => [r.user_id, r.metric_name, Number(r.metric_value)])).toEqual([
      ['a1', 'exposure', 1],
      ['a1', 'exposure', 1],
      ['a2', 'exposure', 1],
      ['a3', 'exposure', 1],
      ['a1', 'purchase', 10],
    ]);
  });

  it('countAssignmentsByExperimentIds counts per experiment and leaves out experiments without any', async () => {
    const a = await create();
    const b = await create();
    for (const user of ['x', 'y', 'z']) {
      await assignUnit(db, {
        experimentId: a.experiment.id,
        userId: user,
        variantId: a.variants[0].id,
      });
    }
    const counts = await repo.countAssignmentsByExperimentIds(db, [a.experiment.id, b.experiment.id]);
    expect(counts.get(a.experiment.id)).toBe(3);
    expect(counts.has(b.experiment.id)).toBe(false);
    expect((await repo.countAssignmentsByExperimentIds(db, [])).size).toBe(0);
  });
});

describe('planned reads with some columns (getExperimentsWith)', () => {
  const EXPERIMENT_COLUMNS: repo.ExperimentColumn[] = [
    'id',
    'key',
    'name',
    'description',
    'status',
    'trafficAllocation',
    'hashSeed',
    'startAt',
    'endAt',
    'createdAt',
    'updatedAt',
    'targeting',
    'layerId',
    'layerRanges',
    'kind',
    'holdoutId',
  ];
  const VARIANT_COLUMNS: repo.VariantColumn[] = [
    'id',
    'name',
    'weight',
    'config',
    'isControl',
    'position',
    'createdAt',
  ];

  async function full() {
    const { experiment, variants } = await create(db, {
      description: 'Hypothesis: personal rails beat popular ones',
      trafficAllocation: 0.4,
      hashSeed: 'seed-1',
      targeting: { country: { $in: ['US', 'CA'] } },
    });
    const read = async (include: repo.ExperimentInclude) => {
      const rows = await repo.getExperimentsWith(db, { ids: [experiment.id], keys: [] }, include);
      expect(rows).toHaveLength(1);
      return rows[0];
    };
    return { experiment: (await repo.getExperiment(db, { id: experiment.id }))!, variants, read };
  }

  it('reads every column when none are named, and the row is complete', async () => {
    const { experiment, variants, read } = await full();
    const row = await read({ variants: true });
    expect(row.complete).toBe(true);
    expect(row.experiment).toEqual(experiment);
    expect(row.variants).toEqual(variants);
  });

  it('reads each column alone with the value a whole-row read gives, and the id with it', async () => {
    const { experiment, variants, read } = await full();
    for (const column of EXPERIMENT_COLUMNS) {
      const row = await read({ columns: repo.experimentColumnMask([column]) });
      expect(row.complete).toBe(false);
      expect(row.experiment[column]).toEqual(experiment[column]);
      expect(row.experiment.id).toBe(experiment.id);
      const others = EXPERIMENT_COLUMNS.filter((c) => c !== column && c !== 'id');
      expect(others.filter((c) => row.experiment[c] !== undefined)).toEqual([]);
    }
    for (const column of VARIANT_COLUMNS) {
      const row = await read({
        columns: 1,
        variants: true,
        variantColumns: repo.variantColumnMask([column]),
      });
      expect(row.variants!.map((v) => v[column])).toEqual(variants.map((v) => v[column]));
      expect(row.variants!.map((v) => [v.id, v.experimentId])).toEqual(
        variants.map((v) => [v.id, experiment.id]),
      );
    }
  });

  it('keeps at most 256 projections: past them a new one reads whole rows, and every answer is right', async () => {
    const { experiment, read } = await full();
    let projected = 0;
    let wholeAfterCap = 0;
    // 300 distinct column sets (the id plus the bits of n over the other 15 columns).
    for (let n = 1; n <= 300; n++) {
      const columns = EXPERIMENT_COLUMNS.filter((_, i) => i > 0 && n & (1 << (i - 1)));
      const row = await read({ columns: repo.experimentColumnMask(columns) });
      for (const column of columns) expect(row.experiment[column]).toEqual(experiment[column]);
      if (row.complete) {
        expect(row.experiment).toEqual(experiment);
        wholeAfterCap++;
      } else projected++;
    }
    expect(projected).toBeLessThanOrEqual(256);
    expect(wholeAfterCap).toBeGreaterThanOrEqual(300 - 256);
  });
});

describe('audit log', () => {
  it('insertAudit stores a row and listAuditByEntityIds returns an entity’s rows newest first, up to the limit', async () => {
    const { experiment } = await create();
    for (const action of ['experiment.created', 'experiment.updated', 'experiment.started']) {
      await repo.insertAudit(db, {
        actor: 'tester',
        action,
        entityType: 'experiment',
        entityId: experiment.id,
        details: { action },
      });
    }
    const rows = await repo.listAuditByEntityIds(db, [experiment.id], 10);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.actor === 'tester' && r.entityType === 'experiment')).toBe(true);
    const ordered = [...rows].sort(
      (x, y) => y.createdAt.getTime() - x.createdAt.getTime() || (x.id < y.id ? 1 : -1),
    );
    expect(rows).toEqual(ordered);
    expect(new Set(rows.map((r) => r.action))).toEqual(
      new Set(['experiment.created', 'experiment.updated', 'experiment.started']),
    );
    expect(rows.every((r) => r.details.action === r.action && r.createdAt instanceof Date)).toBe(true);
    expect(await repo.listAuditByEntityIds(db, [experiment.id], 2)).toEqual(rows.slice(0, 2));
    expect(await repo.listAuditByEntityIds(db, [randomUUID()], 10)).toEqual([]);
    expect(await repo.listAuditByEntityIds(db, [], 10)).toEqual([]);
    // Several entities in one statement: the limit applies to each.
    const other = (await create()).experiment;
    await repo.insertAudit(db, {
      actor: 'tester',
      action: 'experiment.created',
      entityType: 'experiment',
      entityId: other.id,
      details: {},
    });
    const both = await repo.listAuditByEntityIds(db, [experiment.id, other.id], 2);
    expect(both.filter((r) => r.entityId === experiment.id)).toEqual(rows.slice(0, 2));
    expect(both.filter((r) => r.entityId === other.id).map((r) => r.action)).toEqual(['experiment.created']);
    expect(both).toHaveLength(3);
  });
});
