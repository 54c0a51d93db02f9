/** Statistics in the API: Experiment.results / scorecard / metricNames and the sampleSize planner. */
import { ExperimentRef, MetricRoleEnum, VariantRef } from '../experiments/graphql';
import { builder } from '../graphql/builder';
import { enumValues } from '../graphql/enums';
import { orBadInput } from '../graphql/errors';
import type { ArgBuilder } from '@pothos/core';
import type { ArgsOf, Types } from '../graphql/input';
import { sci } from '../common/validation';
import { LIMITS } from '../config';
import {
  defaultScorecardMetrics,
  getResults,
  type ExperimentResults,
  planSampleSize,
  type ResultsOptions,
  type SampleSizeArgs,
  type SampleSizePlan,
  type VariantOutcome,
  RESULTS_WARNINGS,
  type ResultsWarning,
} from './service';
import {
  CORRECTIONS,
  COVARIATE_IMBALANCE_P_VALUE,
  DIFFERENCE_TYPES,
  METRIC_GOALS,
  METRIC_TYPES,
  STATS_METHODS,
  STATS_REASONS,
  type EffectResult,
  type SrmPhaseResult,
  type SrmResult,
} from './stats';

export const MetricTypeEnum = builder.enumType('MetricType', {
  description:
    'BINOMIAL: share of units that converted at least once. MEAN: average per-unit total of the metric. RATIO: Σ numerator / Σ denominator over units (a defined metric’s kind).',
  values: enumValues(METRIC_TYPES, {
    BINOMIAL: 'Converted or not, per unit; the mean is the conversion rate.',
    MEAN: 'The per-unit sum of the metric’s values (0 for exposed units without events).',
    RATIO:
      'Σ numerator totals / Σ denominator totals over exposed units (e.g. watch minutes per session), with delta-method variances. Only for a defined RATIO metric (createMetric).',
  }),
});
const StatsMethodEnum = builder.enumType('StatsMethod', {
  description:
    'FREQUENTIST: fixed-horizon Welch t-test; look once, at the planned sample size. SEQUENTIAL: always-valid intervals and p-values; look as often as you like. BAYESIAN: chance to beat control and expected loss (risk).',
  values: enumValues(STATS_METHODS, {
    FREQUENTIST:
      'Welch t-test of the difference of means with a fixed-horizon confidence interval; decide once, at the planned sample size.',
    BAYESIAN: 'Gaussian posterior of the effect: chance to win, expected loss (risk) and credible interval.',
    SEQUENTIAL: 'Always-valid confidence sequence (Waudby-Smith et al.): safe to check every day.',
  }),
});
export const CorrectionEnum = builder.enumType('Correction', {
  description:
    'Multiple-comparison correction over all treatment variants × metrics of the request. Ignored by BAYESIAN analyses (no p-values), whose results say NONE.',
  values: enumValues(CORRECTIONS, {
    NONE: 'Raw p-values.',
    HOLM: 'Holm–Bonferroni: controls the family-wise error rate.',
    BENJAMINI_HOCHBERG: 'Benjamini–Hochberg: controls the false discovery rate (less conservative).',
  }),
});
const StatsReasonEnum = builder.enumType('StatsReason', {
  description:
    'Why a number is missing (never NaN): e.g. NO_UNITS, TOO_FEW_UNITS, ZERO_VARIANCE, CONTROL_MEAN_ZERO.',
  values: enumValues(STATS_REASONS, {
    NO_UNITS: 'The variant (or the control) has no units yet.',
    TOO_FEW_UNITS: `An arm has fewer units than minUnitsPerVariant (default ${LIMITS.minUnitsPerVariant}): too few for a trustworthy comparison, so no effect or decision is shown yet.`,
    ZERO_VARIANCE:
      'No spread to test against: every unit in both arms has the same value, or (MEAN metrics, BAYESIAN) in one arm. BINOMIAL comparisons with one constant arm use score methods instead (Wilson / Newcombe).',
    CONTROL_MEAN_ZERO:
      'The control mean is 0, so a relative effect is undefined (the absolute one is given).',
    DENOMINATOR_ZERO:
      'RATIO metrics: the arm has no denominator (Σ denominator = 0), so its ratio is undefined.',
    CONTROL_MEAN_UNCERTAIN:
      'The control mean is not distinguishable from 0 at the confidence level, so the relative interval (Fieller) is unbounded: the relative effect is omitted, the absolute one is given.',
    SINGLE_VARIANT: 'Only one variant: nothing to compare.',
    NO_CONTROL: 'No control variant could be chosen.',
    MULTIPLE_CONTROLS: 'More than one variant is flagged as control.',
    INVALID_INPUT: 'The statistics or options are impossible (e.g. more conversions than units).',
    INVALID_WEIGHTS: 'Variant weights are unusable for the sample-ratio check.',
    ZERO_WEIGHT_WITH_UNITS: 'A variant with weight 0 received units: always a sample-ratio mismatch.',
    NON_FINITE_RESULT: 'The numbers are too extreme for double precision.',
    UNKNOWN_METRIC:
      'No event of this metric was recorded in the experiment (a misspelt name, or none yet): units are counted, every other number is null. `metricNames` lists the metrics with events.',
    TOO_MANY_UNITS: `The plan needs more than ${LIMITS.maxPlannedUnits.toLocaleString('en-US')} units: the effect is too small (or the variants too many) to plan for.`,
  }),
});
const DifferenceTypeEnum = builder.enumType('DifferenceType', {
  description: 'The scale a figure is on.',
  values: enumValues(DIFFERENCE_TYPES, {
    RELATIVE: '(Treatment − control) / |control|: the scale of relativeEffect.',
    ABSOLUTE:
      'Treatment − control, in the metric’s units (conversion-rate points for BINOMIAL): the scale of absoluteEffect and of every decision figure.',
  }),
});
export const MetricGoalEnum = builder.enumType('MetricGoal', {
  description:
    'Which way is better for the metric: what “win” means for chanceToWin, risk and BAYESIAN significance.',
  values: enumValues(METRIC_GOALS, {
    INCREASE: 'Higher is better (conversion, watch time, revenue).',
    DECREASE: 'Lower is better (errors, churn, load time).',
  }),
});

