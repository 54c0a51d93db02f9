/**
 * POST /v1/assignments (the SDK endpoint) over the real HTTP server with production settings, and the
 * batching of concurrent assignments underneath it and GraphQL: same answers as GraphQL, same keys,
 * scopes, limits and error codes, one stored row per unit whatever the concurrency.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { AssignmentBatcher } from '../../src/assignments/batcher';
import { assignmentKey, type ResolvedAssignment, resolveAssignments } from '../../src/assignments/repository';
import { pickVariant } from '../../src/assignments/service';
import { type DatabaseHandle, openDatabase, queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { openTestDatabase, testDriver } from '../support/db';
import { createRunningExperiment, createTestExperiment, uniqueKey } from '../support/factories';
import {
  makeKey,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';

let handle: DatabaseHandle;
let server: TestServer;
let assignKey: string;
let readKey: string;
let endpoint: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle, { security: productionSecurity({ maxBodyBytes: 4096 }) });
  endpoint = `${server.base}/v1/assignments`;
  assignKey = (await makeKey(handle.db, ['assign'])).key;
  readKey = (await makeKey(handle.db, ['read'])).key;
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

/** key null: no Authorization header. */
const assign = (body: unknown, key: string | null = assignKey, contentType?: string) =>
  rawPost(endpoint, typeof body === 'string' ? body : JSON.stringify(body), {
    key: key ?? undefined,
    contentType,
  });

async function storedRows(experimentId: string): Promise<{ userId: string; variantId: string }[]> {
  return queryRows(
    handle.db,
    sql`SELECT user_id AS "userId", variant_id::text AS "variantId" FROM experiment_assignments
         WHERE experiment_id = ${experimentId} ORDER BY user_id`,
  );
}

async function config(experimentId: string, key: string) {
  const experiment = { id: experimentId, key, hashSeed: null, trafficAllocation: 1, status: 'running' };
  return { experiment, variants: await getVariants(handle.db, experimentId) } as any;
}

