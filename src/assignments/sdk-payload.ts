/**
 * GET /v1/sdk/payload: the running experiments as a GrowthBook SDK payload, for clients that evaluate
 * locally (`gb.initSync({ payload })`, then `gb.evalFeature(experimentKey)`). Each experiment is a feature
 * of the same key whose one rule is the experiment (Experiment.growthbook as a feature rule: seed,
 * hashVersion 2, coverage, weights, condition, filters for its layer and holdout, meta with variant ids).
 * QA overrides are server-only (not in the payload).
 *
 * The payload is built once and kept with the configuration cache, which drops it on every configuration
 * change; its ETag answers `If-None-Match` with 304 and no SQL.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import type { ExperimentRow } from '../experiments/repository';
import { type JsonEndpointOptions, jsonEndpoint, type RawAnswer } from '../http/json-endpoint';
import * as layersRepo from '../layers/repository';
import type { ExperimentConfigCache } from './config-cache';
import { growthBookExperiment } from './growthbook';
import type { ExperimentConfig } from './service';

export const SDK_PAYLOAD_PATH = '/v1/sdk/payload';

export interface SdkPayload {
  /** The JSON body, serialised once. */
  body: string;
  /** Strong validator of the body (quoted, as HTTP sends it). */
  etag: string;
}

/** The GrowthBook feature rule of one experiment. */
function featureOf(config: ExperimentConfig) {
  const { active: _active, hashAttribute, ...experiment } = growthBookExperiment(config);
  return {
    defaultValue: null,
    rules: [{ ...experiment, hashAttribute, phase: '0' }],
  };
}

/** Builds the payload from the database: a handful of statements, whatever the number of experiments. */
export async function buildSdkPayload(db: Db): Promise<SdkPayload> {
  const running = await experimentsRepo.getExperimentsByStatus(db, 'running');
  const layerIds = [...new Set(running.map((e) => e.layerId).filter((id): id is string => id !== null))];
  const layers = new Map((await layersRepo.getLayersByIds(db, layerIds)).map((l) => [l.id, l]));
  const holdoutIds = new Set<string>();
  for (const e of running) {
    const id = e.holdoutId ?? (e.layerId ? layers.get(e.layerId)?.holdoutId : null);
    if (id) holdoutIds.add(id);
  }
  const holdouts = new Map<string, ExperimentRow>(
    (await experimentsRepo.getExperimentsByIds(db, [...holdoutIds])).map((h) => [h.id, h]),
  );
  const variants = await experimentsRepo.getVariantsByExperimentIds(db, [
    ...running.map((e) => e.id),
    ...holdouts.keys(),
  ]);
  const variantsOf = (id: string) => variants.filter((v) => v.experimentId === id);
  const features: Record<string, ReturnType<typeof featureOf>> = {};
  for (const experiment of running) {
    const layer = experiment.layerId ? layers.get(experiment.layerId) : undefined;
    const holdoutId = experiment.holdoutId ?? layer?.holdoutId ?? null;
    const holdout = holdoutId ? holdouts.get(holdoutId) : undefined;
    features[experiment.key] = featureOf({
      experiment,
      variants: variantsOf(experiment.id),
      layerSeed: layer?.hashSeed ?? null,
      holdout: holdout ? { experiment: holdout, variants: variantsOf(holdout.id) } : null,
    });
  }
  const body = JSON.stringify({ features, experiments: [] });
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

export interface SdkPayloadEndpointOptions extends JsonEndpointOptions {
  db: Db;
  configCache?: ExperimentConfigCache | null;
}

/** Whether an If-None-Match header names this ETag (a list, weak forms and `*` included). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

export function createSdkPayloadEndpoint(options: SdkPayloadEndpointOptions) {
  const { db, configCache } = options;
  const payload = () =>
    configCache ? configCache.sdkPayload(() => buildSdkPayload(db)) : buildSdkPayload(db);
  return jsonEndpoint(options, {
    path: SDK_PAYLOAD_PATH,
    method: 'GET',
    scope: 'assign',
    async handle(_input, { req }): Promise<RawAnswer> {
      const { body, etag } = await payload();
      const headers = { etag, 'cache-control': 'no-cache' };
      if (matches(req.headers['if-none-match'], etag)) return { status: 304, headers };
      return {
        status: 200,
        headers: {
          ...headers,
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        },
        body,
      };
    },
  });
}
