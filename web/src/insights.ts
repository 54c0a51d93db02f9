/** What the badges and warnings say, derived from a scorecard (pure: no rendering, no requests). */
export interface ScoreLike {
  metric: string;
  role?: string | null;
  goal: string;
  srm: { mismatch: boolean; pValue?: number | null };
  variants: {
    isControl: boolean;
    significant?: boolean | null;
    relativeEffect?: { estimate: number } | null;
  }[];
}

export function hasSrm(scorecard: readonly ScoreLike[]): boolean {
  return scorecard.some((s) => s.srm.mismatch);
}

/** Guardrail metrics where a treatment moved significantly in the bad direction. */
export function guardrailsHarmed(scorecard: readonly ScoreLike[]): string[] {
  return scorecard
    .filter((s) => s.role === 'GUARDRAIL')
    .filter((s) =>
      s.variants.some((v) => {
        if (v.isControl || !v.significant) return false;
        const effect = v.relativeEffect?.estimate ?? 0;
        return s.goal === 'INCREASE' ? effect < 0 : effect > 0;
      }),
    )
    .map((s) => s.metric);
}