const IntervalRef = builder.objectRef<EffectResult>('Effect').implement({
  authScopes: { read: true },
  description: 'An effect estimate with its confidence (or credible) interval at the requested level.',
  fields: (t) => ({
    estimate: t.exposeFloat('estimate', { description: 'Point estimate (posterior mean for BAYESIAN).' }),
    lower: t.exposeFloat('lower', { description: 'Lower bound at the requested level.' }),
    upper: t.exposeFloat('upper', { description: 'Upper bound at the requested level.' }),
    standardError: t.exposeFloat('standardError', {
      description:
        'Standard error of the estimate (delta method for relativeEffect; half the interval over its critical value when a BINOMIAL arm is constant). For BAYESIAN: posterior standard deviation.',
    }),
  }),
});

const SrmPhaseRef = builder.objectRef<SrmPhaseResult>('SampleRatioMismatchPhase').implement({
  authScopes: { read: true },
  description: "One phase's part of the sample-ratio check (see `Experiment.phases`).",
  fields: (t) => ({
    index: t.exposeInt('index', { description: 'The phase (`ExperimentPhase.index`).' }),
    observed: t.exposeFloatList('observed', {
      description: 'Units per variant enrolled during the phase, in position order.',
    }),
    expected: t.exposeFloatList('expected', {
      nullable: true,
      description:
        "The phase's units split by its normalised weights (0 for a variant whose weight was 0: any unit there is a mismatch).",
    }),
  }),
});

