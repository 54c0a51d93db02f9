/**
 * One experiment: variants, a forest plot per metric with the significance call, progress toward the
 * planned units, SRM and guardrail warnings in plain words, the audit log, and (with `write`) its
 * lifecycle actions. One query draws it; one subscription (the same fragment) keeps it current.
 * The effect over time is `scorecard.timeSeries` in the same fragment, so each push redraws it too.
 */
import { useMutation, useQuery, useSubscription } from '@urql/preact';
import { useState } from 'preact/hooks';
import { EffectOverTime, type EffectSeries } from '../components/EffectOverTime';
import { ForestPlot, type ForestRow } from '../components/ForestPlot';
import { count, dateTime, daysRunning, percent, share } from '../format';
import type { ExperimentDetailFragment } from '../gql/graphql';
import { guardrailsHarmed } from '../insights';
import {
  CompleteMutation,
  ExperimentLive,
  ExperimentPageQuery,
  PauseMutation,
  StartMutation,
} from '../operations';
import { onLink } from '../router';
import { Failure } from './Failure';

type Experiment = ExperimentDetailFragment;
type Score = Experiment['scorecard'][number];

export function ExperimentPage({ experimentKey }: { experimentKey: string }) {
  const [{ data, error }] = useQuery({ query: ExperimentPageQuery, variables: { key: experimentKey } });
  const [live] = useSubscription({
    query: ExperimentLive,
    variables: { key: experimentKey },
    pause: !data?.experiment,
  });
  if (error) return <Failure error={error} />;
  if (!data) return <p aria-live="polite">Loading…</p>;
  const experiment = live.data?.experimentChanged ?? data.experiment;
  if (!experiment) {
    return (
      <main>
        <h1>Not found</h1>
        <p>There is no experiment with the key “{experimentKey}”.</p>
      </main>
    );
  }
  const canWrite = data.viewer.scopes.includes('WRITE');
  return (
    <main>
      <p>
        <a href="/" onClick={(e) => onLink(e, '/')}>
          ← All experiments
        </a>
      </p>
      <h1>{experiment.name}</h1>
      <p class="muted">
        {experiment.key} ·{' '}
        <span class={`status status-${experiment.status.toLowerCase()}`} data-testid="status">
          {experiment.status.toLowerCase()}
        </span>
        {experiment.layer ? ` · layer ${experiment.layer.name}` : ''} · {count(experiment.assignmentCount)}{' '}
        units · running {daysRunning(experiment.startAt, experiment.endAt)}
      </p>
      {experiment.description ? <p>{experiment.description}</p> : null}
      {canWrite ? <Actions experiment={experiment} /> : null}
      <Warnings experiment={experiment} />
      <Progress experiment={experiment} />
      <Variants experiment={experiment} />
      <section aria-labelledby="effects">
        <h2 id="effects">Effects</h2>
        {experiment.scorecard.length === 0 ? <p>No metric has events yet.</p> : null}
        {experiment.scorecard.map((s) => (
          <MetricResult key={s.metric} score={s} />
        ))}
      </section>
      <AuditLog experiment={experiment} />
    </main>
  );
}

function Actions({ experiment }: { experiment: Experiment }) {
  const [, start] = useMutation(StartMutation);
  const [, pause] = useMutation(PauseMutation);
  const [, complete] = useMutation(CompleteMutation);
  const [message, setMessage] = useState<string | null>(null);
  const run = async (verb: string, action: typeof pause) => {
    if (!confirm(`${verb} experiment “${experiment.name}”?`)) return;
    const result = await action({ id: experiment.id });
    const outcome = result.data ? Object.values(result.data)[0] : null;
    if (result.error) setMessage(result.error.message);
    else if (outcome && 'message' in outcome) setMessage(outcome.message);
    else setMessage(`${verb}: done.`);
  };
  const s = experiment.status;
  return (
    <div class="actions">
      {s === 'DRAFT' || s === 'PAUSED' ? (
        <button type="button" onClick={() => run('Start', start as unknown as typeof pause)}>
          Start
        </button>
      ) : null}
      {s === 'RUNNING' ? (
        <button type="button" onClick={() => run('Pause', pause)}>
          Pause
        </button>
      ) : null}
      {s === 'RUNNING' || s === 'PAUSED' ? (
        <button type="button" onClick={() => run('Complete', complete as unknown as typeof pause)}>
          Complete
        </button>
      ) : null}
      {message ? <span role="status">{message}</span> : null}
    </div>
  );
}

function Warnings({ experiment }: { experiment: Experiment }) {
  const srm = experiment.scorecard.find((s) => s.srm.mismatch);
  const harmed = guardrailsHarmed(experiment.scorecard);
  if (!srm && harmed.length === 0) return null;
  return (
    <section class="warnings" aria-label="Warnings">
      {srm ? (
        <p role="alert" class="warning">
          <strong>Sample ratio mismatch.</strong> Units did not split between the variants as their weights
          say (observed {srm.srm.observed.map(count).join(' / ')}
          {srm.srm.expected ? `, expected about ${srm.srm.expected.map(count).join(' / ')}` : ''}; p ={' '}
          {srm.srm.pValue?.toExponential(1)}). Assignment or event logging is probably broken: do not trust
          these results until it is explained.
        </p>
      ) : null}
      {harmed.length ? (
        <p role="alert" class="warning">
          <strong>Guardrail harmed.</strong> A treatment made {harmed.join(', ')} significantly worse.
          Consider pausing the experiment.
        </p>
      ) : null}
    </section>
  );
}

