/** SQL for layers and the experiments in them. Database first, plain rows back. */
import { and, asc, eq, inArray, isNull, ne } from 'drizzle-orm';
import type { Db } from '../db/client';
import { experiments, layers } from '../db/schema';
import type { ExperimentRow } from '../experiments/repository';

export type LayerRow = typeof layers.$inferSelect;

export interface CreateLayerParams {
  key: string;
  name: string;
  description?: string | null;
  hashSeed: string;
}

export interface UpdateLayerParams {
  name?: string;
  description?: string | null;
  holdoutId?: string | null;
}

export async function createLayer(db: Db, params: CreateLayerParams): Promise<LayerRow> {
  const [row] = await db
    .insert(layers)
    .values({ ...params, description: params.description ?? null })
    .returning();
  return row;
}

export async function getLayer(db: Db, ref: { id: string } | { key: string }): Promise<LayerRow | null> {
  const [row] = await db
    .select()
    .from(layers)
    .where('id' in ref ? eq(layers.id, ref.id) : eq(layers.key, ref.key));
  return row ?? null;
}

/** Row-locks a layer: membership changes of its experiments serialise on it (no two overlap). */
export async function lockLayer(db: Db, id: string): Promise<LayerRow | null> {
  const [row] = await db.select().from(layers).where(eq(layers.id, id)).for('update');
  return row ?? null;
}

export async function updateLayer(
  db: Db,
  id: string,
  patch: UpdateLayerParams & { archivedAt?: Date },
): Promise<LayerRow | null> {
  const [row] = await db
    .update(layers)
    .set({ ...patch, updatedAt: new Date() })
    .where(eq(layers.id, id))
    .returning();
  return row ?? null;
}

export async function listLayers(db: Db, includeArchived: boolean): Promise<LayerRow[]> {
  return db
    .select()
    .from(layers)
    .where(includeArchived ? undefined : isNull(layers.archivedAt))
    .orderBy(asc(layers.key));
}

/** The experiments of a layer (archived ones too), oldest first. */
export async function getLayerExperiments(db: Db, layerId: string): Promise<ExperimentRow[]> {
  return db
    .select()
    .from(experiments)
    .where(eq(experiments.layerId, layerId))
    .orderBy(asc(experiments.createdAt), asc(experiments.id));
}

/** The other non-archived experiments of a layer: those whose ranges a new range must not overlap. */
export async function getLayerRivals(
  db: Db,
  layerId: string,
  experimentId: string,
): Promise<ExperimentRow[]> {
  return db
    .select()
    .from(experiments)
    .where(
      and(
        eq(experiments.layerId, layerId),
        ne(experiments.id, experimentId),
        ne(experiments.status, 'archived'),
      ),
    )
    .orderBy(asc(experiments.key));
}

export async function setExperimentLayer(
  db: Db,
  experimentId: string,
  membership: { layerId: string; layerRanges: [number, number][] } | null,
): Promise<ExperimentRow> {
  const [row] = await db
    .update(experiments)
    .set({
      layerId: membership?.layerId ?? null,
      layerRanges: membership?.layerRanges ?? null,
      updatedAt: new Date(),
    })
    .where(eq(experiments.id, experimentId))
    .returning();
  return row;
}

export async function getLayersByIds(db: Db, ids: readonly string[]): Promise<LayerRow[]> {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(layers)
    .where(inArray(layers.id, [...ids]));
}

/** The experiments of some layers in one statement (for the loader), oldest first. */
export async function getExperimentsByLayerIds(
  db: Db,
  layerIds: readonly string[],
): Promise<ExperimentRow[]> {
  if (layerIds.length === 0) return [];
  return db
    .select()
    .from(experiments)
    .where(inArray(experiments.layerId, [...layerIds]))
    .orderBy(asc(experiments.createdAt), asc(experiments.id));
}
