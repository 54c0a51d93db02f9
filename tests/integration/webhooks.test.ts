/**
 * Webhooks: the outbox is written with the change, deliveries are retried with the same id and valid
 * signatures until a 2xx, survive a restart, and private addresses are refused unless allowed.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { eq, sql } from 'drizzle-orm';
import pino from 'pino';
import { ValidationError } from '../../src/common/errors';
import { LIMITS, securityConfigFromEnv, type WebhookConfig } from '../../src/config';
import type { Database, DatabaseHandle } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { webhookDeliveries, webhooks } from '../../src/db/schema';
import { createApp } from '../../src/http/app';
import { JobRunner } from '../../src/jobs/runner';
import { createScheduleService, SCHEDULE_JOB, scheduleJob } from '../../src/scheduling/service';
import { isPrivateAddress } from '../../src/webhooks/address';
import { verifySignature } from '../../src/webhooks/crypto';
import { createWebhookService, deliveryJob, emitEvent, WEBHOOK_JOB } from '../../src/webhooks/service';
import { gql, gqlOk } from '../support/app';
import { createScratchDatabase, openTestDatabase, type ScratchDatabase } from '../support/db';
import { createTestExperiment, experimentService } from '../support/factories';

/** One run of the delivery job by this runner (retried while another test file's runner holds its lock). */
async function ownTick(runner: JobRunner) {
  while ((await runner.tick())[WEBHOOK_JOB] === 'skipped') await new Promise((r) => setTimeout(r, 20));
}

let handle: DatabaseHandle;
let db: Database;
let receiver: Server;
let url: string;
/** What the receiver got, and the statuses it answers a delivery id with, in order (then 200). */
const received: { headers: IncomingHttpHeaders; body: string }[] = [];
const answers = new Map<string, number[]>();

const CONFIG: WebhookConfig = { secretKey: 'test-server-key', allowPrivate: true, allowHosts: [] };

beforeAll(async () => {
  handle = await openTestDatabase();
  db = handle.db;
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = answers.get(String(req.headers['x-sona-delivery']))?.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  await handle.close();
});

/** A webhook's deliveries about one experiment (other test files change experiments concurrently). */
async function deliveriesOf(webhookId: string, experimentId: string) {
  const rows = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId));
  return rows.filter((r) => r.payload.experimentId === experimentId);
}