function Progress({ experiment }: { experiment: Experiment }) {
  const planned = experiment.schedule?.stopAfterUnits;
  if (!planned) return null;
  const done = Math.min(1, experiment.assignmentCount / planned);
  return (
    <section aria-labelledby="progress">
      <h2 id="progress">Progress</h2>
      <label for="progress-bar">
        {count(experiment.assignmentCount)} of {count(planned)} planned units ({share(done)})
      </label>
      <progress id="progress-bar" max={planned} value={Math.min(experiment.assignmentCount, planned)} />
    </section>
  );
}

function Variants({ experiment }: { experiment: Experiment }) {
  const total = experiment.variants.reduce((sum, v) => sum + v.weight, 0) || 1;
  return (
    <section aria-labelledby="variants">
      <h2 id="variants">Variants</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Variant</th>
              <th scope="col">Weight</th>
              <th scope="col">Config</th>
            </tr>
          </thead>
          <tbody>
            {experiment.variants.map((v) => (
              <tr key={v.id}>
                <td>
                  {v.name}
                  {v.isControl ? <span class="badge">control</span> : null}
                </td>
                <td>{share(v.weight / total)}</td>
                <td>
                  <code>{JSON.stringify(v.config)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function call(score: Score, v: Score['variants'][number]): string {
  if (v.reason)
    return v.reason === 'TOO_FEW_UNITS' ? 'Too few units yet' : v.reason.toLowerCase().replaceAll('_', ' ');
  if (!v.significant) return 'Not significant';
  const effect = v.relativeEffect?.estimate ?? v.absoluteEffect?.estimate ?? 0;
  const good = score.goal === 'INCREASE' ? effect > 0 : effect < 0;
  return good ? 'Significant: better' : 'Significant: worse';
}

function MetricResult({ score }: { score: Score }) {
  const treatments = score.variants.filter((v) => !v.isControl);
  const rows: ForestRow[] = treatments.flatMap((v) =>
    v.relativeEffect
      ? [
          {
            name: v.variant.name,
            estimate: v.relativeEffect.estimate,
            lower: v.relativeEffect.lower,
            upper: v.relativeEffect.upper,
            significant: !!v.significant,
            good: score.goal === 'INCREASE' ? v.relativeEffect.estimate > 0 : v.relativeEffect.estimate < 0,
          },
        ]
      : [],
  );
  // One series per treatment, over the points where its comparison could be made (early points may have
  // too few units for an interval).
  const series: EffectSeries[] = treatments.map((t) => ({
    name: t.variant.name,
    points: score.timeSeries.flatMap((p) => {
      const effect = p.variants.find((v) => v.variant.id === t.variant.id)?.relativeEffect;
      return effect ? [{ at: Date.parse(p.at), ...effect }] : [];
    }),
  }));
  const drawn = series.filter((s) => s.points.length > 0);
  return (
    <article class="metric" data-metric={score.metric}>
      <h3>
        {score.metric}
        {score.role ? <span class="badge">{score.role.toLowerCase()}</span> : null}
      </h3>
      <p class="muted">
        {score.method.toLowerCase()} · {share(score.confidenceLevel)} intervals · goal:{' '}
        {score.goal.toLowerCase()}
      </p>
      {rows.length ? <ForestPlot metric={score.metric} rows={rows} /> : <p>No effect to show yet.</p>}
      <h4>Over time</h4>
      {drawn.length && score.timeSeries.length > 1 ? (
        <EffectOverTime metric={score.metric} series={drawn} />
      ) : (
        <p class="muted">
          One period so far: the effect over time appears once units arrive in a second one.
        </p>
      )}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Variant</th>
              <th scope="col">Units</th>
              <th scope="col">Mean</th>
              <th scope="col">Relative effect</th>
              <th scope="col">Call</th>
            </tr>
          </thead>
          <tbody>
            {score.variants.map((v) => (
              <tr key={v.variant.id}>
                <td>{v.variant.name}</td>
                <td>{count(v.units)}</td>
                <td>{v.mean == null ? '—' : v.mean.toPrecision(3)}</td>
                <td>
                  {v.isControl
                    ? 'baseline'
                    : v.relativeEffect
                      ? `${percent(v.relativeEffect.estimate)} (${percent(v.relativeEffect.lower)} to ${percent(v.relativeEffect.upper)})`
                      : '—'}
                </td>
                <td>{v.isControl ? '—' : call(score, v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </article>
  );
}

function AuditLog({ experiment }: { experiment: Experiment }) {
  return (
    <section aria-labelledby="audit">
      <h2 id="audit">Audit log</h2>
      <ol class="audit">
        {experiment.auditLog.map((a) => (
          <li key={a.id} data-action={a.action}>
            <time dateTime={a.createdAt}>{dateTime(a.createdAt)}</time> <strong>{a.action}</strong> by{' '}
            {a.actor}
          </li>
        ))}
      </ol>
    </section>
  );
}
