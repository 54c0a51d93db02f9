/**
 * The monitoring job through GraphQL and a real receiver: a guardrail breach pauses the experiment (or
 * zeroes its treatments' weights, keeping stored assignments), audited as `guardrail` with the numbers and
 * alerted; SRM_DETECTED and SIGNIFICANCE_REACHED fire once per onset; webhooks' events, minUnits and minDays
 * filters hold; a run that dies mid-way leaves nothing and the next does it once; three instances act once.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { and, eq } from 'drizzle-orm';
import pino from 'pino';
import { securityConfigFromEnv, type WebhookConfig } from '../../src/config';
import { type Database, type DatabaseHandle, openDatabase } from '../../src/db/client';
import { auditLog, experimentAssignments, experimentMonitors, webhookDeliveries } from '../../src/db/schema';
import { recordEvents } from '../../src/events/service';
import { getPhasesByExperimentIds } from '../../src/experiments/phases';
import * as experimentsRepo from '../../src/experiments/repository';
import { createApp, type App } from '../../src/http/app';
import { type Job, JobRunner } from '../../src/jobs/runner';
import { createMetricService } from '../../src/metrics/service';
import { MONITOR_JOB, monitorJob } from '../../src/monitoring/service';
import { verifySignature } from '../../src/webhooks/crypto';
import { deliveryJob } from '../../src/webhooks/service';
import { gql, gqlOk } from '../support/app';
import { type IsolatedDatabase, openIsolatedDatabase } from '../support/server';
import {
  createRunningWithVariants,
  createTestExperiment,
  experimentService,
  uniqueKey,
} from '../support/factories';
import { rowCounts } from '../support/rows';

const CONFIG: WebhookConfig = { secretKey: 'test-server-key', allowPrivate: true, allowHosts: [] };
const MINUTE = 60_000;

let handle: DatabaseHandle;
let db: Database;
let app: App;
/** Three instances' databases: three pools on PostgreSQL; the one in-process database on PGlite. */
let instances: DatabaseHandle[];
let isolated: IsolatedDatabase;
let receiver: Server;
let url: string;
const received: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
/** The monitoring job's clock: moved a minute and more per look, never backwards. */
const clock = { now: new Date() };

beforeAll(async () => {
  // Its own database: the monitoring and delivery jobs act on every experiment and delivery there.
  isolated = await openIsolatedDatabase();
  handle = isolated.handle;
  db = handle.db;
  const pool = () =>
    openDatabase({
      driver: 'postgres',
      url: isolated.url!,
      poolSize: 2,
      statementTimeoutMs: 30_000,
      connectTimeoutSeconds: 10,
    });
  instances = isolated.url ? [handle, await pool(), await pool()] : [handle, handle, handle];
  app = createApp({
    db,
    logger: pino({ level: process.env.TEST_LOG_LEVEL || 'silent' }),
    security: { ...securityConfigFromEnv({}), webhooks: CONFIG },
  });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body });
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  for (const h of instances?.slice(1) ?? []) if (h !== handle) await h.close();
  await isolated?.close();
});

const runner = (database: Database = db, jobs: Job[] = [monitorJob(), deliveryJob(CONFIG)]) =>
  new JobRunner({ db: database, intervalMs: 0, now: () => clock.now, jobs });

const monitorOf = async (experimentId: string) =>
  (await db.select().from(experimentMonitors).where(eq(experimentMonitors.experimentId, experimentId)))[0];

/**
 * Moves the clock past the monitoring interval and runs rounds until the job looked at the experiment at
 * that time (other test files' running experiments share the database and the job's per-run budget).
 */
async function look(experimentId: string, runners: JobRunner[] = [runner()]) {
  clock.now = new Date(clock.now.getTime() + MINUTE + 1000);
  for (let i = 0; i < 50; i++) {
    await Promise.all(runners.map((r) => r.tick()));
    const m = await monitorOf(experimentId);
    if (m?.checkedAt && m.checkedAt.getTime() >= clock.now.getTime()) return m;
  }
  throw new Error('the monitoring job never looked at the experiment');
}

