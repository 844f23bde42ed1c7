import { Heading, Loading, Pager, Problem, Status, StatusFilter, statusText, usePagedList, when } from '../ui.jsx';

const STATUSES = ['ready', 'drifted', 'provisioning', 'updating', 'deleting', 'failed', 'deleted'];

/** What has been provisioned, with drift found by verification. */
export function ResourceList({ onUnauthorized }) {
  const list = usePagedList('/resources', 50, onUnauthorized);
  const { data, error, loading, status } = list;

  return (
    <>
      <Heading>Resources</Heading>
      <p className="muted">
        Everything requests provisioned and you may see. Each is verified against its target before every change and
        periodically; a difference marks it drifted.
      </p>
      <StatusFilter id="resource-status" list={list} statuses={STATUSES} anyLabel="Any (but deleted)" />
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
      <Pager list={list} newer="Previous" older="Next" />
    </>
  );
}
