/**
 * DataLoaders, made fresh for every request (no cross-request caching, so a mutation's effect is seen by
 * the next request). Each batch function issues one statement and returns results in key order.
 */
import DataLoader from 'dataloader';
import { sql } from 'drizzle-orm';
import * as assignmentsRepo from '../assignments/repository';
import type { AssignmentRow } from '../assignments/repository';
import { jsonParam, queryRows, type Db } from '../db/client';
import * as experimentsRepo from '../experiments/repository';
import { getMetricNames } from '../events/stats-repository';
import type { AuditRow, ExperimentRow, VariantMetricsRow, VariantRow } from '../experiments/repository';
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
    variantById: new DataLoader<string, VariantRow | null>(async (ids) =>
      byKey(ids, await experimentsRepo.getVariantsByIds(db, ids), (r) => r.id),
    ),
    metricsByExperimentId: new DataLoader<string, VariantMetricsRow[]>(async (ids) =>
      groupBy(ids, await experimentsRepo.getExperimentMetrics(db, ids), (r) => r.experimentId),
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
      const max = Math.max(...parsed.map((p) => p.limit));
      const rows = await queryRows<Record<string, unknown>>(
        db,
        sql`/* auditByExperiment */
          SELECT * FROM (
            SELECT a.id, a.actor, a.action, a.entity_type, a.entity_id, a.details, a.created_at,
                   row_number() OVER (PARTITION BY a.entity_id ORDER BY a.created_at DESC, a.id DESC) AS rn
              FROM audit_log a
             WHERE a.entity_id IN (SELECT value::uuid FROM json_array_elements_text(${jsonParam(parsed.map((p) => p.id))}))
          ) ranked WHERE rn <= ${max} ORDER BY entity_id, rn`,
      );
      const audit: AuditRow[] = rows.map((r) => ({
        id: String(r.id),
        actor: String(r.actor),
        action: String(r.action),
        entityType: String(r.entity_type),
        entityId: String(r.entity_id),
        details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<
          string,
          unknown
        >,
        createdAt: new Date(r.created_at as string),
      }));
      return parsed.map((p) => audit.filter((a) => a.entityId === p.id).slice(0, p.limit));
    }),
    assignmentsByUserId: new DataLoader<string, AssignmentRow[]>(async (ids) =>
      groupBy(ids, await assignmentsRepo.getAssignmentsByUserIds(db, ids), (r) => r.userId),
    ),
    /** Key: `${experimentId}\u0000${userId}`. */
    assignmentByPair: new DataLoader<string, AssignmentRow | null>(async (keys) => {
      const pairs = keys.map((k) => {
        const [experimentId, userId] = k.split('\u0000');
        return { experimentId, userId };
      });
      const rows = await assignmentsRepo.getAssignmentsByPairs(db, pairs);
      return byKey(keys, rows, (r) => `${r.experimentId}\u0000${r.userId}`);
    }),
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
