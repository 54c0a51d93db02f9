/**
 * Run by tests/system/live-results.test.ts in a process of its own (Jest's module sandbox keeps objects
 * alive that plain Node frees, so garbage collection is judged outside it): opens DATABASE_URL, serves
 * GraphQL in process, opens and drops many subscriptions of EXPERIMENT_KEY (each gets its first push and
 * one after an event), then prints what is left: requests still reachable, live-update subscribers and
 * the heap's growth.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { securityConfigFromEnv } from '../../../src/config';
import { openDatabase } from '../../../src/db/client';
import { recordEvents } from '../../../src/events/service';
import { getExperimentsByKeys, getVariants } from '../../../src/experiments/repository';
import { createApp } from '../../../src/http/app';
import { LiveUpdates } from '../../../src/live/updates';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const handle = await openDatabase({
  driver: 'postgres',
  url: process.env.DATABASE_URL!,
  poolSize: 4,
  statementTimeoutMs: 30_000,
  connectTimeoutSeconds: 10,
});
const live = new LiveUpdates(0);
await live.start(handle);
const app = createApp({
  db: handle.db,
  logger: pino({ level: 'silent' }),
  security: securityConfigFromEnv({}),
  live,
});
const experimentKey = process.env.EXPERIMENT_KEY!;
const [experiment] = await getExperimentsByKeys(handle.db, [experimentKey]);
const [variant] = await getVariants(handle.db, experiment.id);
const body = JSON.stringify({
  query: `subscription L($key: String!) { experimentResults(experimentKey: $key, metric: "conversion") { variants { units } } }`,
  variables: { key: experimentKey },
});

const refs: WeakRef<Request>[] = [];
let n = 0;
/** One subscriber: its first push, one push after an event, then it disconnects. */
async function once(): Promise<void> {
  const request = new Request('http://localhost/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body,
  });
  refs.push(new WeakRef(request));
  const response = await app.fetch(request);
  const reader = response.body!.getReader();
  await reader.read();
  await recordEvents(handle.db, [
    {
      kind: 'EXPOSURE',
      experimentKey,
      userId: `gc-${n++}`,
      variantId: variant.id,
      eventId: crypto.randomUUID(),
    },
  ]);
  await reader.read();
  await reader.cancel();
}

async function settle(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    gc();
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

const rounds = Number(process.env.ROUNDS ?? 200);
for (let i = 0; i < 20; i++) await once();
const heapBefore = await settle();
refs.length = 0;
for (let i = 0; i < rounds; i++) await once();
// Disconnections reach the server within milliseconds; bounded so a leak is reported, not waited for.
for (let i = 0; i < 250 && live.stats().subscribers > 0; i++) await sleep(20);
const heapAfter = await settle();
const alive = refs.filter((r) => r.deref() !== undefined).length;
console.log(JSON.stringify({ rounds, alive, stats: live.stats(), heapGrowthBytes: heapAfter - heapBefore }));
await live.stop();
await handle.close();