const SrmRef = builder.objectRef<SrmResult>('SampleRatioMismatch').implement({
  authScopes: { read: true },
  description:
    'Do units split as the weights say? A mismatch (p < 0.001) usually means broken assignment or logging: distrust the results until explained.',
  fields: (t) => ({
    chiSquare: t.exposeFloat('chiSquare', {
      nullable: true,
      description:
        'Pearson chi-square statistic summed over phases, df = Σ over phases of (variants with a positive weight − 1); with one phase, df = variants − 1.',
    }),
    pValue: t.exposeFloat('pValue', {
      nullable: true,
      description: 'Chance of a split at least this uneven if assignment works.',
    }),
    mismatch: t.exposeBoolean('mismatch', { description: 'True when pValue < 0.001.' }),
    observed: t.exposeFloatList('observed', {
      description: 'Units per variant, in position order (exposed units; assigned with includeUnexposed).',
    }),
    expected: t.exposeFloatList('expected', {
      nullable: true,
      description:
        "Units expected from the weights in force when they enrolled: Σ over phases of the phase's units × its normalised weight.",
    }),
    phases: t.field({
      type: [SrmPhaseRef],
      description:
        'The check per phase of the weight history (one entry for an experiment whose weights never changed, or that never started).',
      resolve: (s) => s.phases,
    }),
    reason: t.field({
      type: StatsReasonEnum,
      nullable: true,
      description: 'Why the check could not run.',
      resolve: (s) => s.reason,
    }),
  }),
});

export const VariantResultRef = builder.objectRef<VariantOutcome>('VariantResult').implement({
  authScopes: { read: true },
  description:
    'One variant’s numbers; effects and tests are against the control and null on the control itself.',
  fields: (t) => ({
    variant: t.field({
      type: VariantRef,
      description: 'The variant these numbers are for.',
      resolve: async (v, _a, ctx) => (await ctx.loaders.variantById.load(v.variantId))!,
    }),
    isControl: t.exposeBoolean('isControl', {
      description: 'True for the baseline the others are compared with.',
    }),
    units: t.exposeFloat('units', {
      nullable: true,
      description: 'Units analysed (exposed users by default).',
    }),
    conversions: t.exposeFloat('conversions', {
      nullable: true,
      description:
        'BINOMIAL only: units that converted, i.e. whose total of the metric inside their attribution window is > 0 (the units a MEAN analysis of the metric sees above 0).',
    }),
    excludedConversions: t.exposeInt('excludedConversions', {
      description:
        "Events of the metric recorded for this variant but not counted: outside their unit's attribution window (before its first exposure, after the experiment completed, beyond the metric's conversion window) or of a unit never exposed. Stored, and counted as soon as an exposure that opens the window arrives.",
    }),
    mean: t.exposeFloat('mean', {
      nullable: true,
      description: 'Mean per unit (the conversion rate for BINOMIAL).',
    }),
    standardDeviation: t.exposeFloat('standardDeviation', {
      nullable: true,
      description: 'Per-unit standard deviation (n − 1; √(p(1 − p)) for BINOMIAL).',
    }),
    absoluteEffect: t.field({
      type: IntervalRef,
      nullable: true,
      description:
        'Treatment mean − control mean: the scale decisions are made on. The interval excludes 0 exactly when pValue < 1 − confidenceLevel (Newcombe’s score interval when a BINOMIAL arm is constant).',
      resolve: (v) => v.absoluteEffect,
    }),
    relativeEffect: t.field({
      type: IntervalRef,
      nullable: true,
      description:
        '(Treatment − control) / |control|: the delta-method lift and standard error, with Fieller’s interval for the same test as pValue (excludes 0 exactly when it rejects; MOVER-R when a BINOMIAL arm is constant). BAYESIAN: GrowthBook’s relative posterior. Null when the control mean is 0 or indistinguishable from 0 (see reason).',
      resolve: (v) => v.relativeEffect,
    }),
    differenceType: t.field({
      type: DifferenceTypeEnum,
      nullable: true,
      description:
        'Scale of pValue, chanceToWin and risk: ABSOLUTE (the test of equal means runs on the difference of means, whatever the control mean). Null when there are none.',
      resolve: (v) => v.differenceType,
    }),
    pValue: t.exposeFloat('pValue', {
      nullable: true,
      description:
        'Two-sided p-value of equal means on the absolute scale: Welch t-test (FREQUENTIST), always-valid (SEQUENTIAL), or the Newcombe score test when a BINOMIAL arm has no spread. Null for BAYESIAN.',
    }),
    adjustedPValue: t.exposeFloat('adjustedPValue', {
      nullable: true,
      description: 'After the requested correction.',
    }),
    significant: t.exposeBoolean('significant', {
      nullable: true,
      description:
        'FREQUENTIST/SEQUENTIAL: adjustedPValue < 1 − confidenceLevel, in either direction. BAYESIAN: chanceToWin > confidenceLevel, i.e. the treatment wins for the goal (one-sided); a clearly losing treatment is not significant (chanceToWin near 0).',
    }),
    chanceToWin: t.exposeFloat('chanceToWin', {
      nullable: true,
      description:
        'BAYESIAN: posterior probability that the treatment is better for the goal (absolute scale, relative prior rescaled by the control mean).',
    }),
    risk: t.exposeFloatList('risk', {
      nullable: true,
      description:
        'BAYESIAN: expected loss of choosing [control, treatment] for the goal, on the ABSOLUTE scale (differenceType): in the metric’s units per unit, e.g. 0.002 = 0.2 conversion-rate points.',
    }),
    varianceReduction: t.exposeFloat('varianceReduction', {
      nullable: true,
      description:
        'CUPED: the share of the absolute effect’s variance the regression adjustment removed, 1 − adjusted/unadjusted (about ρ², the squared correlation of metric and covariate; intervals shrink by √(1 − varianceReduction)). Null when the comparison is not adjusted and for the control.',
    }),
    cupedTheta: t.exposeFloat('cupedTheta', {
      nullable: true,
      description:
        'CUPED: θ, the regression coefficient of the metric on its covariate pooled over this arm and the control; each unit counts as x − θ·c. Null when not adjusted.',
    }),
    covariateBalancePValue: t.exposeFloat('covariateBalancePValue', {
      nullable: true,
      description: `CUPED: two-sided p-value (Welch) that this arm’s pre-period covariate mean equals the control’s. Randomised arms differ before the experiment only by chance; below ${COVARIATE_IMBALANCE_P_VALUE} the results carry a PREPERIOD_IMBALANCE warning. Null without covariates and for the control.`,
    }),
    reason: t.field({
      type: StatsReasonEnum,
      nullable: true,
      description: 'Why something is null.',
      resolve: (v) => v.reason,
    }),
  }),
});