/** Sends the experiment's pending deliveries (other files' alerts may be queued before them). */
async function deliver(experimentId: string) {
  const delivering = runner(db, [deliveryJob(CONFIG)]);
  for (let i = 0; i < 50; i++) {
    const pending = (
      await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.status, 'pending'))
    ).filter((d) => d.payload.experimentId === experimentId);
    if (pending.length === 0) return;
    await delivering.tick();
  }
  throw new Error('deliveries stayed pending');
}

interface Hook {
  secret: string;
  webhook: { id: string };
  path: string;
}

/** What one webhook's receiver path got about one experiment (of one event), signatures checked. */
function alertsOf(experimentId: string, { secret, path }: Hook, event?: string) {
  return received
    .filter((r) => r.path === path)
    .map((r) => ({ ...r, parsed: JSON.parse(r.body) }))
    .filter((r) => r.parsed.data.experimentId === experimentId && (!event || r.parsed.event === event))
    .map((r) => {
      expect(verifySignature(secret, String(r.headers['x-sona-signature']), r.body, Date.now() / 1000)).toBe(
        true,
      );
      return r.parsed as { id: string; event: string; data: Record<string, any> };
    });
}

/** A webhook through GraphQL, POSTing to a path of its own on the receiver. */
async function createWebhook(input: Record<string, unknown>): Promise<Hook> {
  const path = `/hook/${randomUUID()}`;
  const data = await gqlOk(
    app,
    `mutation C($input: CreateWebhookInput!) { createWebhook(input: $input) { __typename
      ... on CreateWebhookSuccess { secret webhook { id } } } }`,
    { input: { url: `${url}${path}`, ...input } },
  );
  return { ...data.createWebhook, path };
}

async function auditOf(experimentId: string, action: string) {
  return db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.entityId, experimentId), eq(auditLog.action, action)));
}

const metrics = () => createMetricService({ db, actor: { name: 'test' } });
const binomialMetric = async (prefix: string, direction: 'INCREASE' | 'DECREASE' = 'INCREASE') => {
  const key = uniqueKey(prefix);
  await metrics().create({ key, name: key, kind: 'BINOMIAL', eventName: key, direction });
  return key;
};

/**
 * Records `units` new exposed units per arm (ids from `tag`), the first `converted[arm][metric]` of which
 * convert on that metric.
 */
async function seed(
  experiment: { key: string },
  variants: { id: string }[],
  tag: string,
  units: number[],
  converted: Record<string, number>[] = [],
) {
  const t = Date.now() - 2 * MINUTE;
  const events = variants.flatMap((v, arm) =>
    Array.from({ length: units[arm] }, (_, i) => {
      const base = { experimentKey: experiment.key, userId: `${tag}-${arm}-${i}`, variantId: v.id };
      return [
        { ...base, kind: 'EXPOSURE' as const, eventId: randomUUID(), occurredAt: new Date(t) },
        ...Object.entries(converted[arm] ?? {})
          .filter(([, n]) => i < n)
          .map(([metricName]) => ({
            ...base,
            kind: 'CONVERSION' as const,
            eventId: randomUUID(),
            metricName,
            value: 1,
            occurredAt: new Date(t + 1000),
          })),
      ];
    }).flat(),
  );
  for (let i = 0; i < events.length; i += 1000) {
    const result = await recordEvents(db, events.slice(i, i + 1000));
    expect(result.rejected).toEqual([]);
  }
}

const MONITORING = `monitoring { guardrailAction checkedAt decidedAt srmDetected significantMetrics breachedMetrics lastError }`;
const experimentQuery = `query E($id: ID!) { experiment(id: $id) { status ${MONITORING} variants { name weight } } }`;

