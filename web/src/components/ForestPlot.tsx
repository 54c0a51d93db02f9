/**
 * A forest plot: each treatment's relative effect against the control, with its interval, on one axis
 * through 0 (no effect). d3-scale maps numbers to pixels; Preact draws the SVG.
 */
import { scaleLinear } from 'd3-scale';
import { percent } from '../format';

export interface ForestRow {
  name: string;
  estimate: number;
  lower: number;
  upper: number;
  significant: boolean;
  /** True when the effect goes the good way for the metric's goal. */
  good: boolean;
}

const ROW = 34;
const LEFT = 110;
const RIGHT = 16;
const WIDTH = 560;

export function ForestPlot({ metric, rows }: { metric: string; rows: ForestRow[] }) {
  const height = rows.length * ROW + 34;
  const extent = Math.max(0.01, ...rows.flatMap((r) => [Math.abs(r.lower), Math.abs(r.upper)]));
  const x = scaleLinear()
    .domain([-extent, extent])
    .range([LEFT, WIDTH - RIGHT])
    .nice();
  const ticks = x.ticks(5);
  const label = `Relative effect on ${metric} by variant: ${rows
    .map((r) => `${r.name} ${percent(r.estimate)} (interval ${percent(r.lower)} to ${percent(r.upper)})`)
    .join('; ')}`;
  return (
    <svg
      class="forest"
      viewBox={`0 0 ${WIDTH} ${height}`}
      role="img"
      aria-label={label}
      data-metric={metric}
      preserveAspectRatio="xMinYMin meet"
    >
      {ticks.map((t) => (
        <g key={t}>
          <line x1={x(t)} x2={x(t)} y1={4} y2={height - 24} class={t === 0 ? 'axis-zero' : 'grid'} />
          <text x={x(t)} y={height - 8} text-anchor="middle" class="tick">
            {percent(t, 0)}
          </text>
        </g>
      ))}
      {rows.map((r, i) => {
        const y = 18 + i * ROW;
        const tone = r.significant ? (r.good ? 'good' : 'bad') : 'neutral';
        return (
          <g key={r.name} class={`series ${tone}`} data-series={r.name}>
            <text x={LEFT - 8} y={y + 4} text-anchor="end" class="row-label">
              {r.name}
            </text>
            <line x1={x(r.lower)} x2={x(r.upper)} y1={y} y2={y} class="interval" />
            <line x1={x(r.lower)} x2={x(r.lower)} y1={y - 6} y2={y + 6} class="interval" />
            <line x1={x(r.upper)} x2={x(r.upper)} y1={y - 6} y2={y + 6} class="interval" />
            <circle cx={x(r.estimate)} cy={y} r={5} class="estimate" />
          </g>
        );
      })}
    </svg>
  );
}