const ResultsWarningCodeEnum = builder.enumType('ResultsWarningCode', {
  description: 'What a results warning is about.',
  values: enumValues(RESULTS_WARNINGS, {
    PREPERIOD_IMBALANCE: `A treatment’s pre-period covariate mean differs from the control’s (p < ${COVARIATE_IMBALANCE_P_VALUE}): assignment may be broken, or covariates were measured after exposure (then CUPED removes part of the effect).`,
    CUPED_UNAVAILABLE:
      '`cuped: true` was asked but the comparison is unadjusted: no covariate recorded for the metric, or a RATIO metric.',
  }),
});

const ResultsWarningRef = builder.objectRef<ResultsWarning>('ResultsWarning').implement({
  authScopes: { read: true },
  description: 'Something to check before trusting the numbers.',
  fields: (t) => ({
    code: t.field({
      type: ResultsWarningCodeEnum,
      description: 'Machine-readable kind.',
      resolve: (w) => w.code,
    }),
    message: t.exposeString('message', { description: 'What happened and what to check, for people.' }),
  }),
});

export const ResultsRef = builder.objectRef<ExperimentResults>('ExperimentResults').implement({
  authScopes: { read: true },
  description: 'Statistics for one metric: per-unit totals, compared variant by variant with the control.',
  fields: (t) => ({
    metric: t.exposeString('metric', {
      description: 'The metric analysed, as asked: a defined metric’s key or a conversion metricName.',
    }),
    role: t.field({
      type: MetricRoleEnum,
      nullable: true,
      description:
        'The metric’s role in the experiment when it lists the metric. GUARDRAIL results are corrected among the guardrails; every other metric in one family.',
      resolve: (r) => r.role,
    }),
    toleratedHarm: t.exposeFloat('toleratedHarm', {
      nullable: true,
      description:
        'GUARDRAIL: the relative change in the bad direction the experiment tolerates, e.g. -0.02.',
    }),
    type: t.field({
      type: MetricTypeEnum,
      description: 'How units were summarised.',
      resolve: (r) => r.type,
    }),
    method: t.field({ type: StatsMethodEnum, description: 'The inference used.', resolve: (r) => r.method }),
    confidenceLevel: t.exposeFloat('confidenceLevel', { description: 'Level of the intervals, e.g. 0.95.' }),
    correction: t.field({
      type: CorrectionEnum,
      description: 'Multiple-comparison correction applied (NONE for BAYESIAN, whatever was asked).',
      resolve: (r) => r.correction,
    }),
    goal: t.field({
      type: MetricGoalEnum,
      description: 'Which way is better: as asked, else the defined metric’s direction, else INCREASE.',
      resolve: (r) => r.goal,
    }),
    minUnitsPerVariant: t.exposeInt('minUnitsPerVariant', {
      description: 'Units each arm needed before its comparison is shown (TOO_FEW_UNITS below).',
    }),
    includeUnexposed: t.exposeBoolean('includeUnexposed', {
      description:
        'False: only exposed units count. True: every assigned unit, a never-exposed one as 0 (conversions are attributed only from the first exposure).',
    }),
    includeForced: t.exposeBoolean('includeForced', {
      description:
        'True: forced units (QA overrides) were added to every arm’s numbers as asked; the sample-ratio check still reads randomised units only.',
    }),
    control: t.field({
      type: VariantRef,
      nullable: true,
      description: 'The baseline: the variant flagged isControl, else the first variant.',
      resolve: async (r, _a, ctx) =>
        r.controlVariantId ? ctx.loaders.variantById.load(r.controlVariantId) : null,
    }),
    srm: t.field({
      type: SrmRef,
      description: 'Sample-ratio check: read it before the effects.',
      resolve: (r) => r.srm,
    }),
    excludedConversions: t.exposeInt('excludedConversions', {
      description:
        "Events of the metric recorded but left out as outside their unit's attribution window, over all variants (see `VariantResult.excludedConversions`).",
    }),
    weightsChanged: t.exposeBoolean('weightsChanged', {
      description:
        "True when the variants' relative weights changed during the run (`Experiment.phases`). Effects pool every phase's units: an arm whose share grew later holds more late units, so a metric that drifts over time can bias the comparison (Simpson's paradox). Read the results per period, or restart with fixed weights, before trusting a small effect.",
    }),
    adaptiveAllocation: t.exposeBoolean('adaptiveAllocation', {
      description:
        "True for a BANDIT: its weights followed the data it was analysing, so these p-values and intervals are NOT fixed-horizon inference (the arms were sampled adaptively and looked at at every reweighting): read them as descriptive, and decide with `Experiment.banditState.bestArmProbabilities`. Each arm's mean weights every phase by its share of all units (BINOMIAL and MEAN metrics over exposed units), so a metric that drifts over time (weekends) does not favour the arms shown most when it was high.",
    }),
    cuped: t.exposeBoolean('cuped', {
      description:
        'True when the comparisons are regression-adjusted (CUPED) by the metric’s pre-period covariate (exposures’ `covariates`); see `VariantResult.varianceReduction`.',
    }),
    covariateUnits: t.exposeInt('covariateUnits', {
      description:
        'CUPED: exposed units whose first exposure carried the metric’s covariate, over all variants (units without one count as 0).',
    }),
    warnings: t.field({
      type: [ResultsWarningRef],
      description:
        'Checks that failed (pre-period imbalance, CUPED asked for but unavailable); empty when none.',
      resolve: (r) => r.warnings,
    }),
    variants: t.field({
      type: [VariantResultRef],
      description: 'Every variant in position order, control included.',
      resolve: (r) => r.variants,
    }),
    reason: t.field({
      type: StatsReasonEnum,
      nullable: true,
      description: 'Set when no comparison is possible.',
      resolve: (r) => r.reason,
    }),
  }),
});

