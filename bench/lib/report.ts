/**
 * The one table (scenario, figure, value, unit, ratio, target, status) and its JSON twin. Targets are
 * reported (PASS/MISS), never enforced; checks are correctness (OK/FAIL) and decide the exit code.
 */

import os from 'node:os';
import { type CpuShare, describeCpu } from './cpu';

const cpus = () => os.cpus().length;

export type Status = 'PASS' | 'MISS' | 'OK' | 'FAIL' | '';

export interface Row {
  scenario: string;
  figure: string;
  value: number | string;
  unit: string;
  /** Head-to-heads: the ratio measured in the same run, e.g. "0.42× COPY" or "120× view". */
  ratio?: string;
  target?: string;
  status?: Status;
}

export interface Check {
  scenario: string;
  name: string;
  ok: boolean;
  detail: string;
}

export class Report {
  readonly rows: Row[] = [];
  readonly checks: Check[] = [];
  readonly notes: string[] = [];

  add(row: Row): Row {
    this.rows.push(row);
    return row;
  }

  /** A figure with a target: `>=` or `<=` threshold; PASS/MISS is reported, never fatal. */
  target(row: Omit<Row, 'target' | 'status'>, op: '>=' | '<=', threshold: number, label?: string): boolean {
    const v = typeof row.value === 'number' ? row.value : Number.NaN;
    const met = op === '>=' ? v >= threshold : v <= threshold;
    this.add({
      ...row,
      target: label ?? `${op === '>=' ? '≥' : '≤'} ${fmt(threshold)}`,
      status: met ? 'PASS' : 'MISS',
    });
    return met;
  }

  /** A correctness check: a failure makes the run exit non-zero, in every mode. */
  check(scenario: string, name: string, ok: boolean, detail = ''): boolean {
    this.checks.push({ scenario, name, ok, detail });
    if (!ok) console.error(`  ✗ ${scenario}: ${name}${detail ? ` — ${detail}` : ''}`);
    return ok;
  }

  /**
   * Where the CPU went during a run; with `work` (requests or events done), also the CPU cost per unit and
   * the throughput that cost allows on idle cores (an upper bound: it ignores waiting and serialisation),
   * which stays meaningful when other work shares the machine. Flags runs that shared it.
   */
  cpu(
    scenario: string,
    figure: string,
    share: CpuShare | null,
    work?: { count: number; per: string; rateUnit: string; perUnit?: number },
  ): void {
    this.add({ scenario, figure: `${figure}: CPU (cores)`, value: describeCpu(share), unit: 'cores' });
    if (share && work && work.count > 0) {
      const ms = (cores: number) => (cores * share.wallSeconds * 1000) / work.count;
      const own = ms(share.server) + ms(share.postgres) + ms(share.loadGenerator);
      this.add({
        scenario,
        figure: `${figure}: CPU ms per ${work.per} (server / pg / bench)`,
        value: `${fmt(ms(share.server))} / ${fmt(ms(share.postgres))} / ${fmt(ms(share.loadGenerator))}`,
        unit: 'ms',
      });
      this.add({
        scenario,
        figure: `${figure}: CPU-bound ceiling on ${cpus()} idle cores`,
        value: ((cpus() * 1000) / own) * (work.perUnit ?? 1),
        unit: work.rateUnit,
      });
    }
    if (share && share.other > 0.3) {
      this.note(
        `${scenario} / ${figure}: other processes used ${share.other.toFixed(2)} of the cores during the run; throughput understates this code (see the CPU-bound ceiling)`,
      );
    }
  }

  note(text: string): void {
    this.notes.push(text);
  }

  get failures(): Check[] {
    return this.checks.filter((c) => !c.ok);
  }

  /** Check rows are folded into the table: one line per scenario with the count and any failure. */
  tableRows(): Row[] {
    const rows = [...this.rows];
    const scenarios = [...new Set(this.checks.map((c) => c.scenario))];
    for (const scenario of scenarios) {
      const mine = this.checks.filter((c) => c.scenario === scenario);
      const failed = mine.filter((c) => !c.ok);
      rows.push({
        scenario,
        figure: failed.length
          ? `checks failed: ${failed.map((c) => c.name).join('; ')}`
          : `checks (${mine.map((c) => c.name).join('; ')})`,
        value: `${mine.length - failed.length}/${mine.length}`,
        unit: 'ok',
        status: failed.length ? 'FAIL' : 'OK',
      });
    }
    const order = (s: string) => Number.parseInt(s, 10) || 99;
    return rows
      .map((r, i) => ({ r, i }))
      .sort((a, b) => order(a.r.scenario) - order(b.r.scenario) || a.i - b.i)
      .map(({ r }) => r);
  }

  table(): string {
    const header = ['scenario', 'figure', 'value', 'unit', 'ratio', 'target', 'status'];
    const body = this.tableRows().map((r) => [
      r.scenario,
      r.figure,
      typeof r.value === 'number' ? fmt(r.value) : r.value,
      r.unit,
      r.ratio ?? '',
      r.target ?? '',
      r.status ?? '',
    ]);
    const maxFigure = 70;
    const clip = (s: string, i: number) =>
      i === 1 && s.length > maxFigure ? `${s.slice(0, maxFigure - 1)}…` : s;
    const cells = [header, ...body].map((line) => line.map(clip));
    const widths = header.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
    const numeric = new Set([2]);
    const line = (cols: string[]) =>
      `| ${cols.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
    const rule = `|${widths.map((w, i) => (numeric.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
    return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
  }
}

/** Numbers for people: thousands separated, at most 3 significant decimals below 100. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 100) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  if (abs === 0) return '0';
  return n.toPrecision(3);
}

export function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
