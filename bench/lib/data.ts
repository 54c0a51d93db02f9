/**
 * Generated data: experiments created through the API, assignments and events bulk-loaded with COPY
 * (text format) straight into the project's tables.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bucket } from '../../src/assignments/bucketing';
import type { Sql } from './database';
import { expectType, graphql } from './graphql';

/** Deterministic PRNG (mulberry32): the same seed gives the same data set. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Increasing UUIDs (random 32-bit prefix + counter), so bulk loads append to the primary-key and
 * event-id indexes instead of writing all over them. Valid `uuid` values; no version semantics.
 */
export function sequentialUuids(): () => string {
  const prefix = randomBytes(4).toString('hex');
  let n = 0;
  return () => {
    const c = (n++).toString(16).padStart(24, '0');
    return `${prefix}-${c.slice(0, 4)}-${c.slice(4, 8)}-${c.slice(8, 12)}-${c.slice(12)}`;
  };
}

export interface BenchVariant {
  id: string;
  name: string;
  weight: number;
}

export interface BenchExperiment {
  id: string;
  key: string;
  variants: BenchVariant[];
}

const CREATE = `mutation Create($input: CreateExperimentInput!) {
  createExperiment(input: $input) {
    __typename
    ... on Experiment { id key variants { id name weight } }
    ... on Error { code message }
  }
}`;
const START = `mutation Start($id: ID!) {
  startExperiment(id: $id) { __typename ... on Experiment { status } ... on Error { code message } }
}`;

/** Creates and starts an experiment through the API (control + treatments, equal weights). */
export async function createRunningExperiment(
  graphqlUrl: string,
  key: string,
  variantCount = 2,
): Promise<BenchExperiment> {
  const variants = Array.from({ length: variantCount }, (_, i) => ({
    name: i === 0 ? 'control' : `treatment-${i}`,
    isControl: i === 0,
    weight: 1,
    config: { strategy: i === 0 ? 'baseline' : `model-${i}` },
  }));
  const created = await graphql<{ createExperiment: any }>(graphqlUrl, CREATE, {
    input: { key, name: `Bench ${key}`, description: 'created by npm run bench', variants },
  });
  const experiment = expectType(created.createExperiment, 'Experiment', `createExperiment ${key}`);
  const started = await graphql<{ startExperiment: any }>(graphqlUrl, START, { id: experiment.id });
  expectType(started.startExperiment, 'Experiment', `startExperiment ${key}`);
  return { id: experiment.id, key: experiment.key, variants: experiment.variants };
}

/** The variant the service itself would give a new user (same bucketing code). */
export function variantFor(experiment: BenchExperiment, userId: string): BenchVariant {
  const index = bucket({
    seed: experiment.key,
    userId,
    trafficAllocation: 1,
    weights: experiment.variants.map((v) => v.weight),
  });
  if (index < 0) throw new Error(`user ${userId} fell outside experiment ${experiment.key}`);
  return experiment.variants[index];
}

/** COPY … FROM STDIN (text format) from a generator of lines (each ending in \n). */
export async function copyLines(sql: Sql, copyStatement: string, lines: Iterable<string>): Promise<void> {
  const writable = await sql.unsafe(copyStatement).writable();
  await pipeline(Readable.from(batchLines(lines)), writable);
}

/** Joins lines into ~256 KB chunks: one write per chunk, not per row. */
function* batchLines(lines: Iterable<string>): Generator<string> {
  let chunk = '';
  for (const line of lines) {
    chunk += line;
    if (chunk.length >= 256 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/** Stores assignments for users (as the service would bucket them) with one COPY. */
export async function assignUsers(
  sql: Sql,
  experiment: BenchExperiment,
  userIds: readonly string[],
): Promise<Map<string, string>> {
  const assigned = new Map<string, string>();
  function* lines() {
    for (const userId of userIds) {
      const variant = variantFor(experiment, userId);
      assigned.set(userId, variant.id);
      yield `${experiment.id}\t${userId}\t${variant.id}\n`;
    }
  }
  await copyLines(
    sql,
    'COPY experiment_assignments (experiment_id, user_id, variant_id) FROM STDIN',
    lines(),
  );
  return assigned;
}