// Shared by `results` and `scorecard`; checked against the service's options schema.
export const analysisArgs = (arg: ArgBuilder<Types>) =>
  ({
    type: arg({
      type: MetricTypeEnum,
      required: false,
      description:
        'Default: a defined metric’s kind; otherwise BINOMIAL for `conversion`, MEAN for any other name. RATIO only for a defined RATIO metric the experiment lists.',
    }),
    method: arg({ type: StatsMethodEnum, required: false, description: 'Default FREQUENTIST.' }),
    confidenceLevel: arg.float({ required: false, description: 'Default 0.95.' }),
    correction: arg({
      type: CorrectionEnum,
      required: false,
      description: 'Default NONE. Ignored by BAYESIAN (no p-values).',
    }),
    minUnitsPerVariant: arg.int({
      required: false,
      description: `Units each arm needs before effects and decisions are shown (default ${LIMITS.minUnitsPerVariant}, at least 2). Below ${LIMITS.minUnitsPerVariant}, rare conversions and skewed values make every test unreliable: lower it only knowingly.`,
    }),
    goal: arg({
      type: MetricGoalEnum,
      required: false,
      description:
        'Which way is better (default: a defined metric’s direction, else INCREASE): the direction of chanceToWin, risk and BAYESIAN significance.',
    }),
    includeUnexposed: arg.boolean({
      required: false,
      description:
        'Count assigned but unexposed units too, as 0: conversions are attributed only from a unit’s first exposure (default false).',
    }),
    includeForced: arg.boolean({
      required: false,
      description:
        'Add the events of forced units (QA overrides, `Experiment.overrides`) to every arm’s numbers (default false: they were not randomised, so they never count unless asked, and never in the sample-ratio check).',
    }),
    cuped: arg.boolean({
      required: false,
      description:
        'CUPED variance reduction: adjust each unit’s value by its pre-period covariate (the `covariates` its first exposure carried under the metric’s key), as GrowthBook’s regression adjustment. Default: on when any unit carries the covariate; false turns it off; true warns (CUPED_UNAVAILABLE) when it cannot apply. MEAN and BINOMIAL metrics (a capped metric with its capped values).',
    }),
    sequentialTuning: arg.int({
      required: false,
      description: `SEQUENTIAL: N*, the sample size where the interval is tightest (default 5000, at most ${sci(LIMITS.maxSequentialTuning)}).`,
    }),
    priorMean: arg.float({
      required: false,
      description: 'BAYESIAN: prior mean of the relative effect (default: flat prior).',
    }),
    priorVariance: arg.float({
      required: false,
      description: 'BAYESIAN: prior variance of the relative effect.',
    }),
  }) satisfies ArgsOf<ResultsOptions>;

