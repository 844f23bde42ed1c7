import { useMemo } from 'react';

import { api } from '../api.js';
import { Graph } from '../Graph.jsx';
import { RequestForm } from '../RequestForm.jsx';
import { Heading, Loading, Problem, useApi } from '../ui.jsx';

/** A random key; `crypto.randomUUID` exists only on HTTPS and localhost origins. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** An item or bundle: what it is, what it gives back, and its request form. */
export function Offering({ kind, name, onUnauthorized }) {
  const path = `/catalog/${kind === 'bundle' ? 'bundles' : 'items'}/${encodeURIComponent(name)}`;
  const { data, error, loading } = useApi(path, { onUnauthorized });
  // One key per visit of the form: a double submit or a retry makes one request.
  const idempotencyKey = useMemo(newKey, []);

  if (loading && !data) return <Loading />;
  if (error) {
    return (
      <>
        <Heading>{name}</Heading>
        <Problem error={error} />
      </>
    );
  }
  const o = data;
  const submit = async (fields) => {
    const body = kind === 'bundle' ? { bundle: o.name, fields } : { item: o.name, fields };
    const request = await api('/requests', { method: 'POST', body, headers: { 'idempotency-key': idempotencyKey } });
    window.location.hash = `#/requests/${encodeURIComponent(request.id)}`;
  };
  const outputs = Object.entries(o.outputs || {});

  return (
    <article className="offering">
      <p className="crumbs">
        <a href="#/">Catalog</a> / {kind === 'bundle' ? 'Bundles' : 'Items'}
      </p>
      <Heading title={o.title}>{o.title}</Heading>
      <p className="meta">
        <span className="pill">{kind === 'bundle' ? 'Bundle' : o.mode === 'manual' ? 'Fulfilled by a person through JIRA' : 'Automated'}</span>
        <span>{o.category}</span> · <span>owned by {o.owner}</span> · <code>{o.name}</code>
      </p>
      <p className="description">{o.description}</p>
      {o.links?.length ? (
        <ul className="links" aria-label="Links">
          {o.links.map((l) => (
            <li key={l.url}>
              <a href={l.url} target="_blank" rel="noreferrer">
                {l.title || l.url}
              </a>
            </li>
          ))}
        </ul>
      ) : null}
      {kind === 'bundle' && o.graph && (
        <section aria-labelledby="components-heading">
          <h2 id="components-heading">Components</h2>
          <Graph graph={o.graph} components={o.components} label="Each component starts once those it depends on are done." />
        </section>
      )}
      {outputs.length > 0 && (
        <section aria-labelledby="outputs-heading">
          <h2 id="outputs-heading">What you get back</h2>
          <dl className="values">
            {outputs.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>
                  {v.description || ''}
                  {v.sensitive ? <em className="sensitive"> (sensitive: never shown here)</em> : null}
                </dd>
              </div>
            ))}
          </dl>
        </section>
      )}
      {o.resources?.counted > 0 && (
        <p className="versions">
          {o.resources.outdated} of the {o.resources.counted}
          {o.resources.more ? '+' : ''} resources you can see were made by an older definition of this {kind}
          {o.resources.outdated > 0 && (
            <>
              {' '}
              (<a href="#/resources">Resources</a>; a change applies the current definition)
            </>
          )}
          .
        </p>
      )}
      <Governance approvals={o.approvals} calendars={o.calendars} />
      <section aria-labelledby="form-heading">
        <h2 id="form-heading">Request it</h2>
        {o.lifecycle === 'deprecated' ? (
          <p className="deprecated">
            This {kind} is deprecated and takes no new requests
            {o.replacement ? (
              <>
                : request{' '}
                <a href={`#/${o.replacement.kind === 'bundle' ? 'bundles' : 'items'}/${encodeURIComponent(o.replacement.name)}`}>
                  {o.replacement.name}
                </a>{' '}
                instead.
              </>
            ) : (
              '.'
            )}{' '}
            What it made can still be changed from its resource page.
          </p>
        ) : o.requestable === false ? (
          <p>You are not in a group that may request this. Ask the {o.owner} team.</p>
        ) : (
          <RequestForm form={o.form} onSubmit={submit} />
        )}
      </section>
    </article>
  );
}

/** A condition on the form's fields, in words: `environment is prod`. */
function conditionText(c) {
  const field = c.path.replace(/^\$\.fields\./, '');
  if (c.equals !== undefined) return `${field} is ${JSON.stringify(c.equals)}`;
  if (c.in) return `${field} is one of ${c.in.map((v) => JSON.stringify(v)).join(', ')}`;
  const bounds = [];
  if (c.greaterThan !== undefined) bounds.push(`above ${c.greaterThan}`);
  if (c.lessThan !== undefined) bounds.push(`below ${c.lessThan}`);
  return `${field} is ${bounds.join(' and ')}`;
}

function when(conditions) {
  return conditions?.length ? ` when ${conditions.map(conditionText).join(' and ')}` : '';
}

/** The approvals and change calendars a request may meet, shown before it is made. */
function Governance({ approvals, calendars }) {
  if (!approvals?.length && !calendars?.length) return null;
  return (
    <section aria-labelledby="governance-heading">
      <h2 id="governance-heading">Approvals and change calendar</h2>
      <ul>
        {(approvals || []).map((p) => (
          <li key={p.name}>
            <strong>{p.name}</strong>
            {when(p.when)}: {p.stages.map((s) => s.name).join(', then ')} must approve before anything runs.
          </li>
        ))}
        {(calendars || []).map((c) => (
          <li key={c.name}>
            <strong>{c.title}</strong>
            {when(c.when)} ({c.timeZone}):{' '}
            {(c.freezes || []).map((f) => `${f.name} from ${f.from.replace('T', ' ')} to ${f.to.replace('T', ' ')} (${f.onConflict === 'wait' ? 'requests wait' : 'requests are refused'})`).join('; ')}
            {(c.windows || []).map((w) => `${w.name}: ${w.days.join(', ')} ${w.from}–${w.to}`).join('; ')}
          </li>
        ))}
      </ul>
    </section>
  );
}
