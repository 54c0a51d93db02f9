/**
 * Recording exposures and conversions. An event names the experiment and the unit; its variant is the
 * unit's stored assignment. A client that evaluated locally (GrowthBook SDK) may pass the variant: with
 * no stored assignment the event also records it, and a different stored assignment rejects the event,
 * which keeps units exposed to several variants out of the numbers.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { LIMITS } from '../config';
import { NotAssignedError, NotFoundError, ValidationError, VariantMismatchError } from '../common/errors';
import { finiteNumber, jsonObject, parse, slug, userId, uuid } from '../common/validation';
import type { Database, Db } from '../db/client';
import * as assignmentsRepo from '../assignments/repository';
import * as experimentsRepo from '../experiments/repository';
import type { ExperimentRow } from '../experiments/repository';
import * as repo from './repository';

/** The metric name under which exposures appear in views, summaries and recordMetric. */
export const EXPOSURE_METRIC = 'exposure';

const common = {
  userId,
  variantId: uuid('variantId').nullish(),
  eventId: uuid('eventId').nullish(),
  occurredAt: z
    .date({ error: 'occurredAt must be an ISO 8601 date-time' })
    .refine((d) => !Number.isNaN(d.getTime()), 'occurredAt must be a valid date-time')
    .refine(
      (d) => d.getTime() <= Date.now() + 24 * 3600 * 1000,
      'occurredAt must not be more than a day in the future',
    )
    .nullish(),
  metadata: jsonObject('metadata', LIMITS.metadataMaxBytes).nullish(),
};
const metricName = slug('metricName').refine((v) => v !== EXPOSURE_METRIC, {
  message: `metricName "${EXPOSURE_METRIC}" is reserved: record exposures with recordExposure`,
});
const value = finiteNumber('value');

const exposureInput = z.object({
  experimentKey: z.string().min(1, 'experimentKey must not be empty').max(256),
  ...common,
});
const conversionInput = exposureInput.extend({ metricName, value: value.nullish() });
const metricInput = z.object({
  experimentId: uuid('experimentId'),
  variantId: uuid('variantId').nullish(),
  userId,
  metricName: slug('metricName'),
  value: value.nullish(),
  eventId: uuid('eventId').nullish(),
  occurredAt: common.occurredAt,
  metadata: common.metadata,
});

export type ExposureInput = z.input<typeof exposureInput>;
export type ConversionInput = z.input<typeof conversionInput>;
export type MetricInput = z.input<typeof metricInput>;

export interface RecordEventResult {
  eventId: string;
  duplicate: boolean;
  experimentId: string;
  variantId: string;
}

interface ResolvedEvent {
  experiment: ExperimentRow;
  userId: string;
  variantId?: string | null;
  eventId?: string | null;
  occurredAt?: Date | null;
  metadata?: Record<string, unknown> | null;
}

/** The variant an event counts for, recording the assignment when a locally-evaluating client names it. */
async function resolveVariant(tx: Db, event: ResolvedEvent): Promise<string> {
  const { experiment, userId, variantId } = event;
  const existing = await assignmentsRepo.getAssignment(tx, experiment.id, userId);
  if (existing) {
    if (variantId && variantId !== existing.variantId)
      throw new VariantMismatchError(existing.variantId, variantId);
    return existing.variantId;
  }
  if (!variantId) throw new NotAssignedError(experiment.key, userId);
  const [variant] = await experimentsRepo.getVariantsByIds(tx, [variantId]);
  if (!variant || variant.experimentId !== experiment.id) {
    throw ValidationError.field(
      ['input', 'variantId'],
      `variant ${variantId} does not belong to experiment ${experiment.key}`,
    );
  }
  if (experiment.status !== 'running') {
    throw ValidationError.field(
      ['input', 'experimentKey'],
      `experiment ${experiment.key} is ${experiment.status}: only a running experiment enrolls new users`,
    );
  }
  const { assignment } = await assignmentsRepo.recordAssignment(tx, {
    experimentId: experiment.id,
    userId,
    variantId,
  });
  // Lost a race against another first event with a different variant: same rule as a stored one.
  if (assignment.variantId !== variantId) throw new VariantMismatchError(assignment.variantId, variantId);
  return variantId;
}

async function record(
  db: Database,
  event: ResolvedEvent,
  kind: 'exposure' | 'conversion',
  extra: { metricName?: string; value?: number } = {},
): Promise<RecordEventResult> {
  return db.transaction(async (tx) => {
    const variantId = await resolveVariant(tx, event);
    const eventId = event.eventId ?? randomUUID();
    const { duplicate } = await repo.insertEvent(tx, kind, {
      experimentId: event.experiment.id,
      variantId,
      userId: event.userId,
      eventId,
      occurredAt: event.occurredAt ?? new Date(),
      metadata: event.metadata ?? {},
      ...(kind === 'conversion' ? { metricName: extra.metricName!, value: extra.value ?? 1 } : {}),
    });
    return { eventId, duplicate, experimentId: event.experiment.id, variantId };
  });
}

async function experimentByKey(db: Db, key: string): Promise<ExperimentRow> {
  const experiment = await experimentsRepo.getExperiment(db, { key });
  if (!experiment) throw new NotFoundError('Experiment', key);
  return experiment;
}

export async function recordExposure(db: Database, raw: ExposureInput): Promise<RecordEventResult> {
  const input = parse(exposureInput, raw, ['input']);
  return record(db, { ...input, experiment: await experimentByKey(db, input.experimentKey) }, 'exposure');
}

export async function recordConversion(db: Database, raw: ConversionInput): Promise<RecordEventResult> {
  const input = parse(conversionInput, raw, ['input']);
  return record(db, { ...input, experiment: await experimentByKey(db, input.experimentKey) }, 'conversion', {
    metricName: input.metricName,
    value: input.value ?? 1,
  });
}

/** The seed system's signature: `exposure` goes to exposures, any other metric to conversions. */
export async function recordMetric(db: Database, raw: MetricInput): Promise<RecordEventResult> {
  const input = parse(metricInput, raw, ['input']);
  const experiment = await experimentsRepo.getExperiment(db, { id: input.experimentId });
  if (!experiment) throw new NotFoundError('Experiment', input.experimentId);
  if (input.metricName === EXPOSURE_METRIC) return record(db, { ...input, experiment }, 'exposure');
  return record(db, { ...input, experiment }, 'conversion', {
    metricName: input.metricName,
    value: input.value ?? 1,
  });
}
