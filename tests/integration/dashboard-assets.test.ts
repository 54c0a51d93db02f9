/** The dashboard's files as the service serves them (src/http/dashboard.ts), from a build folder. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createDashboard } from '../../src/http/dashboard';

describe('dashboard files', () => {
  let dir: string;
  let server: Server;
  let base: string;
  const script = `console.log(${JSON.stringify('x'.repeat(2000))});`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sona-dashboard-'));
    mkdirSync(path.join(dir, 'assets'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>t</title><div id="app"></div>');
    writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), script);
    const serve = createDashboard(dir)!;
    server = createServer((req, res) => {
      if (!serve(req, res, (req.url ?? '/').split('?')[0])) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page at / and /experiments/:key, never cached, with a same-origin content policy', async () => {
    for (const page of ['/', '/experiments/homepage-recs', '/experiments/a%20b/']) {
      const response = await fetch(`${base}${page}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(await response.text()).toContain('<div id="app">');
    }
  });

  it('serves hashed assets compressed and cached for good; anything else is not its business', async () => {
    const raw = await fetch(`${base}/assets/index-abc123.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(raw.headers.get('cache-control')).toContain('immutable');
    expect(raw.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await raw.text()).toBe(script);
    // fetch would decode the body itself: read the bytes on the wire through node:http instead.
    const { request } = await import('node:http');
    const wire = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
      request(`${base}/assets/index-abc123.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }),
        );
      })
        .on('error', reject)
        .end();
    });
    expect(wire.encoding).toBe('gzip');
    expect(wire.body.length).toBeLessThan(script.length / 10);
    expect(gunzipSync(wire.body).toString()).toBe(script);
    for (const other of [
      '/assets/missing.js',
      '/graphql',
      '/experiments',
      '/experiments/a/b',
      '/../package.json',
    ]) {
      expect((await fetch(`${base}${other}`)).status).toBe(404);
    }
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('is absent without a build (the server then redirects / to GraphiQL)', () => {
    expect(createDashboard(path.join(dir, 'nowhere'))).toBeNull();
  });
});