describe('configureGuardrails', () => {
  it('refuses a bad id, an unknown or completed experiment and an unknown action, writing nothing', async () => {
    const experiment = await createTestExperiment(db);
    const before = await rowCounts(db, experiment.id);
    const mutation = `mutation G($id: ID!, $input: GuardrailSettingsInput!) { configureGuardrails(id: $id, input: $input) {
      __typename ... on Error { message } ... on ValidationError { fieldErrors { path } } ... on RuleViolationError { rule } } }`;
    const bad = await gqlOk(app, mutation, { id: 'nope', input: { action: 'PAUSE' } });
    expect(bad.configureGuardrails).toMatchObject({
      __typename: 'ValidationError',
      fieldErrors: [{ path: ['id'] }],
    });
    const missing = await gqlOk(app, mutation, { id: randomUUID(), input: { action: 'PAUSE' } });
    expect(missing.configureGuardrails.__typename).toBe('NotFoundError');
    const unknown = await gql(app, mutation, { id: experiment.id, input: { action: 'EXPLODE' } });
    expect(unknown.errors?.[0].message).toMatch(/action/);

    const completed = await createTestExperiment(db);
    await experimentService(db).transition(completed.id, 'archive');
    const readOnly = await gqlOk(app, mutation, { id: completed.id, input: { action: 'PAUSE' } });
    expect(readOnly.configureGuardrails).toMatchObject({
      __typename: 'RuleViolationError',
      rule: 'READ_ONLY',
    });
    expect(await rowCounts(db, experiment.id)).toEqual(before);

    const shown = await gqlOk(app, experimentQuery, { id: experiment.id });
    expect(shown.experiment.monitoring).toEqual({
      guardrailAction: 'PAUSE',
      checkedAt: null,
      decidedAt: null,
      srmDetected: false,
      significantMetrics: [],
      breachedMetrics: [],
      lastError: null,
    });
    const set = await gqlOk(app, mutation, {
      id: experiment.id,
      input: { action: 'ZERO_TREATMENT_WEIGHTS' },
    });
    expect(set.configureGuardrails.__typename).toBe('Experiment');
    expect(
      (await gqlOk(app, experimentQuery, { id: experiment.id })).experiment.monitoring.guardrailAction,
    ).toBe('ZERO_TREATMENT_WEIGHTS');
    const [audit] = await auditOf(experiment.id, 'experiment.guardrails_configured');
    expect(audit.details).toEqual({
      before: { action: 'PAUSE' },
      after: { action: 'ZERO_TREATMENT_WEIGHTS' },
    });
  });
});

