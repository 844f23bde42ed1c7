import { useMemo, useState } from 'react';

import { query } from '../api.js';
import { Heading, Loading, Problem, useApi } from '../ui.jsx';

/** The catalog: items and bundles, searchable and filtered by category, owner and tag. */
export function Catalog({ onUnauthorized }) {
  const params = new URLSearchParams(window.location.hash.split('?')[1] || '');
  const [filter, setFilter] = useState({
    q: params.get('q') || '',
    category: params.get('category') || '',
    owner: params.get('owner') || '',
    tag: params.get('tag') || '',
  });
  const q = query(filter);
  // The whole catalog gives the filters' choices (not what the filter left); the API
  // filters only when a filter is set.
  const all = useApi('/catalog/items', { onUnauthorized });
  const allBundles = useApi('/catalog/bundles', { onUnauthorized });
  const filtered = useApi(q ? `/catalog/items${q}` : null, { onUnauthorized });
  const filteredBundles = useApi(q ? `/catalog/bundles${q}` : null, { onUnauthorized });
  const items = q ? filtered : all;
  const bundles = q ? filteredBundles : allBundles;

  const choices = useMemo(() => {
    const every = [...(all.data?.items || []), ...(allBundles.data?.items || [])];
    const pick = (f) => [...new Set(every.flatMap(f))].sort();
    return {
      category: pick((i) => [i.category]),
      owner: pick((i) => [i.owner]),
      tag: pick((i) => i.tags || []),
    };
  }, [all.data, allBundles.data]);

  const set = (key) => (e) => setFilter((f) => ({ ...f, [key]: e.target.value }));
  const offerings = [...(bundles.data?.items || []), ...(items.data?.items || [])];
  const loading = items.loading || bundles.loading;

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
            {offerings.length} offering{offerings.length === 1 ? '' : 's'}
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
        </>
      )}
    </>
  );
}
