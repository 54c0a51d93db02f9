/**
 * A change a status forbids by a rule (not a lifecycle transition) answers RuleViolationError naming the
 * rule, not an InvalidTransitionError from PAUSED to PAUSED.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createTestApp, gqlOk } from '../support/app';
import { openTestDatabase } from '../support/db';
import { createRunningExperiment, experimentService } from '../support/factories';
import { rowCounts } from '../support/rows';

let handle: DatabaseHandle;
let app: App;

beforeAll(async () => {
  handle = await openTestDatabase();
  app = createTestApp(handle);
});
afterAll(async () => {
  await handle.close();
});

const ADD = `mutation AddVariant($experimentId: ID!, $input: VariantInput!) {
  addVariant(experimentId: $experimentId, input: $input) {
    __typename
    ... on Variant { id }
    ... on Error { code message }
    ... on RuleViolationError { rule }
  }
}`;

describe('addVariant after the start', () => {
  it.each(['RUNNING', 'PAUSED'])(
    'on a %s experiment is RuleViolationError VARIANTS_FIXED, writing nothing',
    async (status) => {
      const experiment = await createRunningExperiment(handle.db);
      if (status === 'PAUSED') await experimentService(handle.db).transition(experiment.id, 'pause');
      const before = await rowCounts(handle.db, experiment.id);
      const data = await gqlOk(app, ADD, { experimentId: experiment.id, input: { name: 'late' } });
      expect(data.addVariant).toEqual({
        __typename: 'RuleViolationError',
        code: 'RULE_VIOLATION',
        rule: 'VARIANTS_FIXED',
        message: `Variants can only be added while the experiment is a draft; it is ${status.toLowerCase()}`,
      });
      expect(await rowCounts(handle.db, experiment.id)).toEqual(before);
    },
  );
});
