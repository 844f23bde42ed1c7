// A bundle's component graph: the Mermaid flowchart the catalog API serves, drawn by
// Mermaid in the browser, each component coloured by its state, with a table beside it
// that says the same in words.

import { useEffect, useId, useState } from 'react';

import { Status } from './ui.jsx';

const COLOURS = {
  pending: 'fill:#f2f4f7,stroke:#667085,color:#101828',
  in_progress: 'fill:#dbeafe,stroke:#1d4ed8,color:#101828',
  awaiting_fulfillment: 'fill:#fef3c7,stroke:#b45309,color:#101828',
  completed: 'fill:#dcfce7,stroke:#15803d,color:#101828',
  kept: 'fill:#dcfce7,stroke:#15803d,color:#101828',
  failed: 'fill:#fee2e2,stroke:#b91c1c,color:#101828',
  outcome_unknown: 'fill:#ffedd5,stroke:#c2410c,stroke-dasharray:4 2,color:#101828',
  rejected: 'fill:#fee2e2,stroke:#b91c1c,color:#101828',
  not_started: 'fill:#f2f4f7,stroke:#98a2b3,stroke-dasharray:2 2,color:#475467',
  rolled_back: 'fill:#ede9fe,stroke:#6d28d9,color:#101828',
  deleted: 'fill:#e5e7eb,stroke:#374151,color:#101828',
};

/** The flowchart with a class per component state (nodes are `c_<component id>`). */
export function styled(graph, components) {
  if (!components?.length) return graph;
  const lines = [graph.trimEnd()];
  const used = new Set(components.map((c) => c.status));
  for (const status of used) {
    if (COLOURS[status]) lines.push(`  classDef ${status} ${COLOURS[status]}`);
  }
  for (const c of components) {
    if (COLOURS[c.status]) lines.push(`  class c_${c.id} ${c.status}`);
  }
  return `${lines.join('\n')}\n`;
}

export function Graph({ graph, components, label }) {
  const id = useId().replace(/[^a-zA-Z0-9]/g, '');
  const [svg, setSvg] = useState(null);
  const [error, setError] = useState(null);
  const text = styled(graph || '', components);

  useEffect(() => {
    if (!graph) return undefined;
    let live = true;
    (async () => {
      try {
        const { default: mermaid } = await import('mermaid');
        mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'neutral', flowchart: { htmlLabels: true } });
        const { svg: drawn } = await mermaid.render(`graph-${id}`, text);
        if (live) setSvg(drawn);
      } catch (e) {
        if (live) setError(String(e.message || e));
      }
    })();
    return () => {
      live = false;
    };
  }, [graph, text, id]);

  return (
    <figure className="graph">
      {/* The drawing repeats the table below, which screen readers read instead. */}
      {svg ? (
        <div className="graph-drawing" aria-hidden="true" data-testid="graph" dangerouslySetInnerHTML={{ __html: svg }} />
      ) : error ? (
        <p className="muted">The graph cannot be drawn: {error}</p>
      ) : (
        <p className="muted">Drawing the graph…</p>
      )}
      <figcaption>{label}</figcaption>
      {components?.length ? (
        <table className="components">
          <caption className="visually-hidden">Components</caption>
          <thead>
            <tr>
              <th scope="col">Component</th>
              <th scope="col">Item</th>
              <th scope="col">After</th>
              <th scope="col">State</th>
              <th scope="col">Last update</th>
            </tr>
          </thead>
          <tbody>
            {components.map((c) => (
              <tr key={c.id} data-component={c.id}>
                <th scope="row">{c.id}</th>
                <td>
                  <a href={`#/items/${encodeURIComponent(c.item)}`}>{c.item}</a>
                </td>
                <td>{c.dependsOn?.length ? c.dependsOn.join(', ') : '—'}</td>
                <td>{c.status ? <Status value={c.status} /> : '—'}</td>
                <td>
                  {c.ticket ? (
                    <a href={c.ticket.url} target="_blank" rel="noreferrer">
                      JIRA {c.ticket.key}
                    </a>
                  ) : (
                    c.message || ''
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </figure>
  );
}
