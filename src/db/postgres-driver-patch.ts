/**
 * A fix for postgres.js 3.4.9 (the latest release), applied to the driver's source as it is loaded.
 *
 * When a connection dies while a small write is buffered (a backend terminated, a failover, a proxy
 * dropping connections), the driver either throws from a `setImmediate` callback (`TypeError: Cannot
 * read properties of null (reading 'write')`, uncatchable: the process dies) or keeps a stale write
 * timer, after which that connection never sends again and its queries hang. Upstream:
 * porsager/postgres#1066, #1154, #1208; fixes proposed in #1168, #1176, #1209, not released. The
 * patch settles the buffered queries with CONNECTION_CLOSED (a clean SERVICE_UNAVAILABLE for the
 * client, who retries) and resets the write state when a connection closes. Two more defects the
 * fault tests found on the same path are fixed alongside (see the last two patches).
 *
 * Remove this file (and its call in src/main.ts) once a fixed postgres.js is released; the faults test
 * checks that the installed driver still needs it.
 */
import { register } from 'node:module';

/** [before, after] pairs for node_modules/postgres/src/connection.js; each must match exactly once. */
export const CONNECTION_PATCHES: readonly (readonly [string, string])[] = [
  [
    '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    '  function nextWrite(fn) {\n' +
      '    if (!socket) {\n' +
      '      chunk = nextWriteTimer = null\n' +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      '      return false\n' +
      '    }\n' +
      '    const x = socket.write(chunk, fn)',
  ],
  // terminate()
  [
    '    clearImmediate(nextWriteTimer)\n    if (socket) {',
    '    clearImmediate(nextWriteTimer)\n    nextWriteTimer = chunk = null\n    if (socket) {',
  ],
  // closed()
  [
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n',
    '    incomings = null\n    clearImmediate(nextWriteTimer)\n    nextWriteTimer = chunk = null\n',
  ],
  // connect(): a query of the previous socket (already rejected) must not outlive it. Otherwise the
  // server's refusal of the next connection (e.g. "database is not accepting connections", FATAL) is
  // taken for that query's error, the waiting query is never failed, and the connection retries
  // without backoff for as long as the database refuses.
  [
    '  async function connect() {\n    terminated = false\n',
    '  async function connect() {\n    terminated = false\n    query = errorResponse = null\n',
  ],
  // The array-type lookup after connecting: its failure (the connection killed meanwhile) is already
  // delivered to the waiting query; unhandled, it would also end the process.
  ['        return fetchArrayTypes()\n', '        return fetchArrayTypes().catch(() => {})\n'],
];

/** The patched source, or null when the driver's code is not the one the patch was written for. */
export function patchConnectionSource(source: string): string | null {
  let patched = source;
  for (const [before, after] of CONNECTION_PATCHES) {
    if (patched.split(before).length !== 2) return null;
    patched = patched.replace(before, after);
  }
  return patched;
}

// The loader hook runs on Node's loader thread, so it is plain JavaScript and gets the patches as data.
const HOOK = `
let patches = [];
export function initialize(data) { patches = data.patches; }
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (!/\\/node_modules\\/postgres\\/src\\/connection\\.js$/.test(url)) return result;
  let source = typeof result.source === 'string' ? result.source : new TextDecoder().decode(result.source);
  for (const [before, after] of patches) {
    if (source.split(before).length !== 2) {
      console.warn('postgres.js is not the version src/db/postgres-driver-patch.ts was written for; left unpatched');
      return result;
    }
    source = source.replace(before, after);
  }
  return { ...result, source };
}
`;

/** Registers the hook; call before the first import of postgres. False where Node cannot (< 20.6). */
export function applyPostgresDriverPatch(): boolean {
  if (typeof register !== 'function') return false;
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, import.meta.url, {
    data: { patches: CONNECTION_PATCHES.map(([before, after]) => [before, after]) },
  });
  return true;
}
