import type { Correction } from './types';

type PValue = number | null;

/** Indices of the non-null p-values, ascending by p-value (stable, so ties keep their input order). */
function ascendingOrder(pValues: readonly PValue[]): number[] {
  return pValues
    .map((p, i) => ({ p, i }))
    .filter((entry): entry is { p: number; i: number } => entry.p !== null)
    .sort((a, b) => a.p - b.p)
    .map(({ i }) => i);
}

/**
 * Holm–Bonferroni step-down adjusted p-values, in input order. Nulls (comparisons that could not be
 * computed) are kept as null and do not count towards the number of hypotheses.
 */
export function holm<T extends PValue>(pValues: readonly T[]): T[] {
  const order = ascendingOrder(pValues);
  const m = order.length;
  const adjusted = [...pValues];
  let running = 0;
  order.forEach((index, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * (pValues[index] as number)));
    adjusted[index] = running as T;
  });
  return adjusted;
}

/** Benjamini–Hochberg step-up adjusted p-values (false discovery rate), in input order; nulls as in `holm`. */
export function benjaminiHochberg<T extends PValue>(pValues: readonly T[]): T[] {
  const order = ascendingOrder(pValues);
  const m = order.length;
  const adjusted = [...pValues];
  let running = 1;
  for (let rank = m - 1; rank >= 0; rank--) {
    const index = order[rank];
    // Multiplying by m/(rank+1) ≥ 1, not dividing p·m, keeps every adjusted value ≥ its raw p exactly.
    running = Math.min(running, (pValues[index] as number) * (m / (rank + 1)));
    adjusted[index] = running as T;
  }
  return adjusted;
}

export function adjustPValues<T extends PValue>(pValues: readonly T[], correction: Correction): T[] {
  switch (correction) {
    case 'HOLM':
      return holm(pValues);
    case 'BENJAMINI_HOCHBERG':
      return benjaminiHochberg(pValues);
    case 'NONE':
      return [...pValues];
  }
}
