import { useState } from 'react';

import { TERMINAL, api, getSettings } from '../api.js';
import { Graph } from '../Graph.jsx';
import { Stages } from './Approvals.jsx';
import { Heading, Loading, Problem, Status, Values, duration, useApi, when } from '../ui.jsx';

const POLL_MS = 1000;

/** The parts of a lead time, as the request page names them. */
const LEAD_PARTS = [
  ['queuedMs', 'queued'],
  ['approvalMs', 'waiting for approval'],
  ['scheduledMs', 'waiting for a window'],
  ['personMs', 'with a person'],
  ['automatedMs', 'automated'],
  ['pausedMs', 'paused'],
];

/** One request: its status and timeline, followed live until it ends. */
export function RequestPage({ id, user, onUnauthorized }) {
  const done = (r) => TERMINAL.has(r?.status);
  const request = useApi(`/requests/${encodeURIComponent(id)}`, { every: POLL_MS, until: done, onUnauthorized });
  const timeline = useApi(`/requests/${encodeURIComponent(id)}/events`, { every: POLL_MS, until: done, onUnauthorized });
  const r = request.data;
  const bundle = useApi(r?.kind === 'bundle' ? `/catalog/bundles/${encodeURIComponent(r.target)}` : null, {
    onUnauthorized,
  });
  const [cancelError, setCancelError] = useState(null);

  if (request.loading && !request.data) return <Loading />;
  if (!r) {
    return (
      <>
        <Heading>Request</Heading>
        <Problem error={request.error} />
      </>
    );
  }
  const cancel = async () => {
    setCancelError(null);
    try {
      await api(`/requests/${encodeURIComponent(r.id)}/cancel`, { method: 'POST' });
      request.reload();
      timeline.reload();
    } catch (e) {
      setCancelError(e);
    }
  };
  const redrive = async () => {
    setCancelError(null);
    try {
      await api(`/requests/${encodeURIComponent(r.id)}/redrive`, { method: 'POST' });
      request.reload();
      timeline.reload();
    } catch (e) {
      setCancelError(e);
    }
  };
  const events = timeline.data?.events || [];
  const targetHref = `#/${r.kind === 'bundle' ? 'bundles' : 'items'}/${encodeURIComponent(r.target)}`;
  const mayCancel = !TERMINAL.has(r.status) && r.requester?.sub === user.sub;
  const resourceId = r.resource || (r.status === 'completed' && r.operation === 'provision' ? r.id : null);

  return (
    <article>
      <p className="crumbs">
        <a href="#/requests">My requests</a> / <code>{r.id}</code>
      </p>
      <Heading title={`Request for ${r.target}`}>
        {r.operation && r.operation !== 'provision' ? `${r.operation[0].toUpperCase()}${r.operation.slice(1)} of ` : ''}
        <a href={targetHref}>{r.target}</a>
      </Heading>
      <div className="summary" aria-live="polite">
        <p>
          Status: <Status value={r.status} />
          {!TERMINAL.has(r.status) && <span className="muted"> (updating live)</span>}
        </p>
        {r.reason && (
          <p className="reason">
            <strong>Why:</strong> {r.reason}
          </p>
        )}
        {r.notBefore && !TERMINAL.has(r.status) && (
          <p>
            <strong>Waiting until {when(r.notBefore)}</strong>
            {r.waitingFor ? `: it ${r.waitingFor}` : ' (scheduled)'}
          </p>
        )}
        {r.calendarOverride && (
          <p className="muted">The change calendars were overridden by an admin: {r.calendarOverride}</p>
        )}
        {r.ticket && (
          <p>
            Fulfilled by a person through JIRA:{' '}
            <a href={r.ticket.url} target="_blank" rel="noreferrer">
              {r.ticket.key}
            </a>
            {getSettings().sandbox && r.status === 'awaiting_fulfillment' && (
              <>
                {' '}
                (sandbox: resolve it on the <a href="#/sandbox">Sandbox JIRA</a> page)
              </>
            )}
          </p>
        )}
        {resourceId && (
          <p>
            Resource: <a href={`#/resources/${encodeURIComponent(resourceId)}`}>{resourceId}</a>
          </p>
        )}
      </div>
      <dl className="facts">
        <div>
          <dt>Requested by</dt>
          <dd>{r.requester?.email || r.requester?.sub}</dd>
        </div>
        <div>
          <dt>Owner team</dt>
          <dd>{r.owner}</dd>
        </div>
        <div>
          <dt>Submitted</dt>
          <dd>{when(r.createdAt)}</dd>
        </div>
        <div>
          <dt>Catalog version</dt>
          <dd>
            <code>{r.catalogVersion}</code>
          </dd>
        </div>
        {r.leadTime && (
          <div>
            <dt>Lead time</dt>
            <dd className="lead-time">
              {duration(r.leadTime.totalMs)}{' '}
              <span className="muted">
                ({LEAD_PARTS.filter(([key]) => r.leadTime[key] > 0)
                  .map(([key, label]) => `${duration(r.leadTime[key])} ${label}`)
                  .join(', ')})
              </span>
            </dd>
          </div>
        )}
      </dl>
      <Clocks clocks={r.sla} />
      {(mayCancel || r.status === 'paused') && (
        <p>
          {r.status === 'paused' && (
            <button type="button" onClick={redrive}>
              Redrive from the failed component (admins)
            </button>
          )}{' '}
          {mayCancel && (
            <button type="button" className="secondary" onClick={cancel}>
              Cancel request
            </button>
          )}
        </p>
      )}
      <Problem error={cancelError || request.error} />
      <Stages approvals={r.approvals} />

      {r.kind === 'bundle' && bundle.data?.graph && (
        <section aria-labelledby="graph-heading">
          <h2 id="graph-heading">Components</h2>
          <Graph
            graph={bundle.data.graph}
            components={timeline.data?.components || bundle.data.components}
            label={`Components of ${r.target}, coloured by their state.`}
          />
        </section>
      )}

      <section aria-labelledby="outputs-heading">
        <h2 id="outputs-heading">Outputs</h2>
        <Values values={r.outputs} label="Outputs" empty={TERMINAL.has(r.status) ? 'None.' : 'Not yet: they come when the request completes.'} />
      </section>

      <section aria-labelledby="fields-heading">
        <h2 id="fields-heading">What was asked for</h2>
        <Values values={r.fields} label="Fields" />
      </section>

      <section aria-labelledby="timeline-heading">
        <h2 id="timeline-heading">Timeline</h2>
        <ol className="timeline" aria-label="Timeline">
          {events.map((e) => (
            <li key={e.seq} className={`event event-${e.kind}`} data-component={e.component}>
              <time dateTime={e.at}>{when(e.at)}</time>
              <span className="kind">{e.kind.replace(/_/g, ' ')}</span>
              {e.component && <span className="component">{e.component}</span>}
              <span className="actor">by {e.actor}</span>
              {e.detail?.ticket?.url && (
                <a className="ticket" href={e.detail.ticket.url} target="_blank" rel="noreferrer">
                  {e.detail.ticket.key}
                </a>
              )}
              {e.message && <span className="message">{e.message}</span>}
            </li>
          ))}
        </ol>
        <CommentForm id={r.id} onAdded={timeline.reload} />
      </section>
    </article>
  );
}