builder.objectFields(ExperimentRef, (t) => ({
  metricNames: t.stringList({
    description: 'Metrics with recorded conversions, for choosing what to analyse.',
    resolve: (e, _a, ctx) => ctx.loaders.metricNamesByExperimentId.load(e.id),
  }),
  results: t.field({
    type: ResultsRef,
    description:
      'Statistics for one metric. One SQL statement over maintained aggregates, whatever the event count.',
    args: {
      metric: t.arg.string({
        required: true,
        description:
          'A defined metric’s key (see `metrics`), or a metric name from metricNames, e.g. `conversion` (analysed with the defaults).',
      }),
      ...analysisArgs(t.arg),
    },
    resolve: (e, { metric, ...args }, ctx) =>
      orBadInput(async () => (await getResults(ctx.db, e, metric, args))[0]),
  }),
  scorecard: t.field({
    type: [ResultsRef],
    description:
      'Statistics for several metrics at once (default: the metrics the experiment lists in metricRoles, else all metricNames). The correction spans the PRIMARY and SECONDARY metrics (and unlisted ones) as one family, and the GUARDRAIL metrics as another.',
    args: {
      metrics: t.arg.stringList({
        required: false,
        description:
          'Defined metric keys or metric names; default: the listed metrics, else all metricNames.',
      }),
      ...analysisArgs(t.arg),
    },
    resolve: (e, { metrics, ...args }, ctx) =>
      orBadInput(async () =>
        getResults(
          ctx.db,
          e,
          metrics ??
            (await defaultScorecardMetrics(ctx.db, e.id, () =>
              ctx.loaders.metricNamesByExperimentId.load(e.id),
            )),
          args,
        ),
      ),
  }),
}));

