import { useState } from 'react';

import { query } from '../api.js';
import { Heading, Loading, Problem, useApi, useGrowingList } from '../ui.jsx';

/** Offerings of each kind read per page: the catalog may hold thousands. */
const PAGE = 48;

/** The catalog: items and bundles, searchable and filtered by category, owner and tag. */
export function Catalog({ onUnauthorized }) {
  const params = new URLSearchParams(window.location.hash.split('?')[1] || '');
  const [filter, setFilter] = useState({
    q: params.get('q') || '',
    category: params.get('category') || '',
    owner: params.get('owner') || '',
    tag: params.get('tag') || '',
  });
  // The filters' choices come from the whole catalog (not from what a filter left); the
  // lists are read a page at a time, filtered by the API.
  const facets = useApi('/catalog/facets', { onUnauthorized });
  const choices = {
    category: facets.data?.categories || [],
    owner: facets.data?.owners || [],
    tag: facets.data?.tags || [],
  };
  const q = query({ ...filter, limit: PAGE });
  const items = useGrowingList(`/catalog/items${q}`, onUnauthorized);
  const bundles = useGrowingList(`/catalog/bundles${q}`, onUnauthorized);

  const set = (key) => (e) => setFilter((f) => ({ ...f, [key]: e.target.value }));
  const offerings = [...bundles.items, ...items.items];
  const loading = items.loading || bundles.loading;
  const more = items.more || bundles.more;
  const count = `${offerings.length} offering${offerings.length === 1 ? '' : 's'}`;

  return (
    <>
      <Heading>Service catalog</Heading>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="q">Search</label>
          <input id="q" type="search" value={filter.q} onChange={set('q')} placeholder="postgres, queue, eks…" />
        </div>
        {['category', 'owner', 'tag'].map((key) => (
          <div className="field" key={key}>
            <label htmlFor={`filter-${key}`}>{key === 'owner' ? 'Owner team' : key[0].toUpperCase() + key.slice(1)}</label>
            <select id={`filter-${key}`} value={filter[key]} onChange={set(key)}>
              <option value="">Any</option>
              {choices[key].map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          </div>
        ))}
      </form>
      <Problem error={items.error || bundles.error} />
      {loading && !offerings.length ? (
        <Loading />
      ) : (
        <>
          <p className="muted" role="status" aria-live="polite">
            {more ? `${count} shown; more match` : count}
          </p>
          <ul className="cards" aria-label="Offerings">
            {offerings.map((o) => (
              <li key={`${o.kind}:${o.name}`} className="card">
                <h2>
                  <a href={`#/${o.kind === 'bundle' ? 'bundles' : 'items'}/${encodeURIComponent(o.name)}`}>{o.title}</a>
                </h2>
                <p className="meta">
                  <span className="pill">{o.kind === 'bundle' ? 'Bundle' : o.mode === 'manual' ? 'Manual' : 'Automated'}</span>
                  <span>{o.category}</span> · <span>owned by {o.owner}</span>
                  {o.lifecycle && o.lifecycle !== 'production' ? <span> · {o.lifecycle}</span> : null}
                </p>
                <p>{o.description}</p>
                {o.tags?.length ? (
                  <ul className="tags" aria-label="Tags">
                    {o.tags.map((t) => (
                      <li key={t}>{t}</li>
                    ))}
                  </ul>
                ) : null}
                {!o.requestable && <p className="muted">You may not request this.</p>}
              </li>
            ))}
          </ul>
          {more && (
            <button
              type="button"
              disabled={loading}
              onClick={() => {
                items.more?.();
                bundles.more?.();
              }}
            >
              Show more
            </button>
          )}
        </>
      )}
    </>
  );
}
