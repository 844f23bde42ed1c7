import { Heading, Loading, Pager, Problem, Status, StatusFilter, usePagedList, when } from '../ui.jsx';

const STATUSES = ['submitted', 'in_progress', 'awaiting_fulfillment', 'awaiting_approval', 'paused', 'completed', 'failed', 'rejected', 'cancelled'];

/** The signed-in user's requests, newest first, a page at a time. */
export function RequestList({ onUnauthorized }) {
  const list = usePagedList('/requests', 25, onUnauthorized);
  const { data, error, loading } = list;

  return (
    <>
      <Heading>My requests</Heading>
      <StatusFilter id="status" list={list} statuses={STATUSES} />
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
      <Pager list={list} />
    </>
  );
}
