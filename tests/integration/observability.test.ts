/**
 * Observability of a running instance: GET /metrics (Prometheus text, parsed by an independent parser)
 * whose counters move with what the service does, and OpenTelemetry tracing (an in-memory exporter): a
 * server span per request carrying the GraphQL operation and continuing the caller's trace, a child span
 * per SQL statement, and the trace id in the request's log lines.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { sql } from 'drizzle-orm';
import { GraphQLError } from 'graphql';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { EXPERIMENT_CHANGED_CHANNEL, ExperimentConfigCache } from '../../src/assignments/config-cache';
import type { DatabaseHandle } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { errorMasker } from '../../src/http/plugins/error-masking';
import { Metrics } from '../../src/observability/metrics';
import { startTracing, type Tracing, tracingObserver } from '../../src/observability/tracing';
import { openTestDatabase, testDriver } from '../support/db';
import { createRunningExperiment } from '../support/factories';
import {
  captureLogs,
  getUrl,
  makeKey,
  postGraphQL,
  productionSecurity,
  rawPost,
  startTestServer,
  type TestServer,
} from '../support/server';

type Samples = Map<string, number>;

/**
 * Every counter and gauge sample of a scrape as `name{label="value",…}` → value, read by an independent
 * parser (which also rejects a malformed line); histograms are read through `histogramCounts`, since that
 * parser folds a histogram's label sets into one.
 */
function samples(text: string): Samples {
  const out: Samples = new Map();
  for (const family of parsePrometheusTextFormat(text)) {
    if (family.type === 'HISTOGRAM' || family.type === 'SUMMARY') continue;
    for (const m of family.metrics) {
      const labels = Object.entries(m.labels ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      out.set(`${family.name}{${labels}}`, Number(m.value));
    }
  }
  return out;
}

/** A histogram's observation count per label set, from the registry itself, keyed like `samples`. */
async function histogramCounts(metrics: Metrics, name: string): Promise<Samples> {
  const out: Samples = new Map();
  const metric = metrics.registry.getSingleMetric(name);
  for (const v of (await metric!.get()).values) {
    if ((v as { metricName?: string }).metricName !== `${name}_count`) continue;
    const labels = Object.entries(v.labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, val]) => `${k}="${val}"`)
      .join(',');
    out.set(`${name}{${labels}}`, v.value);
  }
  return out;
}

const delta = (before: Samples, after: Samples, key: string) =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);

