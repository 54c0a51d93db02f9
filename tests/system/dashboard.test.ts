/**
 * The dashboard in a real browser: Debian's Chromium (/usr/bin/chromium, `.ci/run` installs it) driven by
 * playwright-core, against a spawned service on PostgreSQL (API keys required). It signs in with a key
 * (kept out of every URL), lists the seed experiments, draws a forest plot and an effect-over-time chart per
 * metric with one series per treatment (an interval band and a line), redraws within 2 s of events recorded through the API, pauses through the UI (status and
 * audit entry), and has no serious axe-core violations at 1280 and 390 px. Screenshots go to
 * artifacts/screenshots/ (git-ignored; CI keeps them); JS bytes and GraphQL requests are printed.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'drizzle-orm';
import { type Browser, chromium, type Page } from 'playwright-core';
import { queryRows } from '../../src/db/client';
import { getVariants } from '../../src/experiments/repository';
import { testDriver } from '../support/db';
import { createRunningExperiment, createTestExperiment } from '../support/factories';
import { ROOT } from '../support/paths';
import { type SpawnedService, spawnService } from '../support/processes';
import { type IsolatedDatabase, makeKey, openIsolatedDatabase, postGraphQL } from '../support/server';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'artifacts', 'screenshots');
const SEED_KEYS = ['homepage-recs-collaborative', 'continue-watching-ranking', 'genre-affinity-boost'];
const RECORD = `mutation Record($events: [EventInput!]!) { recordEvents(events: $events) { accepted rejected { message } } }`;

const run = testDriver() === 'postgres' && existsSync(CHROMIUM) ? describe : describe.skip;

run('dashboard in Chromium', () => {
  let iso: IsolatedDatabase;
  let service: SpawnedService;
  let browser: Browser;
  let key: string;
  const report: Record<string, unknown> = {};

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    iso = await openIsolatedDatabase();
    key = (await makeKey(iso.handle.db, ['write', 'assign'], 'dashboard-browser')).key;
    service = await spawnService({ DATABASE_URL: iso.url!, LOG_LEVEL: 'warn' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await service?.kill();
    await iso?.close();
    console.log(`dashboard report: ${JSON.stringify(report, null, 2)}`);
  });

  /** A page that signs in, counting GraphQL requests, JS bytes on the wire and every URL it visits. */
  async function open(width: number) {
    // bypassCSP: axe-core is injected as an inline script, which the dashboard's policy forbids.
    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const stats = { graphql: 0, jsBytes: 0, outside: [] as string[], urls: [] as string[] };
    page.on('request', (r) => {
      if (!r.url().startsWith(service.base)) stats.outside.push(r.url());
      if (new URL(r.url()).pathname === '/graphql') stats.graphql++;
    });
    page.on('response', async (r) => {
      if (r.url().endsWith('.js')) stats.jsBytes += Number((await r.allHeaders())['content-length'] ?? 0);
    });
    page.on('framenavigated', (f) => stats.urls.push(f.url()));
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${service.base}/`, { waitUntil: 'networkidle' });
    // The first page load, before signing in reloads the page.
    const firstLoadJsBytes = stats.jsBytes;
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Experiments' }).waitFor();
    return { page, stats, firstLoadJsBytes, close: () => context.close() };
  }

  async function axe(page: Page) {
    await page.addScriptTag({
      content: readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'),
    });
    const result = await page.evaluate(async () => {
      const r = await (window as any).axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v: any) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    return result as { id: string; impact: string; nodes: number }[];
  }

  async function experimentWithEvents() {
    const experiment = await createRunningExperiment(iso.handle.db, {
      variants: [
        { name: 'control', weight: 1, isControl: true, config: { strategy: 'baseline' } },
        { name: 'treatment-a', weight: 1, config: { strategy: 'a' } },
        { name: 'treatment-b', weight: 1, config: { strategy: 'b' } },
      ],
    });
    // Past results' minimum units per arm (LIMITS.minUnitsPerVariant), so effects are drawn; first exposed
    // over three past hours, so the (hourly, for a fresh experiment) time series has three points.
    await record(experiment.id, experiment.key, 160, 3);
    await record(experiment.id, experiment.key, 20, 2);
    await record(experiment.id, experiment.key, 20, 1);
    return experiment;
  }

  async function record(experimentId: string, experimentKey: string, perVariant: number, hoursAgo = 0) {
    const variants = await getVariants(iso.handle.db, experimentId);
    const occurredAt = new Date(Date.now() - hoursAgo * 3_600_000).toISOString();
    const events = variants.flatMap((v, vi) =>
      Array.from({ length: perVariant }, (_, u) => {
        const base = { experimentKey, userId: `b-${randomUUID()}`, variantId: v.id, occurredAt };
        const exposure = { ...base, kind: 'EXPOSURE', eventId: randomUUID() };
        return u % (3 + vi) === 0
          ? [exposure, { ...base, kind: 'CONVERSION', metricName: 'conversion', eventId: randomUUID() }]
          : [exposure];
      }).flat(),
    );
    const answer = await postGraphQL(service.url, RECORD, { events }, { key });
    expect(answer.body.data.recordEvents.rejected).toEqual([]);
  }

  it('lists the seed experiments after signing in, with no key in any URL and nothing fetched from outside', async () => {
    const { page, stats, firstLoadJsBytes, close } = await open(1280);
    try {
      for (const k of SEED_KEYS) await page.locator(`tr[data-key="${k}"]`).waitFor();
      await page.getByLabel('Search').fill('genre');
      await expect(page.locator('tbody tr').count()).resolves.toBe(1);
      await page.getByLabel('Search').fill('');
      const violations = (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(violations).toEqual([]);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'list-1280.png'), fullPage: true });
      report.firstLoadJsBytesCompressed = firstLoadJsBytes;
      expect(firstLoadJsBytes).toBeGreaterThan(0);
      expect(firstLoadJsBytes).toBeLessThanOrEqual(300 * 1024);
      expect(stats.outside).toEqual([]);
      expect(stats.urls.every((u) => !u.includes(key))).toBe(true);
    } finally {
      await close();
    }
  });

  it('draws a forest plot and the effect over time per metric, redraws within 2 s of new events, pauses through the UI', async () => {
    const experiment = await experimentWithEvents();
    const { page, stats, close } = await open(1280);
    try {
      const before = stats.graphql;
      await page.goto(`${service.base}/experiments/${experiment.key}`);
      const plot = page.locator('svg.forest[data-metric="conversion"]');
      await plot.waitFor();
      // One series per treatment, each with an interval and an estimate.
      await expect(plot.locator('g.series').count()).resolves.toBe(2);
      await expect(plot.locator('g.series circle').count()).resolves.toBe(2);
      const units = page.locator('article[data-metric="conversion"] tbody tr').first().locator('td').nth(1);
      await expect(units.textContent()).resolves.toBe('200');
      // The effect over time: per treatment an interval band and a line through the three hourly points.
      const overTime = page.locator('svg.over-time[data-metric="conversion"]');
      await expect(overTime.locator('g.series').count()).resolves.toBe(2);
      await expect(overTime.locator('g.series path.band').count()).resolves.toBe(2);
      await expect(overTime.locator('g.series path.line').count()).resolves.toBe(2);
      const lines = await overTime
        .locator('g.series path.line')
        .evaluateAll((ps) => ps.map((p) => (p.getAttribute('d')?.match(/[ML]/g) ?? []).length));
      expect(lines).toEqual([3, 3]);
      await expect(overTime.getAttribute('aria-label')).resolves.toMatch(
        /^Relative effect on conversion over time.*treatment-a from .*treatment-b from /,
      );

      await record(experiment.id, experiment.key, 5);
      const recordedAt = Date.now();
      await page.waitForFunction(
        () =>
          document.querySelector('article[data-metric="conversion"] tbody tr td:nth-child(2)')
            ?.textContent === '205',
        undefined,
        { timeout: 2000 },
      );
      report.redrawAfterEventsMs = Date.now() - recordedAt;
      // The push carries the time series too: the current hour's point joins each line.
      await page.waitForFunction(
        () =>
          [...document.querySelectorAll('svg.over-time[data-metric="conversion"] path.line')].every(
            (p) => (p.getAttribute('d')?.match(/[ML]/g) ?? []).length === 4,
          ),
        undefined,
        { timeout: 2000 },
      );

      await page.getByRole('button', { name: 'Pause' }).click();
      await page.locator('[data-testid="status"]', { hasText: 'paused' }).waitFor({ timeout: 5000 });
      await page.locator('li[data-action="experiment.paused"]').waitFor({ timeout: 5000 });
      const audit = await queryRows<{ actor: string }>(
        iso.handle.db,
        sql`SELECT actor FROM audit_log WHERE entity_id = ${experiment.id} AND action = 'experiment.paused'`,
      );
      expect(audit.map((a) => a.actor)).toEqual(['dashboard-browser']);
      // The page's query, its subscription and the pause: nothing else.
      report.experimentPageGraphQLRequests = stats.graphql - before;
      expect(stats.graphql - before).toBeLessThanOrEqual(3);

      const violations = (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(violations).toEqual([]);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'experiment-1280.png'), fullPage: true });
      expect(stats.urls.every((u) => !u.includes(key))).toBe(true);
    } finally {
      await close();
    }
  });

  it('is usable at 390 px: no horizontal page scroll, no serious axe violations', async () => {
    const experiment = await experimentWithEvents();
    const { page, close } = await open(390);
    try {
      await page.screenshot({ path: path.join(SCREENSHOTS, 'list-390.png'), fullPage: true });
      await page.goto(`${service.base}/experiments/${experiment.key}`);
      await page.locator('svg.forest').waitFor();
      await page.locator('svg.over-time').waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      const violations = (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(violations).toEqual([]);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'experiment-390.png'), fullPage: true });
    } finally {
      await close();
    }
  });

  it('pages through more experiments than one page and filters by status on the server', async () => {
    // Twelve more drafts: with the rest, more than one page of 10.
    for (let i = 0; i < 12; i++) await createTestExperiment(iso.handle.db, { key: `page-draft-${i}` });
    const [{ total, drafts }] = await queryRows<{ total: number; drafts: number }>(
      iso.handle.db,
      sql`SELECT count(*)::int AS total, (count(*) FILTER (WHERE status = 'draft'))::int AS drafts FROM experiments`,
    );
    const { page, close } = await open(1280);
    try {
      // One page of 10 first.
      await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 10);
      while (await page.getByRole('button', { name: 'Show more' }).isVisible()) {
        const shown = await page.locator('tbody tr').count();
        await page.getByRole('button', { name: 'Show more' }).click();
        await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length > n, shown);
      }
      await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length === n, total);
      await page.getByLabel('Status').selectOption('DRAFT');
      await page.waitForFunction(() =>
        [...document.querySelectorAll('tbody tr .status')].every((e) => e.textContent === 'draft'),
      );
      // The filter ran on the server: every draft, loading more pages as needed.
      while (await page.getByRole('button', { name: 'Show more' }).isVisible()) {
        await page.getByRole('button', { name: 'Show more' }).click();
        await page.waitForTimeout(200);
      }
      await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length === n, drafts);
    } finally {
      await close();
    }
  });
});
