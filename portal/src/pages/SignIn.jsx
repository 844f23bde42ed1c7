import { useState } from 'react';

import { api, claims, setToken } from '../api.js';
import { Heading, Problem } from '../ui.jsx';

/** Sign-in with a pasted bearer token (local mode prints dev tokens when it starts). */
export function SignIn({ onSignedIn }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    const token = value.trim();
    if (!claims(token)) {
      setError({ problem: { title: 'That is not a token', detail: 'paste the whole JWT (three parts separated by dots)' } });
      return;
    }
    setBusy(true);
    try {
      // The API checks the token; the catalog is what every signed-in user may read.
      await api('/catalog/items', { token });
      setToken(token);
      onSignedIn(token);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="signin">
      <Heading>Sign in</Heading>
      <p>
        Paste your access token. In local mode, <code>orchestrator serve</code> prints tokens for a requester, a
        platform-team member and an admin when it starts; <code>orchestrator dev-token --sub NAME</code> makes others.
      </p>
      <form onSubmit={submit}>
        <label htmlFor="token">Access token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          value={value}
          onChange={(e) => setValue(e.target.value)}
          autoComplete="off"
          spellCheck={false}
          required
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
      <Problem error={error} />
    </section>
  );
}
