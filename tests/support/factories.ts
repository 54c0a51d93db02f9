/** Small factories: each test makes its own experiments with unique keys, through the real services. */
import { randomUUID } from 'node:crypto';
import { assignmentKey, CAP_REACHED, resolveAssignments } from '../../src/assignments/repository';
import type { Database, Db } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { createExperimentService, type CreateExperimentInput } from '../../src/experiments/service';

export const uniqueKey = (prefix = 'exp') => `${prefix}-${randomUUID().slice(0, 8)}`;

export function experimentService(db: Database, actor = 'test') {
  return createExperimentService({ db, actor: { name: actor } });
}

export async function createTestExperiment(db: Database, overrides: Partial<CreateExperimentInput> = {}) {
  return experimentService(db).create({
    key: uniqueKey(),
    name: 'Test experiment',
    variants: [
      { name: 'control', weight: 0.5, isControl: true, config: { strategy: 'baseline' } },
      { name: 'treatment', weight: 0.5, config: { strategy: 'new' } },
    ],
    ...overrides,
  });
}

export async function createRunningExperiment(db: Database, overrides: Partial<CreateExperimentInput> = {}) {
  const experiment = await createTestExperiment(db, overrides);
  return experimentService(db).transition(experiment.id, 'start');
}

/**
 * Assigns a unit to a chosen variant (bucketing would pick one) through the statement the assignment
 * service uses; an existing assignment wins. Returns the stored row and whether this call created it.
 */
export async function assignUnit(
  db: Db,
  params: { experimentId: string; userId: string; variantId: string },
) {
  const resolved = (await resolveAssignments(db, [params])).get(
    assignmentKey(params.experimentId, params.userId),
  );
  if (!resolved || resolved === CAP_REACHED) throw new Error(`no assignment stored for ${params.userId}`);
  return resolved;
}

/** A running experiment (two 50/50 variants unless overridden) and its variants in position order. */
export async function createRunningWithVariants(
  db: Database,
  overrides: Partial<CreateExperimentInput> = {},
) {
  const experiment = await createRunningExperiment(db, overrides);
  return { experiment, variants: await getVariants(db, experiment.id) };
}
