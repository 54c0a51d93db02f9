/**
 * GraphiQL's page (about 9 MB, everything inline so it works offline) over real HTTP: compressed as the
 * browser accepts, with an ETag so reopening it costs a 304 instead of the page.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import { chooseEncoding } from '../../src/http/graphiql-page';
import { createHttpServer } from '../../src/http/server';
import { createTestApp } from '../support/app';
import { openTestDatabase } from '../support/db';

let handle: DatabaseHandle;
let server: Server;
let port: number;

beforeAll(async () => {
  handle = await openTestDatabase();
  server = createHttpServer(createTestApp(handle), handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await handle.close();
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A GET as a browser sends it, with the raw bytes back (fetch would decompress them). */
function get(headers: Record<string, string>): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/graphql', headers: { accept: 'text/html', ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const PAGE_BYTES = 5_000_000; // the uncompressed page is ~9 MB

describe('GraphiQL page', () => {
  it('is sent with brotli when accepted: a fraction of the page, which decompresses to GraphiQL', async () => {
    const res = await get({ 'accept-encoding': 'gzip, deflate, br' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('br');
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers.vary).toMatch(/accept-encoding/i);
    expect(res.body.length).toBeLessThan(PAGE_BYTES / 2);
    const html = brotliDecompressSync(res.body).toString('utf8');
    expect(html.length).toBeGreaterThan(PAGE_BYTES);
    expect(html).toContain('ListExperiments');
  });

  it('is sent with gzip to a client that accepts only gzip, and uncompressed to one that accepts neither', async () => {
    const gz = await get({ 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.body.length).toBeLessThan(PAGE_BYTES / 2);
    expect(gunzipSync(gz.body).toString('utf8')).toContain('ListExperiments');

    const plain = await get({ 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(PAGE_BYTES);
    expect(plain.body.toString('utf8')).toContain('ListExperiments');
  });

  it('carries an ETag; revalidating with it answers 304 without a body', async () => {
    const first = await get({ 'accept-encoding': 'br' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers['cache-control']).toBe('no-cache');
    const again = await get({ 'accept-encoding': 'br', 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    // Another encoding is another representation: its own tag, and a full answer.
    const gz = await get({ 'accept-encoding': 'gzip', 'if-none-match': etag });
    expect(gz.status).toBe(200);
    expect(gz.headers.etag).not.toBe(etag);
  });
});

describe('chooseEncoding', () => {
  it.each([
    ['gzip, deflate, br', 'br'],
    ['br;q=0, gzip', 'gzip'],
    ['gzip;q=0.5, br;q=0.1', 'gzip'],
    ['gzip;q=0.5, br;q=0.5', 'br'],
    ['*', 'br'],
    ['deflate', 'identity'],
    [null, 'identity'],
  ])('%j → %s', (header, expected) => {
    expect(chooseEncoding(header)).toBe(expected);
  });
});
