/**
 * Classifies unexpected errors for the client: database unavailable or timed out (retry later) versus
 * anything else (a bug). The message never carries SQL, a stack or a driver's words.
 */
import { errorChain, pgErrorCode } from '../common/errors';

export interface Fault {
  code: 'SERVICE_UNAVAILABLE' | 'TIMEOUT' | 'INTERNAL_SERVER_ERROR';
  message: string;
  status?: number;
  /** The SQLSTATE when the database cancelled the statement (57014: statement_timeout). */
  sqlstate?: string;
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
      sqlstate: pg,
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

/** postgres.js and PGlite name a driver error's fields differently; these name no data. */
const DRIVER_FIELDS: Record<string, readonly string[]> = {
  code: ['code'],
  severity: ['severity'],
  routine: ['routine'],
  schema: ['schema_name', 'schema'],
  table: ['table_name', 'table'],
  column: ['column_name', 'column'],
  dataType: ['data_type_name', 'dataType'],
  constraint: ['constraint_name', 'constraint'],
};

const isDriverError = (e: unknown): e is Error & Record<string, unknown> =>
  e instanceof Error && typeof (e as { severity?: unknown }).severity === 'string';

/**
 * PostgreSQL quotes the offending value in many messages (`invalid input syntax for type uuid: "…"`,
 * `value "…" is out of range`) and shows bytes as hex (`invalid byte sequence … 0x00`).
 */
const withoutValues = (message: string) =>
  message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/0x[0-9a-f]{2}(?: 0x[0-9a-f]{2})*/gi, '0x…');

const stackFrames = (err: Error) =>
  (err.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .map((line) => line.trim());

/**
 * A driver error without the parts that can hold a statement's parameters: `detail` (`Key (user_id)=(…)`),
 * `where` (`JSON data, line 1: …`), `hint`, `internal_query`, and quoted values in the message.
 */
function driverErrorForLog(err: Error & Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = { type: err.name, message: withoutValues(err.message) };
  for (const [name, sources] of Object.entries(DRIVER_FIELDS)) {
    const source = sources.find((s) => err[s] !== undefined && err[s] !== null);
    if (source) kept[name] = err[source];
  }
  return kept;
}

/**
 * What a log line keeps of an unexpected error. A failed query (Drizzle's DrizzleQueryError) carries its
 * bind parameters in its message and fields: API key hashes, user ids, event metadata; the driver's
 * own error can quote them too. The line keeps the driver's error without them, the SQL text and the
 * stack frames instead.
 */
export function errorForLog(err: unknown): Record<string, unknown> {
  if (isDriverError(err)) return { err: driverErrorForLog(err), at: stackFrames(err) };
  if (!(err instanceof Error) || !('query' in err) || !('params' in err)) return { err };
  const cause = err.cause;
  return {
    err: isDriverError(cause)
      ? driverErrorForLog(cause)
      : cause instanceof Error
        ? {
            type: cause.name,
            message: withoutValues(cause.message),
            code: (cause as { code?: unknown }).code,
          }
        : { type: err.name, message: 'Failed query' },
    query: String(err.query),
    at: stackFrames(err),
  };
}
