import { useState } from 'react';

import { api } from '../api.js';
import { Heading, Loading, Problem, useApi } from '../ui.jsx';

/**
 * The sandbox's JIRA stand-in: its tickets, and the resolution a person would make in a
 * real JIRA (which sends the same webhook to the orchestrator).
 */
export function Sandbox() {
  const { data, error, loading, reload } = useApi('/sandbox/jira/issues', { every: 2000 });
  const [result, setResult] = useState(null);
  const [failure, setFailure] = useState(null);

  const resolve = async (key, resolution) => {
    setFailure(null);
    try {
      const comment = resolution === 'Done' ? undefined : 'Declined from the sandbox page.';
      const answer = await api(`/sandbox/jira/issues/${encodeURIComponent(key)}/resolve`, {
        method: 'POST',
        body: { resolution, ...(comment ? { comment } : {}) },
      });
      setResult(`${key} resolved as ${answer.resolution}; the orchestrator's webhook answered ${answer.webhookStatus}.`);
      reload();
    } catch (e) {
      setFailure(e);
    }
  };

  return (
    <>
      <Heading>Sandbox JIRA</Heading>
      <p>
        A stand-in for JIRA, on this machine only. Resolving a ticket here is what the platform team does in JIRA: the
        orchestrator hears of it through the same webhook.
      </p>
      <p role="status" aria-live="polite">
        {result}
      </p>
      <Problem error={failure || error} />
      {loading && !data ? (
        <Loading />
      ) : data?.issues?.length ? (
        <table className="list">
          <caption className="visually-hidden">Sandbox tickets</caption>
          <thead>
            <tr>
              <th scope="col">Key</th>
              <th scope="col">Summary</th>
              <th scope="col">Status</th>
              <th scope="col">Resolve</th>
            </tr>
          </thead>
          <tbody>
            {[...data.issues].reverse().map((i) => (
              <tr key={i.key} data-issue={i.key}>
                <th scope="row">{i.key}</th>
                <td>{i.summary}</td>
                <td>
                  {i.status}
                  {i.resolution ? ` (${i.resolution})` : ''}
                </td>
                <td>
                  {i.resolution ? (
                    '—'
                  ) : (
                    <div className="actions">
                      <button type="button" onClick={() => resolve(i.key, 'Done')} aria-label={`Resolve ${i.key} as done`}>
                        Done
                      </button>
                      <button
                        type="button"
                        className="secondary"
                        onClick={() => resolve(i.key, "Won't Do")}
                        aria-label={`Resolve ${i.key} as won't do`}
                      >
                        Won&apos;t do
                      </button>
                    </div>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>No tickets yet: request a manual item (such as the EC2 Auto Scaling group) to get one.</p>
      )}
    </>
  );
}
