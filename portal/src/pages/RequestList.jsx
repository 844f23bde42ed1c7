import { useState } from 'react';

import { query } from '../api.js';
import { Heading, Loading, Problem, Status, statusText, useApi, when } from '../ui.jsx';

const STATUSES = ['submitted', 'in_progress', 'awaiting_fulfillment', 'completed', 'failed', 'rejected', 'cancelled'];

/** The signed-in user's requests, newest first, a page at a time. */
export function RequestList({ onUnauthorized }) {
  const [status, setStatus] = useState('');
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const { data, error, loading } = useApi(`/requests${query({ status, cursor, limit: 25 })}`, {
    onUnauthorized,
    every: 5000,
  });

  return (
    <>
      <Heading>My requests</Heading>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="status">Status</label>
          <select
            id="status"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setCursors([null]);
            }}
          >
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {statusText(s)}
              </option>
            ))}
          </select>
        </div>
      </form>
      <Problem error={error} />
      {loading && !data ? (
        <Loading />
      ) : data?.items?.length ? (
        <table className="list">
          <caption className="visually-hidden">Requests</caption>
          <thead>
            <tr>
              <th scope="col">Request</th>
              <th scope="col">What</th>
              <th scope="col">Status</th>
              <th scope="col">Submitted</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={`#/requests/${encodeURIComponent(r.id)}`}>
                    <code>{r.id.slice(0, 8)}…</code>
                    <span className="visually-hidden"> request {r.id}</span>
                  </a>
                </td>
                <td>
                  {r.target} <span className="muted">({r.kind}{r.operation && r.operation !== 'provision' ? `, ${r.operation}` : ''})</span>
                </td>
                <td>
                  <Status value={r.status} />
                </td>
                <td>{when(r.createdAt)}</td>
                <td>{when(r.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>
          No requests yet. <a href="#/">Browse the catalog</a> to make one.
        </p>
      )}
      <div className="pager">
        {cursors.length > 1 && (
          <button type="button" className="secondary" onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer
          </button>
        )}
        {data?.next && (
          <button type="button" className="secondary" onClick={() => setCursors((c) => [...c, data.next])}>
            Older
          </button>
        )}
      </div>
    </>
  );
}
