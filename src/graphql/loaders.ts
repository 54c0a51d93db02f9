/**
 * DataLoaders, made fresh for every request (no cross-request caching, so a mutation's effect is seen by
 * the next request). Each batch function issues one statement and returns results in key order. Each is
 * made on first use: a request touches two or three of them, and a read planned as one statement
 * (src/experiments/graphql.ts) answers its nested fields from its own rows, without them.
 */
import DataLoader from 'dataloader';
import { getExperimentMetrics, getMetricNames, type VariantMetricsRow } from '../aggregates/read';
import * as assignmentsRepo from '../assignments/repository';
import type { AssignmentPair, AssignmentRow } from '../assignments/repository';
import type { Db } from '../db/client';
import { getMetricSettingsByExperimentIds, type MetricSettingRow } from '../experiments/metric-settings';
import { getPhasesByExperimentIds, type PhaseRow } from '../experiments/phases';
import * as experimentsRepo from '../experiments/repository';
import type {
  AuditRow,
  ExperimentInclude,
  ExperimentRow,
  ExperimentWith,
  OverrideRow,
  VariantRow,
} from '../experiments/repository';
import * as layersRepo from '../layers/repository';
import type { LayerRow } from '../layers/repository';
import * as metricsRepo from '../metrics/repository';
import type { MetricRoleRow, MetricRow } from '../metrics/repository';
import { getMonitorsByExperimentIds, type MonitorRow } from '../monitoring/repository';
import { getSchedulesByExperimentIds, type ScheduleRow } from '../scheduling/repository';
import * as usersRepo from '../users/repository';
import type { UserRow } from '../users/repository';
import * as banditsRepo from '../bandits/repository';
import type { BanditRow, BanditUpdateRow } from '../bandits/repository';
import { LIMITS } from '../config';

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

/** An experiment by id or key, with what to read with it in the same statement. */
export interface ExperimentWithKey {
  ref: { id: string } | { key: string };
  include: ExperimentInclude;
}

/** The lists and the columns: a cached row holds the columns its lookup asked for, no more. */
const includeKey = (include: ExperimentInclude) =>
  `${experimentsRepo.includedListsKey(include)}:${include.columns ?? '*'}:${include.variantColumns ?? '*'}`;
/** Columns two lookups need together (absent: every column). */
const unionColumns = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : a | b;
const refKey = (ref: ExperimentWithKey['ref']) => ('id' in ref ? `id:${ref.id}` : `key:${ref.key}`);