describe('webhooks', () => {
  it('refuses private and loopback addresses by default, naming the url, and writes nothing', async () => {
    const strict = createWebhookService({ db, config: { ...CONFIG, allowPrivate: false } });
    for (const target of [
      'http://127.0.0.1:9/x',
      'http://10.1.2.3/x',
      'http://[::1]/x',
      'http://localhost/x',
      'ftp://example.com/x',
    ]) {
      const error = await strict
        .create({ url: target, events: ['SCHEDULE_FAILED'] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).fieldErrors[0].path).toEqual(['input', 'url']);
    }
    expect((await strict.list()).filter((w) => w.url.includes('/x'))).toEqual([]);
    expect(
      ['169.254.169.254', '192.168.0.1', '::ffff:127.0.0.1', 'fd00::1', '100.64.0.1'].every(isPrivateAddress),
    ).toBe(true);
    expect(['8.8.8.8', '2606:4700::1111'].some(isPrivateAddress)).toBe(false);
    // An allow-listed host is accepted whatever it resolves to.
    const listed = createWebhookService({
      db,
      config: { ...CONFIG, allowPrivate: false, allowHosts: ['127.0.0.1'] },
    });
    const { webhook } = await listed.create({ url, events: ['SCHEDULE_FAILED'] });
    await listed.delete(webhook.id);
  });

  it('a receiver answering 500, 500, 200 gets three deliveries with the same id and valid signatures', async () => {
    const service = createWebhookService({ db, config: CONFIG });
    const { webhook, secret } = await service.create({ url, events: ['EXPERIMENT_STATUS_CHANGED'] });
    expect(secret).toMatch(/^whsec_/);
    try {
      const experiment = await createTestExperiment(db);
      await experimentService(db, 'alice').transition(experiment.id, 'start');
      const [delivery] = await deliveriesOf(webhook.id, experiment.id);
      expect(delivery).toMatchObject({ event: 'EXPERIMENT_STATUS_CHANGED', status: 'pending', attempts: 0 });
      expect(delivery.payload).toMatchObject({
        experimentId: experiment.id,
        from: 'draft',
        to: 'running',
        actor: 'alice',
      });

      answers.set(delivery.id, [500, 500]);
      const clock = { now: new Date() };
      const runner = new JobRunner({ db, intervalMs: 0, now: () => clock.now, jobs: [deliveryJob(CONFIG)] });
      await ownTick(runner);
      expect((await deliveriesOf(webhook.id, experiment.id))[0]).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastStatusCode: 500,
      });
      await ownTick(runner); // not yet due: backoff
      expect(received.filter((r) => r.headers['x-sona-delivery'] === delivery.id)).toHaveLength(1);
      clock.now = new Date(clock.now.getTime() + LIMITS.webhookRetryBaseMs);
      await ownTick(runner);
      clock.now = new Date(clock.now.getTime() + 2 * LIMITS.webhookRetryBaseMs);
      await ownTick(runner);
      await ownTick(runner);
      const mine = received.filter((r) => r.headers['x-sona-delivery'] === delivery.id);
      expect(mine).toHaveLength(3);
      for (const r of mine) {
        const body = JSON.parse(r.body);
        expect(body).toMatchObject({
          id: delivery.id,
          event: 'EXPERIMENT_STATUS_CHANGED',
          data: { to: 'running' },
        });
        expect(
          verifySignature(secret, String(r.headers['x-sona-signature']), r.body, Date.now() / 1000),
        ).toBe(true);
        expect(
          verifySignature('whsec_wrong', String(r.headers['x-sona-signature']), r.body, Date.now() / 1000),
        ).toBe(false);
      }
      // A replayed signature is refused once its timestamp is old.
      expect(
        verifySignature(
          secret,
          String(mine[0].headers['x-sona-signature']),
          mine[0].body,
          Date.now() / 1000 + 3600,
        ),
      ).toBe(false);
      expect((await deliveriesOf(webhook.id, experiment.id))[0]).toMatchObject({
        status: 'delivered',
        attempts: 3,
        lastStatusCode: 200,
      });

      const app = createApp({
        db,
        logger: pino({ level: 'silent' }),
        security: { ...securityConfigFromEnv({}), webhooks: CONFIG },
      });
      const data = await gqlOk(
        app,
        `query D($id: ID) { webhookDeliveries(webhookId: $id, first: 100) { edges { node { id status attempts lastStatusCode event } } } }`,
        { id: webhook.id },
      );
      // Other test files' status changes may have been delivered to this webhook too.
      const nodes = data.webhookDeliveries.edges.map((e: { node: { id: string } }) => e.node);
      expect(nodes.filter((d: { id: string }) => d.id === delivery.id)).toEqual([
        {
          id: delivery.id,
          status: 'DELIVERED',
          attempts: 3,
          lastStatusCode: 200,
          event: 'EXPERIMENT_STATUS_CHANGED',
        },
      ]);
    } finally {
      await service.delete(webhook.id);
    }
  });

  it('gives up after the retry period and shows the delivery as failed', async () => {
    const service = createWebhookService({ db, config: CONFIG });
    const { webhook } = await service.create({ url, events: ['EXPERIMENT_STATUS_CHANGED'] });
    try {
      const experiment = await createTestExperiment(db);
      await experimentService(db).transition(experiment.id, 'archive');
      const clock = { now: new Date() };
      const runner = new JobRunner({ db, intervalMs: 0, now: () => clock.now, jobs: [deliveryJob(CONFIG)] });
      let [row] = await deliveriesOf(webhook.id, experiment.id);
      answers.set(row.id, Array(40).fill(503));
      while (row.status === 'pending') {
        clock.now = new Date(Math.max(clock.now.getTime(), row.nextAttemptAt.getTime()));
        await ownTick(runner);
        [row] = await deliveriesOf(webhook.id, experiment.id);
      }
      expect(row.status).toBe('failed');
      expect(row.lastStatusCode).toBe(503);
      expect(row.lastAttemptAt!.getTime() - row.createdAt.getTime()).toBeLessThanOrEqual(
        LIMITS.webhookRetryForMs,
      );
      expect(row.attempts).toBeGreaterThan(5);
    } finally {
      await service.delete(webhook.id);
    }
  });

  it('a delivery committed before the runner stopped is delivered by a runner started after; a failed schedule alerts', async () => {
    const service = createWebhookService({ db, config: CONFIG });
    const { webhook } = await service.create({ url, events: ['SCHEDULE_FAILED'] });
    try {
      // A one-variant experiment cannot start: the scheduled start fails and is alerted in the same commit.
      const experiment = await createTestExperiment(db, { variants: [{ name: 'only' }] });
      const t0 = Date.now();
      await createScheduleService({ db, actor: { name: 'planner' } }).schedule(experiment.id, {
        startAt: new Date(t0 + 60_000),
      });
      const first = new JobRunner({
        db,
        intervalMs: 0,
        now: () => new Date(t0 + 61_000),
        jobs: [scheduleJob({})],
      });
      while ((await first.tick())[SCHEDULE_JOB] === 'skipped') await new Promise((r) => setTimeout(r, 20));
      await first.stop(); // "crash" right after the commit: nothing sent yet
      // Runners of other test files may have retried the start meanwhile: take the first attempt's alert.
      const pending = (await deliveriesOf(webhook.id, experiment.id)).find((d) => d.payload.attempts === 1)!;
      expect(pending).toMatchObject({ event: 'SCHEDULE_FAILED', status: 'pending' });
      expect(pending.payload).toMatchObject({
        experimentId: experiment.id,
        action: 'start',
        attempts: 1,
        final: false,
      });

      const restarted = new JobRunner({ db, intervalMs: 0, jobs: [deliveryJob(CONFIG)] });
      await ownTick(restarted);
      expect(received.some((r) => r.headers['x-sona-delivery'] === pending.id)).toBe(true);
      expect((await deliveriesOf(webhook.id, experiment.id)).find((d) => d.id === pending.id)!.status).toBe(
        'delivered',
      );
    } finally {
      await service.delete(webhook.id);
    }
  });

  it('webhookDeliveries pages newest first with cursors; a foreign cursor is refused naming `after`', async () => {
    const service = createWebhookService({ db, config: CONFIG });
    const { webhook } = await service.create({ url, events: ['SCHEDULE_FAILED'] });
    try {
      // Three alerts about one experiment, one after the other (other test files' alerts may join them).
      const experiment = await createTestExperiment(db);
      for (const attempts of [1, 2, 3]) {
        await emitEvent(db, 'SCHEDULE_FAILED', experiment.id, { action: 'start', attempts });
        await new Promise((r) => setTimeout(r, 5)); // distinct created_at (milliseconds) for the order
      }
      const app = createApp({
        db,
        logger: pino({ level: 'silent' }),
        security: { ...securityConfigFromEnv({}), webhooks: CONFIG },
      });
      const page = async (after: string | null) =>
        (
          await gqlOk(
            app,
            `query P($id: ID, $after: String) { webhookDeliveries(webhookId: $id, first: 2, after: $after) {
              totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id createdAt data } } } }`,
            { id: webhook.id, after },
          )
        ).webhookDeliveries;
      const first = await page(null);
      expect(first.edges).toHaveLength(2);
      expect(first.pageInfo.hasNextPage).toBe(true);
      const nodes: { id: string; createdAt: string; data: Record<string, unknown> }[] = [];
      for (let p = first; ; p = await page(p.pageInfo.endCursor)) {
        nodes.push(...p.edges.map((e: { node: (typeof nodes)[number] }) => e.node));
        if (!p.pageInfo.hasNextPage) break;
      }
      // Every delivery once, newest first, as many as totalCount says.
      expect(new Set(nodes.map((n) => n.id)).size).toBe(nodes.length);
      expect(nodes.length).toBe(first.totalCount);
      const times = nodes.map((n) => Date.parse(n.createdAt));
      expect(times).toEqual([...times].sort((a, b) => b - a));
      expect(nodes.filter((n) => n.data.experimentId === experiment.id).map((n) => n.data.attempts)).toEqual([
        3, 2, 1,
      ]);
      const bad = await gql(app, `{ webhookDeliveries(after: "not-a-cursor") { edges { cursor } } }`);
      expect(bad.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
      expect(bad.errors?.[0].message).toContain('after');
    } finally {
      await service.delete(webhook.id);
    }
  });

  it('through GraphQL: createWebhook shows the secret once, webhooks lists it without, deleteWebhook removes it', async () => {
    const app = createApp({
      db,
      logger: pino({ level: 'silent' }),
      security: { ...securityConfigFromEnv({}), webhooks: CONFIG },
    });
    const created = await gqlOk(
      app,
      `mutation C($input: CreateWebhookInput!) { createWebhook(input: $input) { __typename
        ... on CreateWebhookSuccess { secret webhook { id url events minUnits minDays secretPrefix } }
        ... on ValidationError { fieldErrors { path message } } } }`,
      { input: { url, events: ['EXPERIMENT_STATUS_CHANGED', 'SCHEDULE_FAILED'], minUnits: 100, minDays: 1 } },
    );
    const { secret, webhook } = created.createWebhook;
    expect(secret.startsWith(webhook.secretPrefix)).toBe(true);
    expect(webhook).toMatchObject({ url, minUnits: 100, minDays: 1 });
    const listed = await gqlOk(app, `{ webhooks { id secretPrefix } }`);
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect(listed.webhooks.map((w: { id: string }) => w.id)).toContain(webhook.id);
    const bad = await gqlOk(
      app,
      `mutation { createWebhook(input: { url: "not a url", events: [] }) { __typename ... on ValidationError { fieldErrors { path } } } }`,
    );
    expect(bad.createWebhook.fieldErrors.map((f: { path: string[] }) => f.path.join('.'))).toEqual([
      'input.events',
    ]);
    const deleted = await gqlOk(app, `mutation D($id: ID!) { deleteWebhook(id: $id) { __typename } }`, {
      id: webhook.id,
    });
    expect(deleted.deleteWebhook.__typename).toBe('Webhook');
  });
});