describe('guardrails', () => {
  it('a breach pauses the experiment once, audited as `guardrail` with the numbers, and alerts', async () => {
    const guard = await binomialMetric('checkout');
    const goal = await binomialMetric('watch');
    const hook = await createWebhook({
      events: ['GUARDRAIL_BREACHED', 'EXPERIMENT_STATUS_CHANGED', 'SIGNIFICANCE_REACHED'],
    });
    const { experiment, variants } = await createRunningWithVariants(db, {
      metricRoles: [
        { metric: goal, role: 'PRIMARY' },
        { metric: guard, role: 'GUARDRAIL', toleratedHarm: -0.02 },
      ],
    });
    // Checkout: 60 % in the control, 20 % in the treatment; watching: 20 % and 60 %.
    await seed(
      experiment,
      variants,
      'a',
      [300, 300],
      [
        { [guard]: 180, [goal]: 60 },
        { [guard]: 60, [goal]: 180 },
      ],
    );
    await look(experiment.id);
    await deliver(experiment.id);

    const data = await gqlOk(app, experimentQuery, { id: experiment.id });
    expect(data.experiment.status).toBe('PAUSED');
    expect(data.experiment.monitoring).toMatchObject({
      breachedMetrics: [guard],
      significantMetrics: [goal],
      srmDetected: false,
      lastError: null,
    });
    const [breach] = await auditOf(experiment.id, 'experiment.guardrail_breached');
    expect(breach.actor).toBe('guardrail');
    const details = breach.details as Record<string, any>;
    expect(details).toMatchObject({ action: 'PAUSE', method: 'SEQUENTIAL', confidenceLevel: 0.95 });
    const [numbers] = details.breaches;
    expect(numbers).toMatchObject({
      metric: guard,
      goal: 'INCREASE',
      toleratedHarm: -0.02,
      threshold: -0.02,
    });
    expect(numbers.control).toMatchObject({ variantId: variants[0].id, units: 300, mean: 0.6 });
    expect(numbers.variants).toHaveLength(1);
    const [v] = numbers.variants;
    expect(v).toMatchObject({ variantId: variants[1].id, units: 300 });
    expect(v.estimate).toBeCloseTo(0.2 / 0.6 - 1, 10);
    expect(v.lower).toBeLessThan(v.estimate);
    expect(v.upper).toBeLessThan(-0.02);
    const [paused] = await auditOf(experiment.id, 'experiment.paused');
    expect(paused.actor).toBe('guardrail');

    const alerts = alertsOf(experiment.id, hook);
    // The start (by the factory), the guardrail's pause, the breach and the primary metric's significance.
    expect(alerts.map((a) => a.event).sort()).toEqual([
      'EXPERIMENT_STATUS_CHANGED',
      'EXPERIMENT_STATUS_CHANGED',
      'GUARDRAIL_BREACHED',
      'SIGNIFICANCE_REACHED',
    ]);
    expect(alerts.find((a) => a.event === 'GUARDRAIL_BREACHED')!.data).toMatchObject({
      key: experiment.key,
      metric: guard,
      action: 'PAUSE',
      threshold: -0.02,
      variants: [{ variantId: variants[1].id, upper: v.upper }],
    });
    expect(alerts.find((a) => a.data.actor === 'guardrail')!.data).toMatchObject({
      from: 'running',
      to: 'paused',
      actor: 'guardrail',
    });
    expect(alerts.find((a) => a.event === 'SIGNIFICANCE_REACHED')!.data).toMatchObject({
      metric: goal,
      role: 'PRIMARY',
      method: 'SEQUENTIAL',
      variants: [{ variantId: variants[1].id }],
    });

    // Resumed by a person: the breach is the same onset, so the guardrail leaves it running.
    await experimentService(db, 'alice').transition(experiment.id, 'start');
    await seed(experiment, variants, 'b', [10, 10], [{ [guard]: 6 }, { [guard]: 2 }]);
    const after = await look(experiment.id);
    expect(after.decidedAt!.getTime()).toBe(clock.now.getTime());
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('running');
    expect(await auditOf(experiment.id, 'experiment.guardrail_breached')).toHaveLength(1);
    const deliveries = await db
      .select()
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.webhookId, hook.webhook.id));
    expect(
      deliveries.filter((d) => d.payload.experimentId === experiment.id && d.event === 'GUARDRAIL_BREACHED'),
    ).toHaveLength(1);
  });

  it('ZERO_TREATMENT_WEIGHTS: every treatment weight goes to 0 in a new phase; stored assignments stay', async () => {
    const guard = await binomialMetric('errors', 'DECREASE');
    const { experiment, variants } = await createRunningWithVariants(db, {
      variants: [
        { name: 'control', weight: 1, isControl: true },
        { name: 'b', weight: 1 },
        { name: 'c', weight: 1 },
      ],
      metricRoles: [
        { metric: await binomialMetric('goal'), role: 'PRIMARY' },
        { metric: guard, role: 'GUARDRAIL' },
      ],
    });
    await gqlOk(
      app,
      `mutation G($id: ID!) { configureGuardrails(id: $id, input: { action: ZERO_TREATMENT_WEIGHTS }) { __typename } }`,
      { id: experiment.id },
    );
    // Errors (lower is better): 20 % in the control and in b, 60 % in c.
    await seed(
      experiment,
      variants,
      'z',
      [200, 200, 200],
      [{ [guard]: 40 }, { [guard]: 40 }, { [guard]: 120 }],
    );
    const assignmentsBefore = await db
      .select()
      .from(experimentAssignments)
      .where(eq(experimentAssignments.experimentId, experiment.id));
    await look(experiment.id);

    const data = await gqlOk(app, experimentQuery, { id: experiment.id });
    expect(data.experiment.monitoring).toMatchObject({ lastError: null, breachedMetrics: [guard] });
    expect(data.experiment.status).toBe('RUNNING');
    expect(data.experiment.variants).toEqual([
      { name: 'control', weight: 1 },
      { name: 'b', weight: 0 },
      { name: 'c', weight: 0 },
    ]);
    expect(data.experiment.monitoring.breachedMetrics).toEqual([guard]);
    // One phase per zeroed treatment, as a person's two updateVariant calls would open.
    const phases = await getPhasesByExperimentIds(db, [experiment.id]);
    expect(phases.map((p) => p.weights.map((w) => w.weight))).toEqual([
      [1, 1, 1],
      [1, 0, 1],
      [1, 0, 0],
    ]);
    const assignmentsAfter = await db
      .select()
      .from(experimentAssignments)
      .where(eq(experimentAssignments.experimentId, experiment.id));
    expect(assignmentsAfter).toEqual(assignmentsBefore);
    const updates = await auditOf(experiment.id, 'variant.updated');
    expect(updates.map((u) => u.actor)).toEqual(['guardrail', 'guardrail']);
    const [breach] = await auditOf(experiment.id, 'experiment.guardrail_breached');
    const details = breach.details as Record<string, any>;
    expect(details.action).toBe('ZERO_TREATMENT_WEIGHTS');
    // Only c breached (its errors rose); the threshold of a DECREASE metric without tolerance is 0.
    expect(details.breaches[0]).toMatchObject({ threshold: 0, goal: 'DECREASE', toleratedHarm: null });
    expect(details.breaches[0].variants.map((v: { variantId: string }) => v.variantId)).toEqual([
      variants[2].id,
    ]);
    expect(details.breaches[0].variants[0].lower).toBeGreaterThan(0);

    // More harmful data: the same onset, nothing more happens.
    await seed(experiment, variants, 'z2', [0, 0, 50], [{}, {}, { [guard]: 20 }]);
    await look(experiment.id);
    expect(await auditOf(experiment.id, 'experiment.guardrail_breached')).toHaveLength(1);
    expect(await getPhasesByExperimentIds(db, [experiment.id])).toHaveLength(3);
  });

  it('ZERO_TREATMENT_WEIGHTS pauses instead when the control has no weight (zeroing would stop all traffic)', async () => {
    const guard = await binomialMetric('nocontrol');
    const { experiment, variants } = await createRunningWithVariants(db, {
      metricRoles: [
        { metric: await binomialMetric('goal'), role: 'PRIMARY' },
        { metric: guard, role: 'GUARDRAIL' },
      ],
    });
    await seed(experiment, variants, 'n', [300, 300], [{ [guard]: 180 }, { [guard]: 60 }]);
    await gqlOk(
      app,
      `mutation G($id: ID!) { configureGuardrails(id: $id, input: { action: ZERO_TREATMENT_WEIGHTS }) { __typename } }`,
      { id: experiment.id },
    );
    await experimentService(db, 'alice').updateVariant(variants[0].id, { weight: 0 });
    await look(experiment.id);
    const data = await gqlOk(app, experimentQuery, { id: experiment.id });
    expect(data.experiment.status).toBe('PAUSED');
    // Nothing half done: the treatment keeps its weight.
    expect(data.experiment.variants.map((v: { weight: number }) => v.weight)).toEqual([0, 0.5]);
    const [breach] = await auditOf(experiment.id, 'experiment.guardrail_breached');
    expect(breach.details).toMatchObject({
      configuredAction: 'ZERO_TREATMENT_WEIGHTS',
      action: 'PAUSE',
      fallback: expect.stringContaining('positive total weight'),
    });
  });

  it('decides at most once a minute, and only when the statistics changed', async () => {
    const guard = await binomialMetric('rate');
    const { experiment, variants } = await createRunningWithVariants(db, {
      metricRoles: [
        { metric: await binomialMetric('goal'), role: 'PRIMARY' },
        { metric: guard, role: 'GUARDRAIL' },
      ],
    });
    await seed(experiment, variants, 'r', [200, 200], [{ [guard]: 20 }, { [guard]: 20 }]);
    const first = await look(experiment.id);
    expect(first.decidedAt!.getTime()).toBe(clock.now.getTime());
    // Unchanged statistics: looked at, not decided again.
    const unchanged = await look(experiment.id);
    expect(unchanged.decidedAt).toEqual(first.decidedAt);
    // Changed, but within the minute: not even looked at.
    await seed(experiment, variants, 'r2', [5, 5]);
    clock.now = new Date(clock.now.getTime() + 10_000);
    await runner().tick();
    expect((await monitorOf(experiment.id)).checkedAt).toEqual(unchanged.checkedAt);
    const changed = await look(experiment.id);
    expect(changed.decidedAt!.getTime()).toBe(clock.now.getTime());
  });

  it('a run that dies after deciding leaves nothing; the next run acts once; three instances act once', async () => {
    const guard = await binomialMetric('crash');
    const hook = await createWebhook({ events: ['GUARDRAIL_BREACHED'] });
    const { experiment, variants } = await createRunningWithVariants(db, {
      metricRoles: [
        { metric: await binomialMetric('goal'), role: 'PRIMARY' },
        { metric: guard, role: 'GUARDRAIL', toleratedHarm: -0.05 },
      ],
    });
    await seed(experiment, variants, 'c', [300, 300], [{ [guard]: 150 }, { [guard]: 30 }]);
    const dying: Job = {
      name: MONITOR_JOB,
      async run(tx, now, afterCommit) {
        await monitorJob().run(tx, now, afterCommit);
        throw new Error('killed mid-run');
      },
    };
    clock.now = new Date(clock.now.getTime() + MINUTE + 1000);
    for (let i = 0; i < 5; i++) await runner(db, [dying]).tick();
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('running');
    expect(await auditOf(experiment.id, 'experiment.guardrail_breached')).toEqual([]);
    expect(await monitorOf(experiment.id)).toBeUndefined();

    const runners = instances.map((h) => runner(h.db));
    await look(experiment.id, runners);
    await deliver(experiment.id);
    expect((await experimentsRepo.getExperiment(db, { id: experiment.id }))!.status).toBe('paused');
    expect(await auditOf(experiment.id, 'experiment.guardrail_breached')).toHaveLength(1);
    expect(await auditOf(experiment.id, 'experiment.paused')).toHaveLength(1);
    expect(alertsOf(experiment.id, hook, 'GUARDRAIL_BREACHED')).toHaveLength(1);
    await gqlOk(app, `mutation D($id: ID!) { deleteWebhook(id: $id) { __typename } }`, {
      id: hook.webhook.id,
    });
  });
});

