import { useState } from 'react';

import { api } from '../api.js';
import { RequestForm } from '../RequestForm.jsx';
import { DriftTable, Heading, Loading, Problem, Status, Values, statusText, useApi, when } from '../ui.jsx';

/** One resource: its record, drift, history, and day-2 changes (planned, then applied). */
export function ResourcePage({ id, onUnauthorized }) {
  const path = `/resources/${encodeURIComponent(id)}`;
  const resource = useApi(path, { onUnauthorized, every: 3000 });
  const history = useApi(`${path}/history`, { onUnauthorized, every: 3000 });
  const r = resource.data;
  const item = useApi(r && r.kind === 'item' ? `/catalog/items/${encodeURIComponent(r.item)}` : null, { onUnauthorized });
  const [verification, setVerification] = useState(null);
  const [plan, setPlan] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  if (resource.loading && !resource.data) return <Loading />;
  if (!r) {
    return (
      <>
        <Heading>Resource</Heading>
        <Problem error={resource.error} />
      </>
    );
  }

  const act = async (work) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const verify = () =>
    act(async () => {
      setVerification(await api(`${path}/verify`, { method: 'POST' }));
      resource.reload();
      history.reload();
    });
  const planChange = async (fields) => {
    setError(null);
    const p = await api(`${path}/changes`, { method: 'POST', body: { fields } });
    setPlan({ ...p, fields });
  };
  const apply = () =>
    act(async () => {
      const accepted =
        plan.operation === 'delete'
          ? await api(path, { method: 'DELETE' })
          : await api(`${path}/changes`, { method: 'POST', body: { fields: plan.fields, apply: true } });
      window.location.hash = `#/requests/${encodeURIComponent(accepted.request.id)}`;
    });
  const planDelete = () => act(async () => setPlan(await api(`${path}?dryRun=true`, { method: 'DELETE' })));
  const live = r.status !== 'deleted';

  return (
    <article>
      <p className="crumbs">
        <a href="#/resources">Resources</a> / <code>{r.id}</code>
      </p>
      <Heading title={`Resource ${r.id}`}>
        {r.item} <span className="muted">{r.component ? `(component ${r.component})` : r.kind === 'stack' ? '(stack)' : ''}</span>
      </Heading>
      <p>
        Status: <Status value={r.status} /> · serial {r.serial} · last verified {when(r.verifiedAt)}
      </p>
      {r.lock && (
        <p className="note" role="note">
          Locked by {r.lock.holder} for <a href={`#/requests/${encodeURIComponent(r.lock.requestId)}`}>a change</a> until{' '}
          {when(r.lock.expiresAt)}.
        </p>
      )}
      {r.drift?.length > 0 && <DriftTable drift={r.drift} />}
      <dl className="facts">
        <div>
          <dt>Owner team</dt>
          <dd>{r.owner}</dd>
        </div>
        <div>
          <dt>Definition</dt>
          <dd className="definition">
            {r.outdated ? (
              <strong>Made by an older definition of {r.item}: a change applies the current one.</strong>
            ) : (
              'The current definition of its item.'
            )}{' '}
            {r.itemDigest && <code>{r.itemDigest}</code>}
          </dd>
        </div>
        <div>
          <dt>Requested by</dt>
          <dd>{r.requester}</dd>
        </div>
        <div>
          <dt>Provisioned by</dt>
          <dd>
            <a href={`#/requests/${encodeURIComponent(r.requestId)}`}>request {r.requestId.slice(0, 8)}…</a>
          </dd>
        </div>
        {r.stack && (
          <div>
            <dt>Part of</dt>
            <dd>
              <a href={`#/resources/${encodeURIComponent(r.stack)}`}>stack {r.stack.slice(0, 8)}…</a>
            </dd>
          </div>
        )}
      </dl>
      {live && (
        <div className="actions">
          <button type="button" onClick={verify} disabled={busy}>
            Verify now
          </button>
          {!r.component && (
            <button type="button" className="danger" onClick={planDelete} disabled={busy}>
              Plan deletion
            </button>
          )}
        </div>
      )}
      {verification && (
        <p role="status">
          Verification: <Status value={verification.outcome} />
          {verification.reason ? ` (${verification.reason})` : ''}
        </p>
      )}
      <Problem error={error} />
      {plan && <Plan plan={plan} onApply={apply} onDiscard={() => setPlan(null)} busy={busy} />}

      {r.members?.length > 0 && (
        <section aria-labelledby="members-heading">
          <h2 id="members-heading">Components</h2>
          <ul>
            {r.members.map((m) => (
              <li key={m.resourceId}>
                <a href={`#/resources/${encodeURIComponent(m.resourceId)}`}>{m.component}</a> ({m.item})
                {m.dependsOn?.length ? <span className="muted"> after {m.dependsOn.join(', ')}</span> : null}
              </li>
            ))}
          </ul>
        </section>
      )}

      <section aria-labelledby="outputs-heading">
        <h2 id="outputs-heading">Outputs</h2>
        <Values values={r.outputs} label="Outputs" />
      </section>
      <section aria-labelledby="inputs-heading">
        <h2 id="inputs-heading">Inputs</h2>
        <Values values={r.inputs} label="Inputs" />
      </section>

      {live && r.kind === 'item' && item.data?.form && (
        <section aria-labelledby="change-heading">
          <h2 id="change-heading">Change it</h2>
          <p className="muted">Changes are planned first: you see what would be called before anything is.</p>
          <RequestForm form={item.data.form} initial={r.inputs} submitLabel="Plan change" onSubmit={planChange} />
        </section>
      )}

      <section aria-labelledby="history-heading">
        <h2 id="history-heading">History</h2>
        <ol className="timeline" aria-label="History">
          {(history.data?.changes || []).map((c) => (
            <li key={`${c.serial}-${c.kind}-${c.at}`}>
              <time dateTime={c.at}>{when(c.at)}</time>
              <span className="kind">{c.kind.replace(/_/g, ' ')}</span>
              <span className="actor">by {c.actor}</span>
              <span className="message">
                serial {c.serial}, {statusText(c.status)}
                {c.requestId ? (
                  <>
                    {' '}
                    (<a href={`#/requests/${encodeURIComponent(c.requestId)}`}>request</a>)
                  </>
                ) : null}
              </span>
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}

function Plan({ plan, onApply, onDiscard, busy }) {
  const blocked = plan.errors?.length > 0;
  return (
    <section className="plan" aria-labelledby="plan-heading">
      <h2 id="plan-heading">{plan.operation === 'delete' ? 'Deletion plan' : 'Change plan'}</h2>
      <p>
        Verification: <Status value={plan.verification?.outcome} />
        {plan.verification?.reason ? ` (${plan.verification.reason})` : ''}
      </p>
      {plan.verification?.drift?.length > 0 && <DriftTable drift={plan.verification.drift} />}
      {plan.changes?.length > 0 && (
        <table>
          <caption>Inputs that change</caption>
          <thead>
            <tr>
              <th scope="col">Field</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {plan.changes.map((c) => (
              <tr key={c.field}>
                <th scope="row">{c.field}</th>
                <td>
                  <code>{JSON.stringify(c.before)}</code>
                </td>
                <td>
                  <code>{JSON.stringify(c.after)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {plan.operation !== 'delete' && !plan.changes?.length && <p>Nothing changes.</p>}
      <h3>Calls it would make</h3>
      {plan.actions?.length ? (
        <ol>
          {plan.actions.map((a, i) => (
            <li key={i}>
              <code>
                {a.list}/{a.id}
              </code>{' '}
              ({a.type}){a.error ? <span className="error-text"> — {a.error}</span> : null}
              {a.sends && <pre>{JSON.stringify(a.sends, null, 2)}</pre>}
            </li>
          ))}
        </ol>
      ) : (
        <p className="muted">{plan.ticket ? 'A JIRA issue for a person.' : 'None.'}</p>
      )}
      {plan.warnings?.map((w) => (
        <p key={w} className="note">
          {w}
        </p>
      ))}
      {plan.errors?.map((e) => (
        <p key={e} className="error-text">
          {e}
        </p>
      ))}
      <div className="actions">
        <button type="button" className={plan.operation === 'delete' ? 'danger' : undefined} onClick={onApply} disabled={busy || blocked}>
          {plan.operation === 'delete' ? 'Delete' : 'Apply change'}
        </button>
        <button type="button" className="secondary" onClick={onDiscard}>
          Discard
        </button>
      </div>
    </section>
  );
}