// On a database of its own: no other test file's runner can take these deliveries.
describe('delivery outside the run’s transaction', () => {
  let scratch: ScratchDatabase;
  let own: Database;
  beforeAll(async () => {
    scratch = await createScratchDatabase();
    await migrateDatabase(scratch.handle);
    own = scratch.handle.db;
  });
  afterAll(async () => scratch.drop());

  /** A status change with one delivery to the receiver; the delivery's row. */
  async function pendingDelivery() {
    await own.delete(webhooks); // only this test's webhook gets deliveries
    const service = createWebhookService({ db: own, config: CONFIG });
    const { webhook } = await service.create({ url, events: ['EXPERIMENT_STATUS_CHANGED'] });
    const experiment = await createTestExperiment(own);
    await experimentService(own).transition(experiment.id, 'archive');
    const rows = await own
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.webhookId, webhook.id));
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  /** A receiver that answers 204 when released. */
  function heldReceiver() {
    const calls: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let called!: () => void;
    const firstCall = new Promise<void>((r) => (called = r));
    const send = (async (_url: string | URL | Request, init?: RequestInit) => {
      calls.push(String(new Headers(init?.headers).get('x-sona-delivery')));
      called();
      await released;
      return new Response(null, { status: 204 });
    }) as typeof fetch;
    return { send, calls, release, firstCall };
  }

  it('a receiver that has not answered yet holds no lock: its row can be taken meanwhile, and the answer is recorded', async () => {
    const delivery = await pendingDelivery();
    const receiverHeld = heldReceiver();
    const runner = new JobRunner({ db: own, intervalMs: 0, jobs: [deliveryJob(CONFIG, receiverHeld.send)] });
    const round = runner.tick();
    await receiverHeld.firstCall;
    // Run inside the job's transaction, this waited for the receiver (PGlite: its only connection) or
    // failed at once (PostgreSQL: the row was locked).
    const probe = own.transaction(async (tx) => {
      await tx.execute(
        sql`SELECT 1 FROM ${webhookDeliveries} WHERE ${webhookDeliveries.id} = ${delivery.id} FOR UPDATE NOWAIT`,
      );
      return 'free';
    });
    const outcome = await Promise.race([
      probe,
      new Promise((r) => setTimeout(() => r('still held after 10 s'), 10_000).unref()),
    ]);
    receiverHeld.release();
    expect(outcome).toBe('free');
    expect((await round)[WEBHOOK_JOB]).toBe('ran');
    expect(receiverHeld.calls).toEqual([delivery.id]);
    const [row] = await own.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, delivery.id));
    expect(row).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 204 });
  });

  it('deliveries claimed by a run that died before sending are sent when the claim ends: never lost', async () => {
    const delivery = await pendingDelivery();
    const receiverUp = heldReceiver();
    receiverUp.release();
    const job = deliveryJob(CONFIG, receiverUp.send);
    const t0 = new Date();
    // The claim commits; the process dies before sending (what it handed over never runs).
    await own.transaction((tx) => job.run(tx, t0, () => {}));
    const clock = { now: new Date(t0.getTime() + 1000) };
    const runner = new JobRunner({ db: own, intervalMs: 0, now: () => clock.now, jobs: [job] });
    expect((await runner.tick())[WEBHOOK_JOB]).toBe('ran');
    expect(receiverUp.calls).toEqual([]); // still claimed
    const lease = LIMITS.webhookDeliveriesPerRun * LIMITS.webhookTimeoutMs + LIMITS.webhookLeaseMarginMs;
    clock.now = new Date(t0.getTime() + lease);
    expect((await runner.tick())[WEBHOOK_JOB]).toBe('ran');
    expect(receiverUp.calls).toEqual([delivery.id]);
    const [row] = await own.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, delivery.id));
    expect(row).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 204 });
  });
});
