import { useState } from 'react';

import { query } from '../api.js';
import { Heading, Loading, Problem, Status, statusText, useApi, when } from '../ui.jsx';

const STATUSES = ['ready', 'drifted', 'provisioning', 'updating', 'deleting', 'failed', 'deleted'];

/** What has been provisioned, with drift found by verification. */
export function ResourceList({ onUnauthorized }) {
  const [status, setStatus] = useState('');
  const [cursors, setCursors] = useState([null]);
  const cursor = cursors[cursors.length - 1];
  const { data, error, loading } = useApi(`/resources${query({ status, cursor, limit: 50 })}`, {
    onUnauthorized,
    every: 5000,
  });

  return (
    <>
      <Heading>Resources</Heading>
      <p className="muted">
        Everything requests provisioned and you may see. Each is verified against its target before every change and
        periodically; a difference marks it drifted.
      </p>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="resource-status">Status</label>
          <select
            id="resource-status"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setCursors([null]);
            }}
          >
            <option value="">Any (but deleted)</option>
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
          <caption className="visually-hidden">Resources</caption>
          <thead>
            <tr>
              <th scope="col">Resource</th>
              <th scope="col">Item</th>
              <th scope="col">Status</th>
              <th scope="col">Drift</th>
              <th scope="col">Verified</th>
            </tr>
          </thead>
          <tbody>
            {data.items.map((r) => (
              <tr key={r.id}>
                <td>
                  <a href={`#/resources/${encodeURIComponent(r.id)}`}>
                    <code>{r.component ? `${r.stack.slice(0, 8)}….${r.component}` : `${r.id.slice(0, 8)}…`}</code>
                    <span className="visually-hidden"> resource {r.id}</span>
                  </a>
                  {r.kind === 'stack' && <span className="pill">stack</span>}
                </td>
                <td>{r.item}</td>
                <td>
                  <Status value={r.status} />
                </td>
                <td>{r.drift?.length ? `${r.drift.length} attribute${r.drift.length === 1 ? '' : 's'}` : 'none'}</td>
                <td>{when(r.verifiedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>No resources{status ? ` with status ${statusText(status)}` : ''}.</p>
      )}
      <div className="pager">
        {cursors.length > 1 && (
          <button type="button" className="secondary" onClick={() => setCursors((c) => c.slice(0, -1))}>
            Previous
          </button>
        )}
        {data?.next && (
          <button type="button" className="secondary" onClick={() => setCursors((c) => [...c, data.next])}>
            Next
          </button>
        )}
      </div>
    </>
  );
}
