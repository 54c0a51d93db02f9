/** The experiments list: status, layer, units, days running, SRM and guardrail badges; search and filter. */
import { useQuery } from '@urql/preact';
import type { ResultOf } from '@graphql-typed-document-node/core';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { count, daysRunning } from '../format';
import { guardrailsHarmed, hasSrm } from '../insights';
import { ExperimentsQuery } from '../operations';
import { onLink } from '../router';
import { Failure } from './Failure';

const STATUSES = ['ALL', 'DRAFT', 'RUNNING', 'PAUSED', 'COMPLETED', 'ARCHIVED'] as const;

type Row = ResultOf<typeof ExperimentsQuery>['experiments']['edges'][number]['node'];

export function ExperimentList() {
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('ALL');
  // Pages of 10 (a page's scorecards are what the complexity limit allows): the status filter runs on the
  // server, over every experiment; "Show more" appends the next page; the search looks at the loaded pages.
  const [after, setAfter] = useState<string | null>(null);
  const [loaded, setLoaded] = useState<Row[]>([]);
  const [{ data, error, fetching }] = useQuery({
    query: ExperimentsQuery,
    variables: { status: status === 'ALL' ? null : status, after },
  });
  useEffect(() => {
    if (!data) return;
    const page = data.experiments.edges.map((e) => e.node);
    setLoaded((before) => {
      const fresh = after === null ? [] : before.filter((n) => !page.some((p) => p.id === n.id));
      return [...fresh, ...page];
    });
  }, [data]);
  const rows = useMemo(() => {
    const needle = search.trim().toLowerCase();
    return loaded.filter(
      (n) => !needle || n.key.toLowerCase().includes(needle) || n.name.toLowerCase().includes(needle),
    );
  }, [loaded, search]);
  if (error) return <Failure error={error} />;
  return (
    <main>
      <h1>Experiments</h1>
      <div class="filters">
        <label class="field">
          Search
          <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <label class="field">
          Status
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.currentTarget.value as (typeof STATUSES)[number]);
              setAfter(null);
            }}
          >
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s === 'ALL' ? 'All' : s.toLowerCase()}
              </option>
            ))}
          </select>
        </label>
      </div>
      {fetching && !data ? <p aria-live="polite">Loading…</p> : null}
      <div class="table-wrap">
        <table class="experiments">
          <caption class="visually-hidden">Experiments, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Experiment</th>
              <th scope="col">Status</th>
              <th scope="col">Layer</th>
              <th scope="col">Units</th>
              <th scope="col">Running</th>
              <th scope="col">Checks</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((n) => {
              const harmed = guardrailsHarmed(n.scorecard);
              return (
                <tr key={n.id} data-key={n.key}>
                  <td data-label="Experiment">
                    <a
                      href={`/experiments/${encodeURIComponent(n.key)}`}
                      onClick={(e) => onLink(e, `/experiments/${encodeURIComponent(n.key)}`)}
                    >
                      {n.name}
                    </a>
                    <div class="muted">{n.key}</div>
                  </td>
                  <td data-label="Status">
                    <span class={`status status-${n.status.toLowerCase()}`}>{n.status.toLowerCase()}</span>
                  </td>
                  <td data-label="Layer">{n.layer?.name ?? '—'}</td>
                  <td data-label="Units">{count(n.assignmentCount)}</td>
                  <td data-label="Running">{n.status === 'DRAFT' ? '—' : daysRunning(n.startAt)}</td>
                  <td data-label="Checks">
                    {hasSrm(n.scorecard) ? <span class="badge bad">Sample ratio mismatch</span> : null}
                    {harmed.length ? (
                      <span class="badge bad">Guardrail harmed: {harmed.join(', ')}</span>
                    ) : null}
                    {!hasSrm(n.scorecard) && !harmed.length ? <span class="badge ok">OK</span> : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {data && rows.length === 0 ? <p>No experiment matches.</p> : null}
      {data ? (
        <p class="muted" aria-live="polite">
          {count(loaded.length)} of {count(data.experiments.totalCount)} experiments loaded
          {search.trim() ? ' (the search looks at the loaded ones)' : ''}
        </p>
      ) : null}
      {data?.experiments.pageInfo.hasNextPage ? (
        <button
          type="button"
          disabled={fetching}
          onClick={() => setAfter(data.experiments.pageInfo.endCursor ?? null)}
        >
          Show more
        </button>
      ) : null}
    </main>
  );
}