describe('SRM and significance alerts', () => {
  it('SRM_DETECTED fires once per onset, again only after it cleared; the filters hold', async () => {
    const hook = await createWebhook({ events: ['SRM_DETECTED'] });
    const other = await createWebhook({ events: ['GUARDRAIL_BREACHED', 'SIGNIFICANCE_REACHED'] });
    const tooFew = await createWebhook({ events: ['SRM_DETECTED'], minUnits: 100_000 });
    const tooSoon = await createWebhook({ events: ['SRM_DETECTED'], minDays: 1 });
    const { experiment, variants } = await createRunningWithVariants(db);
    const srmAlerts = () => alertsOf(experiment.id, hook, 'SRM_DETECTED');

    // 300 : 150 on 50/50 weights.
    await seed(experiment, variants, 's1', [300, 150]);
    await look(experiment.id);
    await deliver(experiment.id);
    expect((await monitorOf(experiment.id)).srmDetected).toBe(true);
    expect(srmAlerts()).toHaveLength(1);
    expect(srmAlerts()[0].data).toMatchObject({
      key: experiment.key,
      variants: [
        { variantId: variants[0].id, observed: 300, expected: 225 },
        { variantId: variants[1].id, observed: 150, expected: 225 },
      ],
    });
    expect(srmAlerts()[0].data.pValue).toBeLessThan(0.001);

    // Still mismatched after more units: the same onset.
    await seed(experiment, variants, 's2', [30, 0]);
    await look(experiment.id);
    await deliver(experiment.id);
    expect(srmAlerts()).toHaveLength(1);

    // Balanced (330 : 330): cleared, no alert.
    await seed(experiment, variants, 's3', [0, 180]);
    await look(experiment.id);
    expect((await monitorOf(experiment.id)).srmDetected).toBe(false);
    // Mismatched again (660 : 330): a new onset.
    await seed(experiment, variants, 's4', [330, 0]);
    await look(experiment.id);
    await deliver(experiment.id);
    expect(srmAlerts()).toHaveLength(2);

    // The other webhooks' filters: other events, too few units, started too recently.
    const count = async (webhookId: string) =>
      (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, webhookId))).filter(
        (d) => d.payload.experimentId === experiment.id,
      ).length;
    expect(await count(other.webhook.id)).toBe(0);
    expect(await count(tooFew.webhook.id)).toBe(0);
    expect(await count(tooSoon.webhook.id)).toBe(0);
  });

  it('SIGNIFICANCE_REACHED: once per metric per onset, PRIMARY and SECONDARY only, by the SEQUENTIAL method', async () => {
    const primary = await binomialMetric('p');
    const secondary = await binomialMetric('s');
    const flat = await binomialMetric('f');
    const hook = await createWebhook({ events: ['SIGNIFICANCE_REACHED'] });
    const { experiment, variants } = await createRunningWithVariants(db, {
      metricRoles: [
        { metric: primary, role: 'PRIMARY' },
        { metric: secondary, role: 'SECONDARY' },
        { metric: flat, role: 'SECONDARY' },
      ],
    });
    // primary: 10 % → 50 %; secondary: 40 % → 15 % (a drop is significant too); flat: 20 % both.
    await seed(
      experiment,
      variants,
      'g',
      [300, 300],
      [
        { [primary]: 30, [secondary]: 120, [flat]: 60 },
        { [primary]: 150, [secondary]: 45, [flat]: 60 },
      ],
    );
    await look(experiment.id);
    await deliver(experiment.id);
    const monitoring = (await gqlOk(app, experimentQuery, { id: experiment.id })).experiment.monitoring;
    expect(monitoring.significantMetrics).toEqual([primary, secondary].sort());
    const alerts = alertsOf(experiment.id, hook, 'SIGNIFICANCE_REACHED');
    expect(alerts.map((a) => a.data.metric).sort()).toEqual([primary, secondary].sort());
    for (const a of alerts) {
      expect(a.data.method).toBe('SEQUENTIAL');
      expect(a.data.variants[0].pValue).toBeLessThan(0.05);
    }
    // The results service agrees: the same metrics are significant with method SEQUENTIAL.
    const scorecard = await gqlOk(
      app,
      `query S($id: ID!) { experiment(id: $id) { scorecard(method: SEQUENTIAL) { metric variants { isControl significant } } } }`,
      { id: experiment.id },
    );
    const significant = scorecard.experiment.scorecard
      .filter((r: { variants: { significant: boolean | null }[] }) => r.variants.some((v) => v.significant))
      .map((r: { metric: string }) => r.metric);
    expect(significant.sort()).toEqual([primary, secondary].sort());

    await seed(experiment, variants, 'g2', [20, 20], [{ [primary]: 2 }, { [primary]: 10 }]);
    await look(experiment.id);
    await deliver(experiment.id);
    expect(alertsOf(experiment.id, hook, 'SIGNIFICANCE_REACHED')).toHaveLength(2);
  });
});