/** A comment on the request: onto its timeline and, when a person fulfils it, its JIRA issue. */
function CommentForm({ id, onAdded }) {
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      await api(`/requests/${encodeURIComponent(id)}/comments`, { method: 'POST', body: { text } });
      setText('');
      onAdded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="comment-form" onSubmit={submit}>
      <label htmlFor="comment-text">Add a comment</label>
      <textarea id="comment-text" rows={2} maxLength={5000} value={text} onChange={(e) => setText(e.target.value)} />
      <p>
        <button type="submit" disabled={busy || !text.trim()}>
          Comment
        </button>
      </p>
      <Problem error={error} />
    </form>
  );
}

/** The request's service level clocks: how much of each target it has used. */
function Clocks({ clocks }) {
  if (!clocks?.length) return null;
  const names = { fulfil: 'Fulfilment', firstResponse: 'First response' };
  return (
    <section aria-labelledby="sla-heading">
      <h2 id="sla-heading">Service levels</h2>
      <table className="list sla">
        <caption className="visually-hidden">Service level clocks</caption>
        <thead>
          <tr>
            <th scope="col">Target</th>
            <th scope="col">Used</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {clocks.map((c) => (
            <tr key={c.target} className={`sla-${c.state}`}>
              <td>
                {names[c.target] || c.target} within {duration(c.targetMs)}
                {c.businessHours && <span className="muted"> ({c.businessHours})</span>}
              </td>
              <td>
                <meter min={0} max={c.targetMs} low={c.atRiskMs} high={c.targetMs} optimum={0} value={Math.min(c.elapsedMs, c.targetMs)} aria-label={`${names[c.target] || c.target} used`}>
                  {duration(c.elapsedMs)}
                </meter>{' '}
                {duration(c.elapsedMs)}
              </td>
              <td className="sla-state">{c.state.replace(/_/g, ' ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