const PlanRef = builder.objectRef<SampleSizePlan>('SampleSizePlan').implement({
  authScopes: { read: true },
  description:
    'Planning for the test `results` runs with the same method and correction (equal allocation): the power is that of the analysis at the recommended units.',
  fields: (t) => ({
    unitsPerVariant: t.exposeInt('unitsPerVariant', {
      nullable: true,
      description: `Units needed in each variant; never fewer than the ${LIMITS.minUnitsPerVariant} results needs before it shows anything.`,
    }),
    totalUnits: t.exposeInt('totalUnits', {
      nullable: true,
      description: 'Units needed across all variants.',
    }),
    powerAtUnits: t.exposeFloat('powerAtUnits', {
      nullable: true,
      description: 'Power with `currentUnitsPerVariant` units, when given.',
    }),
    minimumDetectableEffectAtUnits: t.exposeFloat('minimumDetectableEffectAtUnits', {
      nullable: true,
      description:
        'Relative effect detectable at the target power with `currentUnitsPerVariant` units, when given.',
    }),
    alphaPerComparison: t.exposeFloat('alphaPerComparison', {
      nullable: true,
      description:
        'Significance level each treatment is planned at: alpha / (variants − 1) with HOLM or BENJAMINI_HOCHBERG (which never reject less than that split), else alpha.',
    }),
    reason: t.field({
      type: StatsReasonEnum,
      nullable: true,
      description: 'Why a number could not be computed.',
      resolve: (p) => p.reason,
    }),
  }),
});

builder.queryField('sampleSize', (t) =>
  t.field({
    type: PlanRef,
    authScopes: { read: true },
    description:
      'How many units an experiment needs to detect a relative effect with the analysis `results` will run (method, correction, sequentialTuning). Give baselineRate (binomial) or baselineMean with baselineStdDev.',
    args: {
      baselineMean: t.arg.float({ required: false, description: 'Mean of the metric per unit today.' }),
      baselineStdDev: t.arg.float({ required: false, description: 'Standard deviation per unit today.' }),
      baselineRate: t.arg.float({
        required: false,
        description: 'Conversion rate today, strictly between 0 and 1, for binomial metrics.',
      }),
      minimumDetectableEffect: t.arg.float({
        required: true,
        description: 'Relative effect to detect, e.g. 0.05 for +5%.',
      }),
      variants: t.arg.int({ required: false, description: 'Variants including control (default 2).' }),
      alpha: t.arg.float({
        required: false,
        description: '1 − confidenceLevel (default 0.05); two-sided, one-sided for BAYESIAN.',
      }),
      method: t.arg({
        type: StatsMethodEnum,
        required: false,
        description:
          'The analysis to plan for (default FREQUENTIST). SEQUENTIAL needs about twice the units; BAYESIAN plans for chanceToWin > 1 − alpha with a flat prior.',
      }),
      correction: t.arg({
        type: CorrectionEnum,
        required: false,
        description:
          'The correction results will use (default NONE); with more than two variants it splits alpha.',
      }),
      sequentialTuning: t.arg.int({
        required: false,
        description: 'SEQUENTIAL: N*, as passed to results (default 5000).',
      }),
      power: t.arg.float({ required: false, description: 'Target power (default 0.8).' }),
      currentUnitsPerVariant: t.arg.int({
        required: false,
        description: 'Units per variant so far, for powerAtUnits.',
      }),
    } satisfies ArgsOf<SampleSizeArgs>,
    resolve: (_r, args) => planSampleSize(args),
  }),
);
