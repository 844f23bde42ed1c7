import { useState } from 'react';

import { api } from '../api.js';
import { Heading, Loading, Problem, useApi, when } from '../ui.jsx';

/** Who may decide a stage, in words. */
export function approversText(stage) {
  const a = stage.approvers || {};
  const parts = [];
  if (a.owner) parts.push(`team ${stage.owner}`);
  (a.teams || []).forEach((t) => parts.push(`team ${t}`));
  (a.groups || []).forEach((g) => parts.push(`group ${g}`));
  (a.users || []).forEach((u) => parts.push(u));
  const rule = stage.require === 'all' ? 'all of' : stage.require === 'any' ? 'one of' : `${stage.require} of`;
  return `${rule} ${parts.join(', ')}`;
}

/** One stage awaiting the signed-in user: approve with a comment, or deny with a reason. */
function Decide({ stage, onDecided }) {
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const id = `decision-${stage.id.replace(/[^a-zA-Z0-9]/g, '-')}`;
  const decide = async (verdict) => {
    setError(null);
    setBusy(true);
    try {
      const body = verdict === 'approve' ? (text.trim() ? { comment: text } : null) : { reason: text };
      await api(`/approvals/${encodeURIComponent(stage.id)}/${verdict}`, {
        method: 'POST',
        body: body ?? undefined,
      });
      onDecided();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li className="card">
      <h2>
        <a href={`#/requests/${encodeURIComponent(stage.requestId)}`}>{stage.target}</a>: {stage.policy} / {stage.stage}
      </h2>
      <p>
        Requested by <strong>{stage.requester}</strong>; {approversText(stage)} must approve by {when(stage.expiresAt)}
        {stage.escalated ? ' (escalated)' : ''}.
      </p>
      {stage.decisions?.length > 0 && (
        <p className="muted">
          So far: {stage.decisions.map((d) => `${d.by} ${d.approved ? 'approved' : 'denied'}`).join(', ')}.
        </p>
      )}
      <label htmlFor={id}>Comment (required to deny)</label>
      <textarea id={id} rows={2} value={text} onChange={(e) => setText(e.target.value)} />
      <p>
        <button type="button" disabled={busy} onClick={() => decide('approve')}>
          Approve
        </button>{' '}
        <button type="button" className="secondary" disabled={busy} onClick={() => decide('deny')}>
          Deny
        </button>
      </p>
      <Problem error={error} />
    </li>
  );
}

/** The approval stages that await the signed-in user. */
export function Approvals({ onUnauthorized }) {
  const list = useApi('/approvals', { every: 5000, onUnauthorized });
  if (list.loading && !list.data) return <Loading />;
  const items = list.data?.items || [];
  return (
    <>
      <Heading>Approvals</Heading>
      <Problem error={list.error} />
      {items.length ? (
        <ul className="cards" aria-label="Approvals awaiting you">
          {items.map((stage) => (
            <Decide key={stage.id} stage={stage} onDecided={list.reload} />
          ))}
        </ul>
      ) : (
        <p>Nothing awaits your approval.</p>
      )}
    </>
  );
}

/** A request's stages and their decisions, for the request page. */
export function Stages({ approvals }) {
  if (!approvals?.length) return null;
  return (
    <section aria-labelledby="approvals-heading">
      <h2 id="approvals-heading">Approvals</h2>
      <table className="list">
        <thead>
          <tr>
            <th scope="col">Stage</th>
            <th scope="col">Who</th>
            <th scope="col">Status</th>
            <th scope="col">Decisions</th>
          </tr>
        </thead>
        <tbody>
          {approvals.map((a) => (
            <tr key={a.id}>
              <td>
                {a.policy} / {a.stage}
              </td>
              <td>{approversText(a)}</td>
              <td>{a.status === 'pending' ? `pending until ${when(a.expiresAt)}` : a.status}</td>
              <td>
                {(a.decisions || [])
                  .map((d) => `${d.by} ${d.approved ? 'approved' : 'denied'}${d.comment ? `: ${d.comment}` : ''}${d.onBehalf ? ` (on behalf: ${d.onBehalf})` : ''}`)
                  .join('; ') || '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
