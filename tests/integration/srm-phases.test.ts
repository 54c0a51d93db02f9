/**
 * Phases end to end: changing weights while running opens a phase, units are counted in the phase they were
 * assigned in, and `results { srm }` expects each phase's units to split by that phase's weights. Enrolment
 * follows the weights exactly (deterministic interleaving), so a correct check sees a perfect fit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { rebuildStats } from '../../src/aggregates/rebuild';
import { queryRows, type DatabaseHandle } from '../../src/db/client';
import { recordEvents } from '../../src/events/service';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningWithVariants, experimentService } from '../support/factories';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => handle.close());

/** Enrols and exposes units, `counts[i]` in variant i, through the events API (each event enrols its unit). */
async function enrol(experimentKey: string, variantIds: string[], counts: number[]): Promise<void> {
  const events = counts.flatMap((n, i) =>
    Array.from({ length: n }, () => ({
      kind: 'EXPOSURE',
      experimentKey,
      userId: `u-${randomUUID()}`,
      variantId: variantIds[i],
      eventId: randomUUID(),
    })),
  );
  const result = await recordEvents(handle.db, events);
  expect(result.rejected).toEqual([]);
}

async function srmOf(experimentId: string, includeUnexposed = false) {
  const data = await gqlOk(
    app,
    `query ($id: ID!, $all: Boolean) { experiment(id: $id) {
       phases { index startedAt endedAt trafficAllocation weights { variantId weight } }
       results(metric: "conversion", includeUnexposed: $all) {
         weightsChanged
         srm { chiSquare pValue mismatch observed expected reason phases { index observed expected } }
       }
     } }`,
    { id: experimentId, all: includeUnexposed },
  );
  return data.experiment;
}

async function phaseStats(experimentId: string) {
  return queryRows(
    handle.db,
    sql`SELECT variant_id, phase, exposed_units::int AS n FROM experiment_phase_stats
         WHERE experiment_id = ${experimentId} ORDER BY variant_id, phase`,
  );
}

describe('SRM against the weights in force', () => {
  it('changing weights 1:1 → 1:3 mid-run is not a mismatch; the phases record the history', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const ids = variants.map((v) => v.id);
    await enrol(experiment.key, ids, [200, 200]);
    await experimentService(handle.db).updateVariant(ids[1], { weight: 1.5 });
    await enrol(experiment.key, ids, [200, 600]);

    const e = await srmOf(experiment.id);
    expect(e.phases).toHaveLength(2);
    expect(e.phases[0]).toMatchObject({
      index: 1,
      trafficAllocation: 1,
      weights: [
        { variantId: ids[0], weight: 0.5 },
        { variantId: ids[1], weight: 0.5 },
      ],
    });
    expect(e.phases[0].endedAt).toBe(e.phases[1].startedAt);
    expect(e.phases[1]).toMatchObject({ index: 2, endedAt: null });
    expect(e.phases[1].weights.map((w: { weight: number }) => w.weight)).toEqual([0.5, 1.5]);

    const { srm, weightsChanged } = e.results;
    expect(weightsChanged).toBe(true);
    expect(srm).toMatchObject({ mismatch: false, reason: null, observed: [400, 800], chiSquare: 0 });
    expect(srm.expected).toEqual([400, 800]);
    expect(srm.phases).toEqual([
      { index: 1, observed: [200, 200], expected: [200, 200] },
      { index: 2, observed: [200, 600], expected: [200, 600] },
    ]);
    // The same with every assigned unit counted (read from the assignments, not the aggregates).
    expect((await srmOf(experiment.id, true)).results.srm).toMatchObject({
      mismatch: false,
      observed: [400, 800],
    });

    // The per-phase counts are what a rebuild from raw rows computes.
    const maintained = await phaseStats(experiment.id);
    await rebuildStats(handle.db, [experiment.id]);
    expect(await phaseStats(experiment.id)).toEqual(maintained);
  });

  it('setting a weight to 0 stops the variant without a mismatch; a unit enrolled there afterwards is one', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const ids = variants.map((v) => v.id);
    await enrol(experiment.key, ids, [150, 150]);
    await experimentService(handle.db).updateVariant(ids[1], { weight: 0 });
    await enrol(experiment.key, ids, [300, 0]);
    let srm = (await srmOf(experiment.id)).results.srm;
    expect(srm).toMatchObject({ mismatch: false, reason: null, observed: [450, 150], expected: [450, 150] });

    await enrol(experiment.key, ids, [0, 1]);
    srm = (await srmOf(experiment.id)).results.srm;
    expect(srm).toMatchObject({ mismatch: true, pValue: 0, reason: 'ZERO_WEIGHT_WITH_UNITS' });
    expect(srm.phases[1]).toEqual({ index: 2, observed: [300, 1], expected: [301, 0] });
  });

  it('a real imbalance within a phase is still flagged', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const ids = variants.map((v) => v.id);
    await enrol(experiment.key, ids, [200, 200]);
    await experimentService(handle.db).updateVariant(ids[1], { weight: 1.5 });
    await enrol(experiment.key, ids, [400, 400]);
    const { results } = await srmOf(experiment.id);
    expect(results.srm.mismatch).toBe(true);
    expect(results.srm.expected).toEqual([400, 800]);
  });

  it('a traffic change opens a phase without changing the weights; completing closes the last', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const service = experimentService(handle.db);
    await service.update(experiment.id, { trafficAllocation: 0.5 });
    await service.update(experiment.id, { name: 'renamed' });
    await service.transition(experiment.id, 'pause');
    await service.transition(experiment.id, 'start');
    await service.transition(experiment.id, 'complete');
    const e = await srmOf(experiment.id);
    expect(e.phases.map((p: { trafficAllocation: number }) => p.trafficAllocation)).toEqual([1, 0.5]);
    expect(e.phases[1].endedAt).not.toBeNull();
    expect(e.results.weightsChanged).toBe(false);
    expect(variants).toHaveLength(2);
  });

  it('a weight change while paused opens a phase; an unchanged weight or a draft edit does not', async () => {
    const { experiment, variants } = await createRunningWithVariants(handle.db);
    const service = experimentService(handle.db);
    await service.updateVariant(variants[0].id, { weight: 0.5, config: { note: 'same weight' } });
    await service.transition(experiment.id, 'pause');
    await service.updateVariant(variants[0].id, { weight: 2 });
    await service.transition(experiment.id, 'start');
    const e = await srmOf(experiment.id);
    expect(e.phases.map((p: { weights: { weight: number }[] }) => p.weights.map((w) => w.weight))).toEqual([
      [0.5, 0.5],
      [2, 0.5],
    ]);
    expect(e.results.weightsChanged).toBe(true);
  });

  it('a draft has no phases and checks against its current weights', async () => {
    const created = await experimentService(handle.db).create({
      key: `draft-${randomUUID().slice(0, 8)}`,
      name: 'Draft',
      variants: [{ name: 'a', isControl: true }, { name: 'b' }],
    });
    await experimentService(handle.db).updateVariant((await variantsOf(created.id))[1], { weight: 3 });
    const e = await srmOf(created.id);
    expect(e.phases).toEqual([]);
    expect(e.results.srm).toMatchObject({ reason: 'NO_UNITS', expected: [0, 0] });
  });
});

async function variantsOf(experimentId: string): Promise<string[]> {
  const rows = await queryRows<{ id: string }>(
    handle.db,
    sql`SELECT id FROM experiment_variants WHERE experiment_id = ${experimentId} ORDER BY position`,
  );
  return rows.map((r) => r.id);
}
