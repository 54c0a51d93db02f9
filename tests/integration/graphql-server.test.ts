/**
 * The real HTTP server, started in-process on an ephemeral port: GraphiQL from local assets, the
 * graphql-http conformance audit, health endpoints, and a dashboard's session through graphql-request.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { serverAudits, type AuditResult } from 'graphql-http';
import { ClientError, GraphQLClient, gql } from 'graphql-request';
import type { DatabaseHandle } from '../../src/db/client';
import { createHttpServer } from '../../src/http/server';
import { experiments as seedExperiments } from '../../seed/data';
import { createTestApp } from '../support/app';
import { openTestDatabase } from '../support/db';
import { uniqueKey } from '../support/factories';

let handle: DatabaseHandle;
let server: Server;
let base: string;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = createHttpServer(createTestApp(handle), handle);
  // fetch keeps idle connections 4 s and the server 5 s: on a busy machine a late client timer reused a
  // connection the server had just closed (ECONNRESET). The test's server keeps them longer than any client.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await handle.close();
});

describe('GraphiQL', () => {
  it('is served at GET /graphql to browsers, with the example document and no CDN', async () => {
    const response = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    expect(html).toContain('ListExperiments');
    expect(html).toContain('AssignUser');
    expect(html).toContain('RecordConversion');
    for (const cdn of ['unpkg.com', 'jsdelivr', 'esm.sh', 'cdnjs', 'skypack', 'googleapis', 'cloudflare']) {
      expect(html).not.toContain(cdn);
    }
    // Every script and stylesheet is inline or from this server.
    const external = [...html.matchAll(/(?:src|href)=["'](https?:)?\/\/[^"']+["']/g)].map((m) => m[0]);
    expect(external).toEqual([]);
  });

  it('the example document is valid against the schema', async () => {
    const { GRAPHIQL_EXAMPLE } = await import('../../src/http/graphiql');
    const { parse, validate } = await import('graphql');
    const { schema } = await import('../../src/graphql/schema');
    expect(validate(schema, parse(GRAPHIQL_EXAMPLE))).toEqual([]);
  });

  it('/ redirects to /graphql', async () => {
    const response = await fetch(`${base}/`, { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/graphql');
  });
});

describe('health endpoints', () => {
  it('/healthz and /readyz answer 200', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: handle.driver });
  });
});

describe('GraphQL over HTTP (graphql-http server audit)', () => {
  let results: AuditResult[];

  beforeAll(async () => {
    results = [];
    for (const audit of serverAudits({ url: `${base}/graphql` })) results.push(await audit.fn());
  });

  it('passes every MUST audit', () => {
    const failed = results
      .filter((r) => r.name.startsWith('MUST') && r.status !== 'ok')
      .map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failed).toEqual([]);
  });

  it('passes every SHOULD audit', () => {
    const failed = results
      .filter((r) => r.name.startsWith('SHOULD') && r.status !== 'ok')
      .map((r) => `${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failed).toEqual([]);
  });

  it('answers a malformed JSON body with 400, without echoing the parser’s message', async () => {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: '{"query": "{ experiments { totalCount } }", "secret-',
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(JSON.parse(text).errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(text).not.toMatch(/originalError|SyntaxError|secret|position/i);
  });

  it('reports the audits', () => {
    const summary = (level: string) => {
      const mine = results.filter((r) => r.name.startsWith(level));
      return `${level} ${mine.filter((r) => r.status === 'ok').length}/${mine.length}`;
    };
    const notOk = results.filter((r) => r.status !== 'ok').map((r) => `  ${r.status}: ${r.name}`);
    console.log(
      `graphql-http audit: ${['MUST', 'SHOULD', 'MAY'].map(summary).join(', ')}\n${notOk.join('\n')}`,
    );
    expect(results.length).toBeGreaterThan(50);
  });
});

describe('a dashboard using graphql-request', () => {
  it('lists, creates, starts, assigns, records and reads metrics back', async () => {
    const client = new GraphQLClient(`${base}/graphql`);

    const list = await client.request<any>(gql`
      query ListExperiments {
        experiments(first: 100) {
          totalCount
          edges { node { id key status variants { name } } }
        }
      }
    `);
    expect(list.experiments.totalCount).toBeGreaterThanOrEqual(seedExperiments.length);
    expect(list.experiments.edges.length).toBe(Math.min(100, list.experiments.totalCount));
    // Other test files add experiments to the shared database, so the seed's may be past the first
    // page: look each one up by key, as a dashboard's detail page does.
    const seeded = await client.request<any>(
      gql`
        query Seeded($a: String!, $b: String!, $c: String!) {
          a: experiment(key: $a) { key status }
          b: experiment(key: $b) { key status }
          c: experiment(key: $c) { key status }
        }
      `,
      { a: seedExperiments[0].key, b: seedExperiments[1].key, c: seedExperiments[2].key },
    );
    expect([seeded.a, seeded.b, seeded.c].map((e: any) => e.status)).toEqual(
      seedExperiments.map((e) => e.status.toUpperCase()),
    );

    const key = uniqueKey('dashboard');
    const created = await client.request<any>(
      gql`
        mutation Create($input: CreateExperimentInput!) {
          createExperiment(input: $input) {
            __typename
            ... on Experiment { id key status variants { id name isControl } }
            ... on Error { code message }
          }
        }
      `,
      {
        input: {
          key,
          name: 'Dashboard-made experiment',
          variants: [
            { name: 'control', isControl: true, config: { rail: 'popular' } },
            { name: 'treatment', config: { rail: 'personal' } },
          ],
        },
      },
    );
    expect(created.createExperiment).toMatchObject({ __typename: 'Experiment', key, status: 'DRAFT' });
    const id = created.createExperiment.id;

    const started = await client.request<any>(
      gql`
        mutation Start($id: ID!) {
          startExperiment(id: $id) { __typename ... on Experiment { status startAt } ... on Error { code message } }
        }
      `,
      { id },
    );
    expect(started.startExperiment).toMatchObject({ __typename: 'Experiment', status: 'RUNNING' });

    const assigned = await client.request<any>(
      gql`
        mutation Assign($key: String!, $userId: String!) {
          assignVariant(experimentKey: $key, userId: $userId) {
            __typename
            ... on Assignment { enrolled reason variant { id name config } }
          }
        }
      `,
      { key, userId: 'dashboard-user' },
    );
    expect(assigned.assignVariant).toMatchObject({ enrolled: true, reason: 'ASSIGNED' });
    const variant = assigned.assignVariant.variant;

    const recorded = await client.request<any>(
      gql`
        mutation Record($key: String!, $userId: String!) {
          exposure: recordExposure(input: { experimentKey: $key, userId: $userId }) {
            __typename ... on RecordEventSuccess { variantId duplicate }
          }
          conversion: recordConversion(input: { experimentKey: $key, userId: $userId, metricName: "conversion" }) {
            __typename ... on RecordEventSuccess { variantId duplicate }
          }
        }
      `,
      { key, userId: 'dashboard-user' },
    );
    expect(recorded).toEqual({
      exposure: { __typename: 'RecordEventSuccess', variantId: variant.id, duplicate: false },
      conversion: { __typename: 'RecordEventSuccess', variantId: variant.id, duplicate: false },
    });

    const read = await client.request<any>(
      gql`
        query Metrics($key: String) {
          experiment(key: $key) {
            assignmentCount
            metrics { totalExposures variantMetrics { variant { name } exposures uniqueUsers conversions conversionRate } }
          }
        }
      `,
      { key },
    );
    expect(read.experiment.assignmentCount).toBe(1);
    expect(read.experiment.metrics.totalExposures).toBe(1);
    const byName = Object.fromEntries(
      read.experiment.metrics.variantMetrics.map((m: any) => [m.variant.name, m]),
    );
    expect(byName[variant.name]).toMatchObject({
      exposures: 1,
      uniqueUsers: 1,
      conversions: 1,
      conversionRate: 1,
    });
    const other = variant.name === 'control' ? 'treatment' : 'control';
    expect(byName[other]).toMatchObject({ exposures: 0, conversions: 0, conversionRate: 0 });
  });

  it('surfaces request errors as a ClientError with the GraphQL errors', async () => {
    const client = new GraphQLClient(`${base}/graphql`);
    const failure = await client.request(gql`{ experiments(first: 500) { totalCount } }`).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ClientError);
    expect((failure as ClientError).response.errors?.[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
    });
  });
});