/** How to make each loader; createLoaders makes one the first time a request reads it. */
const FACTORIES = {
  experimentById: (db: Db) =>
    new DataLoader<string, ExperimentRow | null>(async (ids) =>
      byKey(ids, await experimentsRepo.getExperimentsByIds(db, ids), (r) => r.id),
    ),
  experimentByKey: (db: Db, self: { experimentById: DataLoader<string, ExperimentRow | null> }) =>
    new DataLoader<string, ExperimentRow | null>(async (keys) => {
      const rows = await experimentsRepo.getExperimentsByKeys(db, keys);
      for (const row of rows) self.experimentById.prime(row.id, row);
      return byKey(keys, rows, (r) => r.key);
    }),
  /**
   * One statement per distinct set of lists among the batched lookups (usually one), reading the
   * columns all of its lookups need.
   */
  experimentWith: (db: Db) =>
    new DataLoader<ExperimentWithKey, ExperimentWith | null, string>(
      async (lookups) => {
        const plans = new Map<string, { include: ExperimentInclude; ids: string[]; keys: string[] }>();
        for (const { ref, include } of lookups) {
          const k = experimentsRepo.includedListsKey(include);
          let plan = plans.get(k);
          if (!plan) {
            plan = { include: { ...include }, ids: [], keys: [] };
            plans.set(k, plan);
          } else {
            plan.include.columns = unionColumns(plan.include.columns, include.columns);
            plan.include.variantColumns = unionColumns(plan.include.variantColumns, include.variantColumns);
          }
          if ('id' in ref) plan.ids.push(ref.id);
          else plan.keys.push(ref.key);
        }
        const found = new Map<string, ExperimentWith>();
        for (const [k, plan] of plans) {
          // Lookups by key are matched by the rows' keys, so the key is read whatever was selected.
          if (plan.keys.length && plan.include.columns !== undefined)
            plan.include.columns |= experimentsRepo.experimentColumnMask(['key']);
          for (const row of await experimentsRepo.getExperimentsWith(db, plan, plan.include)) {
            found.set(`${k}|id:${row.experiment.id}`, row);
            found.set(`${k}|key:${row.experiment.key}`, row);
          }
        }
        return lookups.map(
          (l) => found.get(`${experimentsRepo.includedListsKey(l.include)}|${refKey(l.ref)}`) ?? null,
        );
      },
      { cacheKeyFn: (l) => `${includeKey(l.include)}|${refKey(l.ref)}` },
    ),
  variantsByExperimentId: (db: Db) =>
    new DataLoader<string, VariantRow[]>(async (ids) =>
      groupBy(ids, await experimentsRepo.getVariantsByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  layerById: (db: Db) =>
    new DataLoader<string, LayerRow | null>(async (ids) =>
      byKey(ids, await layersRepo.getLayersByIds(db, ids), (r) => r.id),
    ),
  experimentsByLayerId: (db: Db) =>
    new DataLoader<string, ExperimentRow[]>(async (ids) =>
      groupBy(ids, await layersRepo.getExperimentsByLayerIds(db, ids), (r) => r.layerId!),
    ),
  overridesByExperimentId: (db: Db) =>
    new DataLoader<string, OverrideRow[]>(async (ids) =>
      groupBy(ids, await experimentsRepo.getOverridesByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  variantById: (db: Db) =>
    new DataLoader<string, VariantRow | null>(async (ids) =>
      byKey(ids, await experimentsRepo.getVariantsByIds(db, ids), (r) => r.id),
    ),
  phasesByExperimentId: (db: Db) =>
    new DataLoader<string, PhaseRow[]>(async (ids) =>
      groupBy(ids, await getPhasesByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  metricSettingsByExperimentId: (db: Db) =>
    new DataLoader<string, MetricSettingRow[]>(async (ids) =>
      groupBy(ids, await getMetricSettingsByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  metricById: (db: Db) =>
    new DataLoader<string, MetricRow | null>(async (ids) =>
      byKey(ids, await metricsRepo.getMetricsByIds(db, ids), (r) => r.id),
    ),
  metricByKey: (db: Db) =>
    new DataLoader<string, MetricRow | null>(async (keys) =>
      byKey(keys, await metricsRepo.getMetricsByKeys(db, keys), (r) => r.key),
    ),
  metricRolesByExperimentId: (db: Db) =>
    new DataLoader<string, MetricRoleRow[]>(async (ids) =>
      groupBy(ids, await metricsRepo.getMetricRolesByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  metricsByExperimentId: (db: Db) =>
    new DataLoader<string, VariantMetricsRow[]>(async (ids) =>
      groupBy(ids, await getExperimentMetrics(db, ids), (r) => r.experimentId),
    ),
  assignmentCountByExperimentId: (db: Db) =>
    new DataLoader<string, number>(async (ids) => {
      const counts = await experimentsRepo.countAssignmentsByExperimentIds(db, ids);
      return ids.map((id) => counts.get(id) ?? 0);
    }),
  /** Key: `${experimentId}:${limit}`; newest entries first. */
  auditByExperiment: (db: Db) =>
    new DataLoader<string, AuditRow[]>(async (keys) => {
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
  assignmentsByUserId: (db: Db) =>
    new DataLoader<string, AssignmentRow[]>(async (ids) =>
      groupBy(ids, await assignmentsRepo.getAssignmentsByUserIds(db, ids), (r) => r.userId),
    ),
  assignmentByPair: (db: Db) =>
    new DataLoader<AssignmentPair, AssignmentRow | null, string>(
      async (pairs) => {
        const rows = await assignmentsRepo.getAssignmentsByPairs(db, pairs);
        return byKey(pairs.map(pairKey), rows, pairKey);
      },
      { cacheKeyFn: pairKey },
    ),
  metricNamesByExperimentId: (db: Db) =>
    new DataLoader<string, string[]>(async (ids) => {
      const names = await getMetricNames(db, ids);
      return ids.map((id) => names.get(id) ?? []);
    }),
  scheduleByExperimentId: (db: Db) =>
    new DataLoader<string, ScheduleRow | null>(async (ids) =>
      byKey(ids, await getSchedulesByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  monitorByExperimentId: (db: Db) =>
    new DataLoader<string, MonitorRow | null>(async (ids) =>
      byKey(ids, await getMonitorsByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  userById: (db: Db) =>
    new DataLoader<string, UserRow | null>(async (ids) =>
      byKey(ids, await usersRepo.getUsersByIds(db, ids), (r) => r.id),
    ),
  banditByExperimentId: (db: Db) =>
    new DataLoader<string, BanditRow | null>(async (ids) =>
      byKey(ids, await banditsRepo.getBanditsByExperimentIds(db, ids), (r) => r.experimentId),
    ),
  /** Newest first, at most LIMITS.bandit.maxHistory per bandit. */
  banditUpdatesByExperimentId: (db: Db) =>
    new DataLoader<string, BanditUpdateRow[]>(async (ids) =>
      groupBy(
        ids,
        await banditsRepo.getBanditUpdatesByExperimentIds(db, ids, LIMITS.bandit.maxHistory),
        (r) => r.experimentId,
      ),
    ),
};

export type Loaders = { [K in keyof typeof FACTORIES]: ReturnType<(typeof FACTORIES)[K]> };

/**
 * The per-request loaders: getters on a shared prototype make each loader on first read and keep it on
 * the instance, so a request pays for the two or three it uses, not for all of them.
 */
class RequestLoaders {
  constructor(readonly db: Db) {}
}
for (const name of Object.keys(FACTORIES) as (keyof typeof FACTORIES)[]) {
  Object.defineProperty(RequestLoaders.prototype, name, {
    get(this: RequestLoaders) {
      const loader = FACTORIES[name](this.db, this as unknown as Loaders);
      Object.defineProperty(this, name, { value: loader, enumerable: true });
      return loader;
    },
  });
}

export function createLoaders(db: Db): Loaders {
  return new RequestLoaders(db) as unknown as Loaders;
}
