/** Results over time (`Experiment.timeSeries`) and per segment (`Experiment.breakdown`). */
import { ExperimentRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import { enumValues } from '../graphql/enums';
import { orBadInput } from '../graphql/errors';
import type { ArgsOf } from '../graphql/input';
import { LIMITS } from '../config';
import { NONE_LEVEL, OTHER_LEVEL } from '../aggregates/constants';
import {
  type Breakdown,
  defaultGranularity,
  getBreakdown,
  getTimeSeries,
  TIME_GRANULARITIES,
  type TimeSeriesOptions,
  type TimeSeriesPoint,
} from './breakdown';
import { analysisArgs, CorrectionEnum, ResultsRef, VariantResultRef } from './graphql';

const TimeGranularityEnum = builder.enumType('TimeGranularity', {
  description: 'The length of a time-series period, in UTC.',
  values: enumValues(TIME_GRANULARITIES, {
    DAY: 'One point per UTC day with first exposures.',
    HOUR: 'One point per UTC hour with first exposures.',
  }),
});

const TimeSeriesPointRef = builder.objectRef<TimeSeriesPoint>('TimeSeriesPoint').implement({
  authScopes: { read: true },
  description:
    'The results of the units first exposed before `at`, with their metric totals as they are now (cumulative, as GrowthBook’s date dimension). The last point is `results` with the same arguments. excludedConversions is the variant’s current count at every point.',
  fields: (t) => ({
    at: t.field({
      type: 'DateTime',
      description: 'The end of the period (exclusive): the point covers units first exposed before it.',
      resolve: (p) => p.at,
    }),
    variants: t.field({
      type: [VariantResultRef],
      description: 'Every variant in position order, control included, as in `results`.',
      resolve: (p) => p.variants,
    }),
  }),
});

builder.objectFields(ResultsRef, (t) => ({
  timeSeries: t.field({
    type: [TimeSeriesPointRef],
    description: `This metric’s \`Experiment.timeSeries\` with this result’s method, confidenceLevel, goal and includeForced (other options at their defaults, correction NONE), so a scorecard draws each metric’s effect over time in the same query. Its last point equals this result when the options match. Default granularity: HOUR while the experiment has run (since its start, else creation) under ${LIMITS.hourlyTimeSeriesDays} days, DAY after.`,
    args: {
      granularity: t.arg({
        type: TimeGranularityEnum,
        required: false,
        description: `DAY or HOUR, in UTC; default HOUR for an experiment younger than ${LIMITS.hourlyTimeSeriesDays} days, else DAY.`,
      }),
    },
    resolve: (r, { granularity }, ctx) =>
      orBadInput(async () => {
        const experiment = await ctx.loaders.experimentById.load(r.experimentId);
        if (!experiment) return [];
        return getTimeSeries(ctx.db, experiment, r.metric, granularity ?? defaultGranularity(experiment), {
          method: r.method,
          confidenceLevel: r.confidenceLevel,
          goal: r.goal,
          includeForced: r.includeForced,
        });
      }),
  }),
}));

const SegmentLevelRef = builder.objectRef<Breakdown['levels'][number]>('SegmentLevel').implement({
  authScopes: { read: true },
  description: 'The results of the units whose first exposure carried one level of the dimension.',
  fields: (t) => ({
    level: t.exposeString('level', {
      description: `The level as sent, "${OTHER_LEVEL}" for levels past the experiment’s first ${LIMITS.maxDimensionLevels}, "${NONE_LEVEL}" for units whose first exposure did not carry the dimension.`,
    }),
    results: t.field({
      type: ResultsRef,
      description:
        'Statistics of the level’s units. adjustedPValue and significant are corrected across every level’s treatments; srm checks the level’s split against the weights; excludedConversions is not broken down (0).',
      resolve: (l) => l.results,
    }),
  }),
});

const BreakdownRef = builder.objectRef<Breakdown>('Breakdown').implement({
  authScopes: { read: true },
  description:
    'One metric’s results per level of a dimension: units over the levels sum to the units of `results`.',
  fields: (t) => ({
    dimension: t.exposeString('dimension', { description: 'The dimension key grouped by.' }),
    warning: t.exposeString('warning', {
      description: 'Segments are exploratory: read this before acting on one.',
    }),
    levels: t.field({
      type: [SegmentLevelRef],
      description: `Every level with units, in name order, "${NONE_LEVEL}" last.`,
      resolve: (b) => b.levels,
    }),
  }),
});

builder.objectFields(ExperimentRef, (t) => {
  // Exposed units only: a never-exposed unit has no first exposure to place it in a period or a level.
  const { includeUnexposed: _unexposed, ...exposedArgs } = analysisArgs(t.arg);
  return {
    timeSeries: t.field({
      type: [TimeSeriesPointRef],
      description:
        'Cumulative results of one metric per period of first exposure, for drawing the effect and its interval converging. From per-hour statistics maintained at ingestion: cost by variants × periods, not events. Exposed units only.',
      args: {
        metric: t.arg.string({
          required: true,
          description: 'A defined metric’s key or a metric name, as for `results`.',
        }),
        granularity: t.arg({
          type: TimeGranularityEnum,
          required: false,
          defaultValue: 'DAY',
          description: 'DAY (default) or HOUR, in UTC.',
        }),
        ...(exposedArgs satisfies ArgsOf<TimeSeriesOptions>),
      },
      resolve: (e, { metric, granularity, ...args }, ctx) =>
        orBadInput(() => getTimeSeries(ctx.db, e, metric, granularity ?? 'DAY', args)),
    }),
    breakdown: t.field({
      type: BreakdownRef,
      description: `One metric’s results per level of a dimension of the exposures (\`dimensions\`), with the correction (default HOLM) across every level’s treatments. Exploratory: see \`warning\`. From statistics maintained at ingestion: cost by variants × levels (at most ${LIMITS.maxDimensionLevels} + 2).`,
      args: {
        metric: t.arg.string({
          required: true,
          description: 'A defined metric’s key or a metric name, as for `results`.',
        }),
        groupBy: t.arg.string({
          required: true,
          description: 'The dimension key, e.g. `device`: a key the experiment’s exposures carry.',
        }),
        ...exposedArgs,
        correction: t.arg({
          type: CorrectionEnum,
          required: false,
          description:
            'Default HOLM, across every level’s treatments (a breakdown is one family of comparisons); NONE gives raw p-values. Ignored by BAYESIAN.',
        }),
      },
      resolve: (e, { metric, groupBy, ...args }, ctx) =>
        orBadInput(() => getBreakdown(ctx.db, e, metric, groupBy, args)),
    }),
  };
});
