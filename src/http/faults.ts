/**
 * Classifies unexpected errors for the client: database unavailable or timed out (retry later) versus
 * anything else (a bug). The message never carries SQL, a stack or a driver's words.
 */
import { errorChain, pgErrorCode } from '../common/errors';

export interface Fault {
  code: 'SERVICE_UNAVAILABLE' | 'TIMEOUT' | 'INTERNAL_SERVER_ERROR';
  message: string;
  status?: number;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

export function classifyFault(err: unknown): Fault {
  for (const e of errorChain(err)) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    // A FATAL (or PANIC) server error ends the session: refused at connect (database not accepting
    // connections, too many clients, starting up) or killed; whatever the SQLSTATE, the database is away.
    if ((code && CONNECTION_CODES.has(code)) || e.severity === 'FATAL' || e.severity === 'PANIC') {
      return {
        code: 'SERVICE_UNAVAILABLE',
        message: 'The database is unavailable; retry shortly.',
        status: 503,
      };
    }
  }
  const pg = pgErrorCode(err);
  // 57014 query_canceled (statement_timeout); 55P03 lock_not_available.
  if (pg === '57014' || pg === '55P03') {
    return {
      code: 'TIMEOUT',
      message: 'The operation took too long and was cancelled; retry shortly.',
      status: 503,
    };
  }
  // 57P01..57P03 admin shutdown / crash shutdown / cannot connect now; 08xxx connection exceptions.
  if (pg && (/^57P0[1-3]$/.test(pg) || pg.startsWith('08'))) {
    return {
      code: 'SERVICE_UNAVAILABLE',
      message: 'The database is unavailable; retry shortly.',
      status: 503,
    };
  }
  return { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' };
}

/**
 * What a log line keeps of an unexpected error. A failed query (Drizzle's DrizzleQueryError) carries its
 * bind parameters in its message and fields: API key hashes, user ids, event metadata. The line keeps
 * the driver's error, the SQL text and the stack frames instead.
 */
export function errorForLog(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error) || !('query' in err) || !('params' in err)) return { err };
  return {
    err: err.cause instanceof Error ? err.cause : { type: err.name, message: 'Failed query' },
    query: String(err.query),
    at: (err.stack ?? '')
      .split('\n')
      .filter((line) => /^\s+at /.test(line))
      .map((line) => line.trim()),
  };
}
