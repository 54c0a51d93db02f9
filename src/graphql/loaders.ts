/**
 * DataLoaders, made fresh for every request (no cross-request caching, so a mutation's effect is seen by
 * the next request). Each batch function issues one statement and returns results in key order.
 */
import DataLoader from 'dataloader';
import { getExperimentMetrics, getMetricNames, type VariantMetricsRow } from '../aggregates/read';
import * as assignmentsRepo from '../assignments/repository';
import type { AssignmentPair, AssignmentRow } from '../assignments/repository';
import type { Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import type { AuditRow, ExperimentRow, OverrideRow, VariantRow } from '../experiments/repository';
import * as layersRepo from '../layers/repository';
import type { LayerRow } from '../layers/repository';
import * as usersRepo from '../users/repository';
import type { UserRow } from '../users/repository';

function byKey<K, V>(keys: readonly K[], rows: V[], keyOf: (row: V) => K): (V | null)[] {
  const map = new Map<K, V>();
  for (const row of rows) map.set(keyOf(row), row);
  return keys.map((k) => map.get(k) ?? null);
}

function groupBy<K, V>(keys: readonly K[], rows: V[], keyOf: (row: V) => K): V[][] {
  const map = new Map<K, V[]>();
  for (const row of rows) {
    const k = keyOf(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return keys.map((k) => map.get(k) ?? []);
}

const pairKey = (p: AssignmentPair) => assignmentsRepo.assignmentKey(p.experimentId, p.userId);

export function createLoaders(db: Db) {
  const experimentById = new DataLoader<string, ExperimentRow | null>(async (ids) =>
    byKey(ids, await experimentsRepo.getExperimentsByIds(db, ids), (r) => r.id),
  );
  const experimentByKey = new DataLoader<string, ExperimentRow | null>(async (keys) => {
    const rows = await experimentsRepo.getExperimentsByKeys(db, keys);
    for (const row of rows) experimentById.prime(row.id, row);
    return byKey(keys, rows, (r) => r.key);
  });
  return {
    experimentById,
    experimentByKey,
    variantsByExperimentId: new DataLoader<string, VariantRow[]>(async (ids) =>
      groupBy(ids, await experimentsRepo.getVariantsByExperimentIds(db, ids), (r) => r.experimentId),
    ),
    layerById: new DataLoader<string, LayerRow | null>(async (ids) =>
      byKey(ids, await layersRepo.getLayersByIds(db, ids), (r) => r.id),
    ),
    experimentsByLayerId: new DataLoader<string, ExperimentRow[]>(async (ids) =>
      groupBy(ids, await layersRepo.getExperimentsByLayerIds(db, ids), (r) => r.layerId!),
    ),
    overridesByExperimentId: new DataLoader<string, OverrideRow[]>(async (ids) =>
      groupBy(ids, await experimentsRepo.getOverridesByExperimentIds(db, ids), (r) => r.experimentId),
    ),
    variantById: new DataLoader<string, VariantRow | null>(async (ids) =>
      byKey(ids, await experimentsRepo.getVariantsByIds(db, ids), (r) => r.id),
    ),
    metricsByExperimentId: new DataLoader<string, VariantMetricsRow[]>(async (ids) =>
      groupBy(ids, await getExperimentMetrics(db, ids), (r) => r.experimentId),
    ),
    assignmentCountByExperimentId: new DataLoader<string, number>(async (ids) => {
      const counts = await experimentsRepo.countAssignmentsByExperimentIds(db, ids);
      return ids.map((id) => counts.get(id) ?? 0);
    }),
    /** Key: `${experimentId}:${limit}`; newest entries first. */
    auditByExperiment: new DataLoader<string, AuditRow[]>(async (keys) => {
      const parsed = keys.map((k) => {
        const [id, limit] = k.split(':');
        return { id, limit: Number(limit) };
      });
      const rows = await experimentsRepo.listAuditByEntityIds(
        db,
        [...new Set(parsed.map((p) => p.id))],
        Math.max(...parsed.map((p) => p.limit)),
      );
      return parsed.map((p) => rows.filter((a) => a.entityId === p.id).slice(0, p.limit));
    }),
    assignmentsByUserId: new DataLoader<string, AssignmentRow[]>(async (ids) =>
      groupBy(ids, await assignmentsRepo.getAssignmentsByUserIds(db, ids), (r) => r.userId),
    ),
    assignmentByPair: new DataLoader<AssignmentPair, AssignmentRow | null, string>(
      async (pairs) => {
        const rows = await assignmentsRepo.getAssignmentsByPairs(db, pairs);
        return byKey(pairs.map(pairKey), rows, pairKey);
      },
      { cacheKeyFn: pairKey },
    ),
    metricNamesByExperimentId: new DataLoader<string, string[]>(async (ids) => {
      const names = await getMetricNames(db, ids);
      return ids.map((id) => names.get(id) ?? []);
    }),
    userById: new DataLoader<string, UserRow | null>(async (ids) =>
      byKey(ids, await usersRepo.getUsersByIds(db, ids), (r) => r.id),
    ),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