describe('POST /v1/assignments', () => {
  it('assigns a new unit to the variant bucketing gives, then returns the same stored row (as GraphQL does)', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const expected = pickVariant(await config(experiment.id, experiment.key), 'sdk-user-1')!;

    const first = await assign({ experimentKey: experiment.key, userId: 'sdk-user-1' });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-request-id')).toBeTruthy();
    expect(first.body).toEqual({
      experimentKey: experiment.key,
      userId: 'sdk-user-1',
      enrolled: true,
      reason: 'ASSIGNED',
      variant: {
        id: expected.id,
        name: expected.name,
        isControl: expected.isControl,
        config: expected.config,
      },
      assignedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });

    const again = await assign({ experimentKey: experiment.key, userId: 'sdk-user-1' });
    expect(again.body).toEqual({ ...first.body, reason: 'EXISTING' });

    const viaGraphQL = await postGraphQL(
      server.url,
      `mutation ($k: String!) { assignVariant(experimentKey: $k, userId: "sdk-user-1") {
         ... on Assignment { reason assignedAt variant { id } } } }`,
      { k: experiment.key },
      { key: assignKey },
    );
    expect(viaGraphQL.body.data.assignVariant).toEqual({
      reason: 'EXISTING',
      assignedAt: first.body.assignedAt,
      variant: { id: expected.id },
    });
    expect(await storedRows(experiment.id)).toEqual([{ userId: 'sdk-user-1', variantId: expected.id }]);
  });

  it('answers several experiments for one unit in the order asked, with the same reasons as GraphQL', async () => {
    const running = await createRunningExperiment(handle.db);
    const draft = await createTestExperiment(handle.db);
    const missing = uniqueKey('missing');
    const response = await assign({ experimentKeys: [draft.key, running.key, missing], userId: 'multi-1' });
    expect(response.status).toBe(200);
    expect(
      response.body.assignments.map((a: any) => [a.experimentKey, a.reason, a.enrolled, a.variant === null]),
    ).toEqual([
      [draft.key, 'NOT_RUNNING', false, true],
      [running.key, 'ASSIGNED', true, false],
      [missing, 'NOT_FOUND', false, true],
    ]);
    expect(await storedRows(draft.id)).toEqual([]);
  });

  it('a unit outside the traffic allocation is not enrolled and nothing is stored', async () => {
    const experiment = await createRunningExperiment(handle.db, { trafficAllocation: 0 });
    const response = await assign({ experimentKey: experiment.key, userId: 'outside-1' });
    expect(response.body).toMatchObject({ reason: 'OUTSIDE_TRAFFIC', enrolled: false, variant: null });
    expect(await storedRows(experiment.id)).toEqual([]);
  });

  it('400 VALIDATION_FAILED names the field (experimentKeys by index), and nothing is written', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const cases: [unknown, string[]][] = [
      [{ experimentKey: experiment.key, userId: '' }, ['userId']],
      [{ experimentKey: experiment.key, userId: 'x'.repeat(257) }, ['userId']],
      [{ experimentKey: experiment.key }, ['userId']],
      [{ experimentKeys: [experiment.key, ''], userId: 'v-1' }, ['experimentKeys', '1']],
      [{ experimentKeys: [], userId: 'v-1' }, ['experimentKeys']],
      [{ experimentKeys: Array(51).fill(experiment.key), userId: 'v-1' }, ['experimentKeys']],
      [{ experimentKey: experiment.key, experimentKeys: [experiment.key], userId: 'v-1' }, ['experimentKey']],
      [{ userId: 'v-1' }, ['experimentKey']],
      [{ experimentKey: experiment.key, userId: 'v-1', extra: 1 }, []],
      [[1, 2], []],
    ];
    for (const [body, path] of cases) {
      const response = await assign(body);
      expect({ body, status: response.status, code: response.body.error.code }).toEqual({
        body,
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(response.body.error.fields.map((f: any) => f.path)).toContainEqual(path);
      expect(response.body.error.requestId).toBe(response.headers.get('x-request-id'));
    }
    expect(await storedRows(experiment.id)).toEqual([]);
  });

  it('refuses what is not a JSON POST from a key with the assign scope, with the status of its code', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const ok = { experimentKey: experiment.key, userId: 'refused-1' };
    const cases: [string, () => Promise<any>, number, string][] = [
      ['no key', () => assign(ok, null), 401, 'UNAUTHENTICATED'],
      ['unknown key', () => assign(ok, 'sona_not-a-key'), 401, 'UNAUTHENTICATED'],
      ['read-only key', () => assign(ok, readKey), 403, 'FORBIDDEN'],
      [
        'form post',
        () => assign('experimentKey=a&userId=b', assignKey, 'application/x-www-form-urlencoded'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['not JSON', () => assign('{"experimentKey":', assignKey), 400, 'BAD_REQUEST'],
      ['too large', () => assign({ ...ok, pad: 'x'.repeat(5000) }), 413, 'PAYLOAD_TOO_LARGE'],
      [
        'GET',
        async () => {
          const response = await fetch(endpoint, { headers: { authorization: `Bearer ${assignKey}` } });
          return { status: response.status, headers: response.headers, body: await response.json() };
        },
        405,
        'METHOD_NOT_ALLOWED',
      ],
    ];
    for (const [what, send, status, code] of cases) {
      const response = await send();
      expect({ what, status: response.status, code: response.body?.error?.code }).toEqual({
        what,
        status,
        code,
      });
    }
    expect((await assign(ok, null)).headers.get('www-authenticate')).toBe('Bearer');
    expect(await storedRows(experiment.id)).toEqual([]);
    // Errors say nothing of the schema or the database.
    const forbidden = await assign(ok, readKey);
    expect(forbidden.body.error).toEqual({
      code: 'FORBIDDEN',
      message: 'This API key lacks the assign scope',
      requiredScopes: ['assign'],
      requestId: forbidden.headers.get('x-request-id'),
    });
  });

  it('200 concurrent requests for 40 new units: one row each, every answer its stored variant, one ASSIGNED per unit', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const users = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => assign({ experimentKey: experiment.key, userId: users[i % 40] })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
    const rows = await storedRows(experiment.id);
    expect(rows).toHaveLength(40);
    const stored = new Map(rows.map((r) => [r.userId, r.variantId]));
    const assigned = new Map<string, number>();
    for (const { body } of responses) {
      expect(body.variant.id).toBe(stored.get(body.userId));
      if (body.reason === 'ASSIGNED') assigned.set(body.userId, (assigned.get(body.userId) ?? 0) + 1);
    }
    expect([...assigned.values()]).toEqual(Array(40).fill(1));
  });
});