describe('GET /metrics', () => {
  let handle: DatabaseHandle;
  let server: TestServer;
  let metrics: Metrics;
  let cache: ExperimentConfigCache;
  let readKey: string;
  let writeKey: string;

  beforeAll(async () => {
    handle = await openTestDatabase();
    cache = new ExperimentConfigCache();
    await cache.start(handle);
    metrics = new Metrics({ pool: () => handle.pool(), configCache: cache });
    server = await startTestServer(handle, { security: productionSecurity(), metrics, configCache: cache });
    readKey = (await makeKey(handle.db, ['read'])).key;
    writeKey = (await makeKey(handle.db, ['read', 'assign', 'write'])).key;
  });
  afterAll(async () => {
    await server?.close();
    await cache?.stop();
    await handle?.close();
  });

  async function scrape(): Promise<Samples> {
    const response = await fetch(`${server.base}/metrics`, {
      headers: { authorization: `Bearer ${readKey}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return samples(await response.text());
  }

  it('needs a key with the read scope when keys are required', async () => {
    const anonymous = await getUrl(`${server.base}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const { key: assignOnly } = await makeKey(handle.db, ['assign']);
    const forbidden = await getUrl(`${server.base}/metrics`, { authorization: `Bearer ${assignOnly}` });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
  });

  it('counts requests by route, operation and status, errors by code, and keeps Node process metrics', async () => {
    const durations = () => histogramCounts(metrics, 'sona_http_request_duration_seconds');
    const before = await scrape();
    const durationsBefore = await durations();
    const list = 'query DashboardList { experiments(first: 1) { totalCount } }';
    for (let i = 0; i < 3; i++)
      expect((await postGraphQL(server.url, list, {}, { key: readKey })).status).toBe(200);
    // A read key may not write: one FORBIDDEN error in the answer.
    const refused = await postGraphQL(
      server.url,
      'mutation Nope { deleteExperiment(id: "00000000-0000-0000-0000-000000000000") { __typename } }',
      {},
      { key: readKey },
    );
    expect(refused.body.errors[0].extensions.code).toBe('FORBIDDEN');
    const unauthenticated = await postGraphQL(server.url, list, {}, { key: 'sona_not-a-key' });
    expect(unauthenticated.status).toBe(401);
    const after = await scrape();
    const durationsAfter = await durations();

    const ok = 'sona_http_requests_total{operation="DashboardList",route="/graphql",status="200"}';
    expect(delta(before, after, ok)).toBe(3);
    expect(
      delta(
        durationsBefore,
        durationsAfter,
        'sona_http_request_duration_seconds{operation="DashboardList",route="/graphql"}',
      ),
    ).toBe(3);
    expect(delta(before, after, 'sona_errors_total{code="FORBIDDEN"}')).toBe(1);
    expect(delta(before, after, 'sona_errors_total{code="UNAUTHENTICATED"}')).toBe(1);
    // Refused before parsing: no operation name is known.
    expect(delta(before, after, 'sona_http_requests_total{operation="",route="/graphql",status="401"}')).toBe(
      1,
    );
    expect(after.get('process_cpu_seconds_total{}')).toBeGreaterThan(0);
    expect(after.get('nodejs_heap_size_used_bytes{}')).toBeGreaterThan(0);
  });

  /**
   * Waits until every change notification committed so far has reached this process (and so dropped the
   * cache): NOTIFYs arrive in commit order on the one LISTEN connection, so once a sentinel sent now has
   * arrived, the earlier ones have too.
   */
  async function settleNotifications(): Promise<void> {
    const sentinel = randomUUID();
    let arrived!: () => void;
    const seen = new Promise<void>((resolve) => (arrived = resolve));
    const unlisten = await handle.listen(EXPERIMENT_CHANGED_CHANNEL, (payload) => {
      if (payload === sentinel) arrived();
    });
    await handle.db.execute(sql`SELECT pg_notify(${EXPERIMENT_CHANGED_CHANNEL}, ${sentinel})`);
    await seen;
    await unlisten();
  }

  it('counts assignments by reason and configuration-cache lookups', async () => {
    const experiment = await createRunningExperiment(handle.db);
    // The experiment's own change notifications would otherwise drop the cache mid-test (an extra miss).
    await settleNotifications();
    const before = await scrape();
    const assign = (userId: string) =>
      rawPost(`${server.base}/v1/assignments`, JSON.stringify({ experimentKey: experiment.key, userId }), {
        key: writeKey,
      });
    for (const userId of ['m-1', 'm-2', 'm-1']) expect((await assign(userId)).status).toBe(200);
    const missing = await rawPost(
      `${server.base}/v1/assignments`,
      JSON.stringify({ experimentKey: 'no-such-experiment', userId: 'm-1' }),
      { key: writeKey },
    );
    expect(missing.body.reason).toBe('NOT_FOUND');
    const bad = await rawPost(`${server.base}/v1/assignments`, '{"userId": 5}', { key: writeKey });
    expect(bad.status).toBe(400);
    const after = await scrape();

    expect(delta(before, after, 'sona_assignments_total{reason="ASSIGNED"}')).toBe(2);
    expect(delta(before, after, 'sona_assignments_total{reason="EXISTING"}')).toBe(1);
    expect(delta(before, after, 'sona_assignments_total{reason="NOT_FOUND"}')).toBe(1);
    expect(delta(before, after, 'sona_errors_total{code="VALIDATION_FAILED"}')).toBe(1);
    expect(
      delta(before, after, 'sona_http_requests_total{operation="",route="/v1/assignments",status="200"}'),
    ).toBe(4);
    // Four lookups of two keys: the first of each misses, the rest hit.
    expect(delta(before, after, 'sona_config_cache_lookups_total{result="miss"}')).toBe(2);
    expect(delta(before, after, 'sona_config_cache_lookups_total{result="hit"}')).toBe(2);
  });

  it('counts events by outcome and batch sizes', async () => {
    const experiment = await createRunningExperiment(handle.db);
    const [control] = await getVariants(handle.db, experiment.id);
    const event = (eventId: string) => ({
      eventId,
      kind: 'EXPOSURE',
      experimentKey: experiment.key,
      userId: 'e-1',
      variantId: control.id,
    });
    const repeated = randomUUID();
    const batchesBefore =
      (await histogramCounts(metrics, 'sona_ingestion_batch_size')).get('sona_ingestion_batch_size{}') ?? 0;
    const before = await scrape();
    const mutation = `mutation Ingest($events: [EventInput!]!) {
      recordEvents(events: $events) { accepted duplicates rejected { index } } }`;
    const first = await postGraphQL(
      server.url,
      mutation,
      { events: [event(repeated), event(randomUUID())] },
      { key: writeKey },
    );
    expect(first.body.data.recordEvents).toMatchObject({ accepted: 2, duplicates: 0 });
    const second = await postGraphQL(
      server.url,
      mutation,
      {
        events: [
          event(repeated),
          { ...event(randomUUID()), experimentKey: 'no-such-experiment' },
          event(randomUUID()),
        ],
      },
      { key: writeKey },
    );
    expect(second.body.data.recordEvents).toMatchObject({
      accepted: 1,
      duplicates: 1,
      rejected: [{ index: 1 }],
    });
    const after = await scrape();
    expect(delta(before, after, 'sona_events_total{outcome="accepted"}')).toBe(3);
    expect(delta(before, after, 'sona_events_total{outcome="duplicate"}')).toBe(1);
    expect(delta(before, after, 'sona_events_total{outcome="rejected"}')).toBe(1);
    const batches = await histogramCounts(metrics, 'sona_ingestion_batch_size');
    expect(batches.get('sona_ingestion_batch_size{}')).toBe(batchesBefore + 2);
  });

  it('publishes the connection pool on PostgreSQL (none on the embedded database)', async () => {
    const after = await scrape();
    if (testDriver() === 'postgres') {
      expect(after.get('sona_db_pool_max{}')).toBe(5);
      const states = ['idle', 'busy', 'reserved', 'connecting'].map(
        (state) => after.get(`sona_db_pool_connections{state="${state}"}`) ?? -1,
      );
      for (const n of states) expect(n).toBeGreaterThanOrEqual(0);
      expect(states.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5);
      expect(after.get('sona_db_pool_waiting{}')).toBe(0);
    } else {
      expect([...after.keys()].some((k) => k.startsWith('sona_db_pool'))).toBe(false);
    }
  });

  it('labels at most LIMITS.maxMetricOperations operation names; later new names count as other', () => {
    const own = new Metrics({ processMetrics: false });
    for (let i = 0; i < 200; i++) expect(own.operationLabel(`Op${i}`)).toBe(`Op${i}`);
    expect(own.operationLabel('Op0')).toBe('Op0');
    expect(own.operationLabel('OneTooMany')).toBe('other');
    expect(own.operationLabel(undefined)).toBe('anonymous');
  });

  it('rate-limit refusals are counted by limit', async () => {
    const own = new Metrics({ processMetrics: false });
    own.rateLimit('requests');
    own.rateLimit('auth_failures');
    own.rateLimit('auth_failures');
    const scraped = samples((await own.scrape()).body);
    expect(scraped.get('sona_rate_limited_total{limit="requests"}')).toBe(1);
    expect(scraped.get('sona_rate_limited_total{limit="auth_failures"}')).toBe(2);
  });

  // PGlite has no statement timeout (it runs in this thread).
  if (testDriver() === 'postgres')
    it('a statement cancelled by the statement timeout is counted and answered as TIMEOUT', async () => {
      const own = new Metrics({ processMetrics: false });
      const cancelled = await handle.db
        .transaction(async (tx) => {
          await tx.execute(sql`SET LOCAL statement_timeout = 20`);
          await tx.execute(sql`SELECT pg_sleep(2)`);
        })
        .catch((err: unknown) => err);
      const masked = errorMasker(captureLogs().logger, own)(cancelled);
      expect(masked).toBeInstanceOf(GraphQLError);
      expect((masked as GraphQLError).extensions.code).toBe('TIMEOUT');
      const scraped = samples((await own.scrape()).body);
      expect(scraped.get('sona_db_statement_timeouts_total{}')).toBe(1);
    });
});

describe('OpenTelemetry tracing', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let handle: DatabaseHandle;
  let server: TestServer;
  let key: string;

  beforeAll(async () => {
    tracing = (await startTracing({ exporter }))!;
    handle = await openTestDatabase({ observer: tracingObserver(tracing) });
    server = await startTestServer(handle, { security: productionSecurity(), tracing });
    key = (await makeKey(handle.db, ['read'])).key;
  });
  afterAll(async () => {
    await server?.close();
    await handle?.close();
    await tracing?.shutdown();
  });

  it('is off without an OTLP endpoint', async () => {
    expect(await startTracing({ env: {} })).toBeNull();
  });

  it('a server span per request with the operation, continuing the caller trace, SQL spans beneath it, ids in the logs', async () => {
    exporter.reset();
    const traceId = randomUUID().replaceAll('-', '');
    const parentSpanId = 'a1b2c3d4e5f60718';
    const response = await postGraphQL(
      server.url,
      'query TracedList { experiments(first: 2) { totalCount edges { node { key variants { name } } } } }',
      {},
      { key, headers: { traceparent: `00-${traceId}-${parentSpanId}-01` } },
    );
    expect(response.status).toBe(200);
    const requestId = response.headers.get('x-request-id');
    // The span ends when the response is finished; give the socket's close a moment.
    let spans = exporter.getFinishedSpans();
    for (let i = 0; i < 100 && !spans.some((s) => s.kind === SpanKind.SERVER); i++) {
      await new Promise((r) => setTimeout(r, 10));
      spans = exporter.getFinishedSpans();
    }
    const server_ = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server_.name).toBe('POST /graphql TracedList');
    expect(server_.spanContext().traceId).toBe(traceId);
    expect(server_.parentSpanContext?.spanId).toBe(parentSpanId);
    expect(server_.attributes).toMatchObject({
      'graphql.operation.name': 'TracedList',
      'http.response.status_code': 200,
      'http.route': '/graphql',
      'sona.request_id': requestId,
    });
    const statements = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(statements.length).toBeGreaterThanOrEqual(2);
    for (const s of statements) {
      expect(s.spanContext().traceId).toBe(traceId);
      expect(s.parentSpanContext?.spanId).toBe(server_.spanContext().spanId);
      expect(s.attributes['db.system.name']).toBe('postgresql');
      // Named by the statement's keyword; the text has placeholders, never values.
      expect(s.name).toMatch(/^(SELECT|WITH|UPDATE|INSERT)$/);
    }
    const texts = statements.map((s) => String(s.attributes['db.query.text']));
    expect(texts.some((t) => /from "experiments"/i.test(t))).toBe(true);
    expect(texts.join('\n')).not.toContain(key);
    const line = server.logs.lines().find((l) => l.msg === 'graphql operation' && l.requestId === requestId);
    expect(line).toMatchObject({ traceId, operationName: 'TracedList' });
  });
});
