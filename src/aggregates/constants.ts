/**
 * The strings that give the maintained aggregates their meaning, defined once. TypeScript interpolates
 * them into its SQL; the repeatable SQL files (drizzle/repeatable/) name them as `{{NAME}}`, which the
 * migrations runner replaces with these values as SQL literals (see src/db/repeatable.ts).
 */

/** Per-unit metric counting the unit's exposures (each worth 1). Reserved: conversions cannot use it. */
export const EXPOSURE_METRIC = 'exposure';

/** Per-unit metric summing every conversion of the unit (real metric names are slugs: no `$`). */
export const ANY_CONVERSION_METRIC = '$any';

/**
 * Prefix of the per-experiment advisory lock (key: hashtextextended(prefix || experiment id, 0)) that
 * serialises the folds and rebuilds of one experiment. Taken only by lock_experiments_for_ingest.
 */
export const INGEST_LOCK_PREFIX = 'sona.ingest:';

/** The level a dimension value past the experiment's LIMITS.maxDimensionLevels is stored as. */
export const OTHER_LEVEL = '__other__';

/** The level of units whose first exposure did not carry the dimension (the total minus every level). */
export const NONE_LEVEL = '__none__';

/** The values `{{NAME}}` placeholders in repeatable SQL files may name. */
export const SQL_TEMPLATE_VALUES = {
  EXPOSURE_METRIC,
  ANY_CONVERSION_METRIC,
  INGEST_LOCK_PREFIX,
} as const;
