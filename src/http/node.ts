/** Small helpers for handlers written directly on node:http (no fetch-API conversion on hot paths). */
import type { IncomingMessage, ServerResponse } from 'node:http';

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

/** Reads the body, refusing it as soon as it passes the limit; null when refused. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export const TIMED_OUT = Symbol('timed out');

export const timeoutMessage = (ms: number) => `The request did not finish within ${ms} ms; retry shortly`;

/**
 * Runs a request's work against its deadline: TIMED_OUT once the deadline passes (the work's own
 * outcome is then ignored), and the signal given to the work is aborted at that moment, so it can refuse
 * to commit anything the client has been told did not happen.
 */
export async function withDeadline<T>(
  ms: number,
  work: (timedOut: AbortSignal) => T | Promise<T>,
): Promise<T | typeof TIMED_OUT> {
  const timedOut = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      timedOut.abort();
      resolve(TIMED_OUT);
    }, ms);
  });
  try {
    return await Promise.race([work(timedOut.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
