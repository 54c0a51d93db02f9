/**
 * The README's promise: a GrowthBook SDK evaluating locally, fed the experiment this API publishes
 * (`Experiment.growthbook`), puts every user where the service does. Checked with GrowthBook's own SDK
 * (@growthbook/growthbook) on configurations where a rescaled range used to disagree, 10,000 users each:
 * all of them against the variant the service picks for a new user from the stored configuration (what
 * assignVariant stores), the first 300 also through assignVariant itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GrowthBook } from '@growthbook/growthbook';
import { AssignmentBatcher } from '../../src/assignments/batcher';
import { assignVariant, loadConfigFromDb, pickVariant } from '../../src/assignments/service';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { uniqueKey } from '../support/factories';

const USERS = 10_000;
/** Users also assigned (and stored) through assignVariant: the whole path, on a sample (PGlite is slow). */
const STORED = 300;

interface Setup {
  name: string;
  weights: number[];
  trafficAllocation?: number;
  hashSeed?: string;
  /** Users that must be among those checked (the reported ones). */
  users?: string[];
}

const SETUPS: Setup[] = [
  // Sums to 0.9999999999999999: rescaling moved the edges at 0.6 and 0.9 (the reported users).
  {
    name: '0.6 / 0.3 / 0.1',
    weights: [0.6, 0.3, 0.1],
    hashSeed: 'interop-repro',
    users: ['repro-4996', 'repro-4359'],
  },
  // Sums to 0.995: GrowthBook leaves hashes ≥ 0.995 unenrolled.
  { name: '0.495 / 0.5', weights: [0.495, 0.5] },
  // Relative weights: GrowthBook would use equal weights; the service publishes them scaled.
  { name: '2 / 1 / 1', weights: [2, 1, 1] },
  { name: 'coverage 0.3', weights: [1, 1], trafficAllocation: 0.3 },
  { name: 'a zero weight', weights: [0.5, 0, 0.5] },
  {
    name: 'custom seed, 0.2 / 0.8, coverage 0.75',
    weights: [0.2, 0.8],
    trafficAllocation: 0.75,
    hashSeed: 'shared-seed-2026',
  },
  { name: '80 / 20', weights: [80, 20] },
];

const CREATE = `mutation Create($input: CreateExperimentInput!) {
  createExperiment(input: $input) { ... on Experiment { id } ... on Error { code message } }
}`;
const START = `mutation Start($id: ID!) {
  startExperiment(id: $id) { ... on Experiment { id status } ... on Error { code message } }
}`;
const PUBLISHED = `query Published($key: String!) { experiment(key: $key) { id growthbook } }`;

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle.close();
});

/** Creates and starts the experiment through the API; returns what the API publishes for SDKs. */
async function publish(setup: Setup) {
  const key = uniqueKey('parity');
  const created = await gqlOk(app, CREATE, {
    input: {
      key,
      name: setup.name,
      trafficAllocation: setup.trafficAllocation ?? 1,
      hashSeed: setup.hashSeed ?? null,
      variants: setup.weights.map((weight, i) => ({ name: `v${i}`, weight, config: { arm: i } })),
    },
  });
  const { id } = created.createExperiment;
  expect(id).toBeDefined();
  expect((await gqlOk(app, START, { id })).startExperiment.status).toBe('RUNNING');
  const { experiment } = await gqlOk(app, PUBLISHED, { key });
  return { key, growthbook: experiment.growthbook };
}

/** What GrowthBook's SDK does with the published experiment: the variant id (meta key), or null. */
function sdkVariant(growthbook: any, userId: string): string | null {
  const gb = new GrowthBook({ attributes: { id: userId } });
  const result = gb.run(growthbook);
  gb.destroy();
  return result.inExperiment ? result.key : null;
}

describe('GrowthBook SDK parity (10,000 users per configuration)', () => {
  it.each(SETUPS)('$name: the SDK and the service agree on every user', async (setup) => {
    const { key, growthbook } = await publish(setup);
    expect(growthbook).toMatchObject({ key, hashVersion: 2, hashAttribute: 'id', active: true });
    expect(growthbook.seed).toBe(setup.hashSeed ?? key);
    const sum = growthbook.weights.reduce((a: number, b: number) => a + b, 0);
    expect(sum).toBeGreaterThanOrEqual(0.99);
    expect(sum).toBeLessThanOrEqual(1.01);

    const users = [...(setup.users ?? []), ...Array.from({ length: USERS }, (_, i) => `parity-user-${i}`)];
    const config = (await loadConfigFromDb(handle.db, key))!;
    const disagreements: string[] = [];
    let enrolled = 0;
    for (const u of users) {
      const service = pickVariant(config, u)?.id ?? null;
      const sdk = sdkVariant(growthbook, u);
      if (service !== sdk) disagreements.push(`${u}: service ${service}, SDK ${sdk}`);
      if (service) enrolled++;
    }
    const batcher = new AssignmentBatcher(handle.db);
    const stored = users.slice(0, STORED);
    const assigned = await Promise.all(stored.map((u) => assignVariant(handle.db, key, u, { batcher })));
    assigned.forEach((a, i) => {
      const sdk = sdkVariant(growthbook, stored[i]);
      if ((a.enrolled ? a.variant!.id : null) !== sdk)
        disagreements.push(`${stored[i]}: assignVariant ${a.variant?.id ?? a.reason}, SDK ${sdk}`);
    });
    expect(disagreements.slice(0, 10)).toEqual([]);
    expect(disagreements).toHaveLength(0);
    expect(enrolled).toBeGreaterThan(0);
  });

  it('publishes the scaled weights for relative weights, and the stored ones when GrowthBook accepts them', async () => {
    expect((await publish({ name: 'relative', weights: [2, 1, 1] })).growthbook.weights).toEqual([
      0.5, 0.25, 0.25,
    ]);
    expect((await publish({ name: 'as stored', weights: [0.6, 0.3, 0.1] })).growthbook.weights).toEqual([
      0.6, 0.3, 0.1,
    ]);
  });

  it('publishes a draft as inactive, so an SDK enrolls nobody (the service enrolls nobody either)', async () => {
    const key = uniqueKey('parity-draft');
    await gqlOk(app, CREATE, {
      input: { key, name: 'draft', variants: [{ name: 'a' }, { name: 'b' }] },
    });
    const { experiment } = await gqlOk(app, PUBLISHED, { key });
    expect(experiment.growthbook.active).toBe(false);
    expect(sdkVariant(experiment.growthbook, 'anyone')).toBeNull();
    expect((await assignVariant(handle.db, key, 'anyone')).reason).toBe('NOT_RUNNING');
  });
});
