// Pieces every page uses: loading data (optionally polled), problems, statuses, values.

import { useCallback, useEffect, useRef, useState } from 'react';

import { api, query } from './api.js';

/**
 * GETs `path` (nothing while it is null); with `every` (ms), again until `until(data)`
 * holds. A 401 signs the user out.
 */
export function useApi(path, { every, until, onUnauthorized } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: Boolean(path) });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const stopRef = useRef(until);
  stopRef.current = until;

  useEffect(() => {
    if (!path) {
      return undefined;
    }
    let live = true;
    let timer = null;
    setState((s) => (s.loading ? s : { ...s, loading: true }));
    const load = async () => {
      try {
        const data = await api(path);
        if (!live) return;
        setState({ data, error: null, loading: false });
        if (every && !(stopRef.current && stopRef.current(data))) {
          timer = setTimeout(load, every);
        }
      } catch (error) {
        if (!live) return;
        if (error.status === 401 && onUnauthorized) {
          onUnauthorized();
          return;
        }
        setState((s) => ({ data: s.data, error, loading: false }));
        if (every && error.status !== 404 && error.status !== 403) {
          timer = setTimeout(load, every * 2);
        }
      }
    };
    load();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // onUnauthorized is stable enough: a new one only comes with a new page.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, every, tick]);

  return { ...state, reload };
}

/** A duration in milliseconds, for people: `850 ms`, `12m 30s`, `2h 05m`, `3d 4h`. */
export function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (ms < 1000) return `${ms} ms`;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

/** Sets the document's title with the page's heading. */
export function Heading({ children, title }) {
  useEffect(() => {
    document.title = `${title || (typeof children === 'string' ? children : '')} · Developer portal`;
  }, [children, title]);
  return <h1>{children}</h1>;
}

/** An API problem, with every violation it lists. */
export function Problem({ error }) {
  if (!error) return null;
  const p = error.problem || {};
  return (
    <div className="problem" role="alert">
      <p>
        <strong>{p.title || 'Something went wrong'}</strong>
        {p.detail && p.detail !== p.title ? `: ${p.detail}` : ''}
      </p>
      {Array.isArray(p.errors) && p.errors.length > 0 && (
        <ul>
          {p.errors.map((e, i) => (
            <li key={i}>
              {typeof e === 'string' ? e : e.message}
              {e.pointer ? <code className="pointer">{e.pointer}</code> : null}
            </li>
          ))}
        </ul>
      )}
      {Array.isArray(p.drift) && p.drift.length > 0 && <DriftTable drift={p.drift} />}
    </div>
  );
}

const STATUS_TEXT = {
  submitted: 'Submitted',
  in_progress: 'In progress',
  awaiting_fulfillment: 'Awaiting fulfillment',
  awaiting_approval: 'Awaiting approval',
  paused: 'Paused',
  completed: 'Completed',
  failed: 'Failed',
  rejected: 'Rejected',
  cancelled: 'Cancelled',
  pending: 'Pending',
  ready: 'Ready',
  drifted: 'Drifted',
  provisioning: 'Provisioning',
  updating: 'Updating',
  deleting: 'Deleting',
  deleted: 'Deleted',
  rolled_back: 'Rolled back',
  kept: 'Kept',
  not_started: 'Not started',
  matched: 'Matches',
  skipped: 'Not verified',
};

export function statusText(status) {
  return STATUS_TEXT[status] || String(status).replace(/_/g, ' ');
}

/** A status in words, coloured by what it means (the words carry the meaning too). */
export function Status({ value }) {
  return <span className={`status status-${value}`}>{statusText(value)}</span>;
}

export function when(at) {
  if (!at) return '—';
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleString();
}

function show(value) {
  if (value && typeof value === 'object' && value.sensitive === true && Object.keys(value).length === 1) {
    return <em className="sensitive">sensitive (kept out of the portal)</em>;
  }
  if (value === null || value === undefined) return <em>none</em>;
  if (typeof value === 'object') return <code>{JSON.stringify(value)}</code>;
  return <code>{String(value)}</code>;
}

/** A map of names to values (fields, inputs, outputs), as a definition list. */
export function Values({ values, empty = 'None.', label }) {
  const entries = Object.entries(values || {});
  if (!entries.length) return <p className="muted">{empty}</p>;
  return (
    <dl className="values" aria-label={label}>
      {entries.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{show(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

export function DriftTable({ drift }) {
  return (
    <table className="drift">
      <caption>Drift: what the target reports differs from the record</caption>
      <thead>
        <tr>
          <th scope="col">Attribute</th>
          <th scope="col">Recorded</th>
          <th scope="col">Actual</th>
        </tr>
      </thead>
      <tbody>
        {drift.map((d) => (
          <tr key={d.attribute}>
            <th scope="row">{d.attribute}</th>
            <td>{show(d.recorded)}</td>
            <td>{show(d.actual)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Loading({ what = 'Loading' }) {
  return (
    <p className="muted" role="status">
      {what}…
    </p>
  );
}

/** A list read a page at a time by cursor (newest first), filtered by status, refreshed
 * every 5 s. `newer` and `older` are null where there is no such page. */
export function usePagedList(path, limit, onUnauthorized) {
  const [status, setStatusValue] = useState('');
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const result = useApi(`${path}${query({ status, cursor, limit })}`, { onUnauthorized, every: 5000 });
  const next = result.data?.next;
  return {
    ...result,
    status,
    setStatus: (value) => {
      setStatusValue(value);
      setCursors([null]);
    },
    newer: cursors.length > 1 ? () => setCursors((c) => c.slice(0, -1)) : null,
    older: next ? () => setCursors((c) => [...c, next]) : null,
  };
}

/** A list that grows a page at a time: the first page of `path` (which carries the
 * filters and the page size), then each `more()` appends the page after the last one.
 * A new `path` starts again from its first page. */
export function useGrowingList(path, onUnauthorized) {
  const [state, setState] = useState({ items: [], next: null, loading: Boolean(path), error: null });
  const generation = useRef(0);
  const load = useCallback(
    async (cursor, append) => {
      const mine = generation.current;
      setState((s) => ({ ...s, loading: true }));
      try {
        const separator = path.includes('?') ? '&' : '?';
        const data = await api(cursor ? `${path}${separator}${query({ cursor }).slice(1)}` : path);
        if (mine !== generation.current) return;
        setState((s) => ({
          items: append ? [...s.items, ...(data.items || [])] : data.items || [],
          next: data.next || null,
          loading: false,
          error: null,
        }));
      } catch (error) {
        if (mine !== generation.current) return;
        if (error.status === 401 && onUnauthorized) {
          onUnauthorized();
          return;
        }
        setState((s) => ({ ...s, loading: false, error }));
      }
    },
    // onUnauthorized is stable enough: a new one only comes with a new page.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [path],
  );
  useEffect(() => {
    if (!path) return;
    generation.current += 1;
    load(null, false);
  }, [path, load]);
  return { ...state, more: state.next ? () => load(state.next, true) : null };
}

/** The status filter of a list. */
export function StatusFilter({ id, list, statuses, anyLabel = 'Any' }) {
  return (
    <form className="filters" onSubmit={(e) => e.preventDefault()}>
      <div className="field">
        <label htmlFor={id}>Status</label>
        <select id={id} value={list.status} onChange={(e) => list.setStatus(e.target.value)}>
          <option value="">{anyLabel}</option>
          {statuses.map((s) => (
            <option key={s} value={s}>
              {statusText(s)}
            </option>
          ))}
        </select>
      </div>
    </form>
  );
}

/** Buttons to the newer and older pages of a list. */
export function Pager({ list, newer = 'Newer', older = 'Older' }) {
  return (
    <div className="pager">
      {list.newer && (
        <button type="button" className="secondary" onClick={list.newer}>
          {newer}
        </button>
      )}
      {list.older && (
        <button type="button" className="secondary" onClick={list.older}>
          {older}
        </button>
      )}
    </div>
  );
}