describe('AssignmentBatcher', () => {
  it('resolves the units of concurrent callers in as few statements as its batch size allows', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control, treatment] = await getVariants(handle.db, experiment.id);
    const batcher = new AssignmentBatcher(handle.db, { maxBatch: 10, maxInFlight: 4 });
    await batcher.resolve({ experimentId: experiment.id, userId: 'pre-1', variantId: treatment.id });

    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        batcher.resolve({
          experimentId: experiment.id,
          userId: i < 99 ? `batched-${i}` : 'pre-1',
          variantId: control.id,
        }),
      ),
    );
    expect(batcher.statements).toBe(1 + 10);
    expect(batcher.units).toBe(1 + 100);
    expect(results.filter((r) => (r as ResolvedAssignment).created)).toHaveLength(99);
    // The stored assignment wins over the variant asked for (sticky).
    expect(results[99]).toMatchObject({
      created: false,
      assignment: { userId: 'pre-1', variantId: treatment.id },
    });
    expect(await storedRows(experiment.id)).toHaveLength(100);
  });

  it('a read-only request (unit would not enroll) finds a stored row or nothing, and writes nothing', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control] = await getVariants(handle.db, experiment.id);
    const batcher = new AssignmentBatcher(handle.db);
    await batcher.resolve({ experimentId: experiment.id, userId: 'kept', variantId: control.id });
    const [kept, none] = await Promise.all([
      batcher.resolve({ experimentId: experiment.id, userId: 'kept', variantId: null }),
      batcher.resolve({ experimentId: experiment.id, userId: 'never', variantId: null }),
    ]);
    expect(kept).toMatchObject({ created: false, assignment: { variantId: control.id } });
    expect(none).toBeNull();
    expect((await storedRows(experiment.id)).map((r) => r.userId)).toEqual(['kept']);
  });

  it('a stored unit is resolved without a write: its transaction never gets a transaction id', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control, treatment] = await getVariants(handle.db, experiment.id);
    await resolveAssignments(handle.db, [
      { experimentId: experiment.id, userId: 'stored', variantId: control.id },
    ]);
    const xid = await handle.db.transaction(async (tx) => {
      const resolved = await resolveAssignments(tx, [
        { experimentId: experiment.id, userId: 'stored', variantId: treatment.id },
      ]);
      expect(resolved.get(assignmentKey(experiment.id, 'stored'))).toMatchObject({
        created: false,
        assignment: { variantId: control.id },
      });
      const [row] = await queryRows<{ xid: string | null }>(
        tx,
        sql`SELECT txid_current_if_assigned()::text AS xid`,
      );
      return row.xid;
    });
    expect(xid).toBeNull();
  });

  it('a unit whose data fails the statement fails alone: the units batched with it are stored and answered', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control] = await getVariants(handle.db, experiment.id);
    const batcher = new AssignmentBatcher(handle.db);
    // Validation keeps such units out; here they are sent on purpose. A variant id that does not exist
    // violates the foreign key (23503), a NUL is refused by PostgreSQL's text type (22021).
    const unknownVariant = {
      experimentId: experiment.id,
      userId: 'bad',
      variantId: '00000000-0000-4000-8000-000000000000',
    };
    const nul = { experimentId: experiment.id, userId: 'nul\u0000', variantId: control.id };
    const users = Array.from({ length: 40 }, (_, i) => `same-batch-${String(i).padStart(2, '0')}`);
    const good = users.map((userId) => ({ experimentId: experiment.id, userId, variantId: control.id }));
    const outcomes = await Promise.allSettled([
      ...good.slice(0, 10).map((r) => batcher.resolve(r)),
      batcher.resolve(unknownVariant),
      ...good.slice(10, 30).map((r) => batcher.resolve(r)),
      batcher.resolve(nul),
      ...good.slice(30).map((r) => batcher.resolve(r)),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      ...Array(10).fill('fulfilled'),
      'rejected',
      ...Array(20).fill('fulfilled'),
      'rejected',
      ...Array(10).fill('fulfilled'),
    ]);
    expect(batcher.statements).toBeGreaterThan(1); // split until the failing units were alone
    expect(await storedRows(experiment.id)).toEqual(
      users.map((userId) => ({ userId, variantId: control.id })),
    );
  });

  it('a statement that fails for another reason (no database) rejects every caller in it: nothing half-acknowledged', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control] = await getVariants(handle.db, experiment.id);
    const gone = await openDatabase(handle.config);
    await gone.close();
    const batcher = new AssignmentBatcher(gone.db);
    const outcomes = await Promise.allSettled(
      ['a', 'b', 'c'].map((userId) =>
        batcher.resolve({ experimentId: experiment.id, userId, variantId: control.id }),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(batcher.statements).toBe(1);
    expect(await storedRows(experiment.id)).toEqual([]);
  });

  if (testDriver() === 'postgres') {
    it('two instances racing on the same new units never deadlock and agree on one row each', async () => {
      const experiment = await createRunningExperiment(handle.db);
      const variants = await getVariants(handle.db, experiment.id);
      const other = await openTestDatabase({ poolSize: 4 });
      try {
        const a = new AssignmentBatcher(handle.db, { maxBatch: 50, maxInFlight: 4 });
        const b = new AssignmentBatcher(other.db, { maxBatch: 50, maxInFlight: 4 });
        const users = Array.from({ length: 300 }, (_, i) => `race-${i}`);
        // Opposite orders and different variants: only the order inside each statement keeps it deadlock-free.
        const results = await Promise.all([
          ...users.map((u) =>
            a.resolve({ experimentId: experiment.id, userId: u, variantId: variants[0].id }),
          ),
          ...[...users]
            .reverse()
            .map((u) => b.resolve({ experimentId: experiment.id, userId: u, variantId: variants[1].id })),
        ]);
        const stored = new Map((await storedRows(experiment.id)).map((r) => [r.userId, r.variantId]));
        expect(stored.size).toBe(300);
        for (const r of results)
          expect((r as ResolvedAssignment).assignment.variantId).toBe(
            stored.get((r as ResolvedAssignment).assignment.userId),
          );
        expect(results.filter((r) => (r as ResolvedAssignment).created)).toHaveLength(300);
      } finally {
        await other.close();
      }
    });
  }
});
