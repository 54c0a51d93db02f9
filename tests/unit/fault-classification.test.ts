/**
 * How the service names a failure it did not expect: the database being unreachable or restarting is
 * SERVICE_UNAVAILABLE (503, retry), a statement or lock timeout is TIMEOUT (503, retry), anything else is
 * a bug (INTERNAL_SERVER_ERROR, masked). The driver's own words never reach the client. The faults
 * themselves, provoked on a real server, are in tests/system/faults.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { classifyFault } from '../../src/http/faults';

describe('fault classification', () => {
  const pg = (code: string, severity = 'ERROR') =>
    Object.assign(new Error('driver words'), { code, severity });

  it.each([
    [
      'connection refused',
      'SERVICE_UNAVAILABLE',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    ],
    [
      'connection reset',
      'SERVICE_UNAVAILABLE',
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    ],
    [
      'postgres.js closed',
      'SERVICE_UNAVAILABLE',
      Object.assign(new Error('closed'), { code: 'CONNECTION_CLOSED' }),
    ],
    [
      'connect timeout',
      'SERVICE_UNAVAILABLE',
      Object.assign(new Error('timeout'), { code: 'CONNECT_TIMEOUT' }),
    ],
    ['backend terminated (57P01)', 'SERVICE_UNAVAILABLE', pg('57P01', 'FATAL')],
    ['database not accepting connections (55000, FATAL)', 'SERVICE_UNAVAILABLE', pg('55000', 'FATAL')],
    ['too many connections (53300, FATAL)', 'SERVICE_UNAVAILABLE', pg('53300', 'FATAL')],
    [
      'wrapped in a cause',
      'SERVICE_UNAVAILABLE',
      Object.assign(new Error('query failed'), { cause: pg('57P01', 'FATAL') }),
    ],
    ['statement_timeout (57014)', 'TIMEOUT', pg('57014')],
    ['lock_timeout (55P03)', 'TIMEOUT', pg('55P03')],
    ['a bug: undefined column (42703)', 'INTERNAL_SERVER_ERROR', pg('42703')],
    [
      'a bug: a TypeError',
      'INTERNAL_SERVER_ERROR',
      new TypeError("Cannot read properties of undefined (reading 'id')"),
    ],
  ])('%s → %s', (_what, code, error) => {
    const fault = classifyFault(error);
    expect(fault.code).toBe(code);
    expect(fault.message).not.toContain('driver words');
    expect(fault.status).toBe(code === 'INTERNAL_SERVER_ERROR' ? undefined : 503);
  });
});
