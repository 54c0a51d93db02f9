/**
 * Seeded randomness for the pure engines (bandit draws) and their simulations: deterministic for a seed, so a
 * decision or a test run can be repeated exactly.
 */

export type Random = () => number;

// Module-level bindings: under Jest's VM context every `Math.…` is a slow global lookup, which made the
// simulations' tight loops ten times slower than under plain Node.
const { imul, log, sqrt } = Math;

/** mulberry32: a small, fast 32-bit generator; plenty for a few million draws. */
export function prng(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws by the Marsaglia polar method (pairs; the spare is kept for the next call). */
export function normalSource(random: Random): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    for (;;) {
      const u = 2 * random() - 1;
      const v = 2 * random() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const scale = sqrt((-2 * log(s)) / s);
        spare = v * scale;
        return u * scale;
      }
    }
  };
}
