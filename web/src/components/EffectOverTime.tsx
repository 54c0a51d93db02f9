/**
 * The effect over time: each treatment's relative effect against the control at every cumulative point of
 * `timeSeries` (units first exposed before `at`), its interval as a shaded band, and a zero line. The band
 * narrowing toward the right is the point of the chart: early points rest on few units. d3-scale maps
 * numbers to pixels; Preact draws the SVG (no time-scale module: ticks are the points' own dates).
 */
import { scaleLinear } from 'd3-scale';
import { dateTime, percent } from '../format';

export interface EffectPoint {
  /** Milliseconds since the epoch. */
  at: number;
  estimate: number;
  lower: number;
  upper: number;
}

export interface EffectSeries {
  name: string;
  points: EffectPoint[];
}

const WIDTH = 560;
const HEIGHT = 220;
const LEFT = 56;
const RIGHT = 16;
const TOP = 10;
const BOTTOM = 28;
/** Distinct at a glance and at least 3:1 against white (WCAG non-text contrast). */
export const SERIES_COLOURS = ['#0550ae', '#bc4c00', '#8250df', '#116329', '#a40e26', '#1b7c83'];

const label = (at: number) => dateTime(new Date(at).toISOString());

/** What the chart shows, in words: for the aria-label and the text beside it. */
export function describe(metric: string, series: EffectSeries[]): string {
  const parts = series.map((s) => {
    const first = s.points[0];
    const last = s.points[s.points.length - 1];
    if (!first || !last) return `${s.name}: no effect yet`;
    return `${s.name} from ${percent(first.estimate)} (${percent(first.lower)} to ${percent(first.upper)}) on ${label(first.at)} to ${percent(last.estimate)} (${percent(last.lower)} to ${percent(last.upper)}) on ${label(last.at)}`;
  });
  return `Relative effect on ${metric} over time, cumulative, with intervals: ${parts.join('; ')}.`;
}

const path = (xs: number[], ys: number[]) =>
  xs.map((x, i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${(ys[i] ?? 0).toFixed(1)}`).join('');

export function EffectOverTime({ metric, series }: { metric: string; series: EffectSeries[] }) {
  const all = series.flatMap((s) => s.points);
  const times = all.map((p) => p.at);
  const start = Math.min(...times);
  const end = Math.max(...times);
  // The first points of a fresh experiment can have intervals of ±1000%: bound the axis by a few times the
  // widest interval of the latest points, so the converged end stays readable (the scale clamps the rest).
  const latest = series.flatMap((s) => s.points.slice(-1));
  const latestExtent = Math.max(0.01, ...latest.flatMap((p) => [Math.abs(p.lower), Math.abs(p.upper)]));
  const extent = Math.min(
    Math.max(0.01, ...all.flatMap((p) => [Math.abs(p.lower), Math.abs(p.upper)])),
    latestExtent * 4,
  );
  const x = scaleLinear()
    .domain(start === end ? [start - 1, end + 1] : [start, end])
    .range([LEFT, WIDTH - RIGHT]);
  const y = scaleLinear()
    .domain([-extent, extent])
    .range([HEIGHT - BOTTOM, TOP])
    .nice()
    .clamp(true);
  const yTicks = y.ticks(5);
  const xTicks = start === end ? [start] : [start, (start + end) / 2, end];
  const text = describe(metric, series);
  return (
    <figure class="over-time">
      <svg
        class="over-time"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={text}
        data-metric={metric}
        preserveAspectRatio="xMinYMin meet"
      >
        {yTicks.map((t) => (
          <g key={t}>
            <line x1={LEFT} x2={WIDTH - RIGHT} y1={y(t)} y2={y(t)} class={t === 0 ? 'axis-zero' : 'grid'} />
            <text x={LEFT - 6} y={y(t) + 4} text-anchor="end" class="tick">
              {percent(t, 0)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={t}
            x={x(t)}
            y={HEIGHT - 8}
            text-anchor={i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle'}
            class="tick"
          >
            {label(t)}
          </text>
        ))}
        {series.map((s, i) => {
          const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
          const xs = s.points.map((p) => x(p.at));
          const band =
            path(
              xs,
              s.points.map((p) => y(p.upper)),
            ) +
            path([...xs].reverse(), s.points.map((p) => y(p.lower)).reverse()).replace(/^M/, 'L') +
            'Z';
          return (
            <g key={s.name} class="series" data-series={s.name} style={{ color: colour }}>
              <path d={band} class="band" />
              <path
                d={path(
                  xs,
                  s.points.map((p) => y(p.estimate)),
                )}
                class="line"
              />
              {s.points.length === 1 && s.points[0] ? (
                <circle cx={xs[0]} cy={y(s.points[0].estimate)} r={4} class="estimate" />
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul class="legend" aria-hidden="true">
          {series.map((s, i) => (
            <li key={s.name}>
              <span class="swatch" style={{ background: SERIES_COLOURS[i % SERIES_COLOURS.length] }} />
              {s.name}
            </li>
          ))}
        </ul>
        <p class="muted summary">{text}</p>
      </figcaption>
    </figure>
  );
}
