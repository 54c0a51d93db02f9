/**
 * Requests the HTTP layer cannot hand to GraphQL: a malformed Host header is the client's mistake
 * (400), and anything that still fails unexpectedly answers 500 with a request id that a log line
 * carries too.
 */
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { DatabaseHandle } from '../../src/db/client';
import type { App } from '../../src/http/app';
import { createHttpServer } from '../../src/http/server';
import { openTestDatabase } from '../support/db';
import { captureLogs, makeKey, startTestServer, type TestServer } from '../support/server';

/** One raw HTTP/1.1 request (fetch cannot send a Host header of its own); the status line and body. */
async function rawRequest(base: string, head: string, body = ''): Promise<{ status: number; text: string }> {
  const { port } = new URL(base);
  const socket = connect(Number(port), '127.0.0.1');
  let text = '';
  socket.on('data', (chunk) => {
    text += chunk.toString();
  });
  socket.write(`${head}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  await new Promise((resolve) => socket.on('close', resolve));
  return { status: Number(text.split(' ')[1]), text };
}

let handle: DatabaseHandle;
let server: TestServer;
beforeAll(async () => {
  handle = await openTestDatabase();
  server = await startTestServer(handle);
});
afterAll(async () => {
  await server?.close();
  await handle?.close();
});

describe('HTTP errors', () => {
  it('a malformed Host header → 400 BAD_REQUEST with a request id, not 500', async () => {
    const { key } = await makeKey(handle.db, ['read']);
    const body = JSON.stringify({ query: '{ experiments(first: 1) { totalCount } }' });
    const response = await rawRequest(
      server.base,
      `POST /graphql HTTP/1.1\r\nhost: bad host[\r\ncontent-type: application/json\r\nauthorization: Bearer ${key}\r\nx-request-id: bad-host-1`,
      body,
    );
    expect(response.status).toBe(400);
    expect(response.text).toContain('"code":"BAD_REQUEST"');
    expect(response.text).toContain('"requestId":"bad-host-1"');
  });

  it('every 500 is logged with the request id it answers with', async () => {
    const logs = captureLogs();
    const broken = { fetch: () => Promise.reject(new Error('handler bug')) } as unknown as App;
    const routes = {
      '/v1/broken': async () => {
        throw new Error('route bug');
      },
    };
    const http = createHttpServer(
      broken,
      handle,
      { maxBodyBytes: 1024, requestTimeoutMs: 5000, logger: logs.logger },
      routes,
    );
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      for (const [path, id] of [
        ['/graphql', 'five-hundred-1'],
        ['/v1/broken', 'five-hundred-2'],
      ]) {
        const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'x-request-id': id } });
        expect(response.status).toBe(500);
        expect(await response.text()).toContain(`"requestId":"${id}"`);
        const line = logs.lines().find((l) => l.requestId === id);
        expect(line).toMatchObject({ level: 50, msg: 'unexpected error', status: 500 });
      }
    } finally {
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    }
  });
});
