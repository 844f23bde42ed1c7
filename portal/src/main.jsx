import { StrictMode, Suspense, lazy, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { claims, getSettings, getToken, loadSettings, setToken } from './api.js';
import { Approvals } from './pages/Approvals.jsx';
import { Catalog } from './pages/Catalog.jsx';
import { Offering } from './pages/Offering.jsx';
import { RequestList } from './pages/RequestList.jsx';
import { RequestPage } from './pages/RequestPage.jsx';
import { ResourceList } from './pages/ResourceList.jsx';
import { ResourcePage } from './pages/ResourcePage.jsx';
import { Sandbox } from './pages/Sandbox.jsx';
import { SignIn } from './pages/SignIn.jsx';
import { Loading } from './ui.jsx';
import './styles.css';

// The charting library is loaded with the page that draws charts, not with every page.
const Insights = lazy(() => import('./pages/Insights.jsx').then((m) => ({ default: m.Insights })));

/** The page for a location hash such as `#/requests/0190...`. */
function route(hash) {
  const parts = hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
  const [section, id] = parts;
  switch (section) {
    case undefined:
    case 'catalog':
      return { page: 'catalog' };
    case 'items':
    case 'bundles':
      return id ? { page: 'offering', kind: section === 'items' ? 'item' : 'bundle', id } : { page: 'catalog' };
    case 'requests':
      return id ? { page: 'request', id } : { page: 'requests' };
    case 'resources':
      return id ? { page: 'resource', id } : { page: 'resources' };
    case 'sandbox':
      return { page: 'sandbox' };
    case 'approvals':
      return { page: 'approvals' };
    case 'insights':
      return { page: 'insights' };
    default:
      return { page: 'missing' };
  }
}

function useHash() {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const changed = () => setHash(window.location.hash);
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function Nav({ current, sandbox }) {
  const links = [
    ['catalog', '#/', 'Catalog'],
    ['requests', '#/requests', 'My requests'],
    ['resources', '#/resources', 'Resources'],
    ['approvals', '#/approvals', 'Approvals'],
    ['insights', '#/insights', 'Insights'],
  ];
  if (sandbox) {
    links.push(['sandbox', '#/sandbox', 'Sandbox JIRA']);
  }
  return (
    <nav aria-label="Main">
      <ul>
        {links.map(([page, href, label]) => (
          <li key={page}>
            <a href={href} aria-current={current === page ? 'page' : undefined}>
              {label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function App() {
  const [token, setSignedIn] = useState(getToken());
  const hash = useHash();
  const where = route(hash);
  const main = useRef(null);
  const { sandbox } = getSettings();
  const user = token ? claims(token) : null;

  // After navigating (not on the first load), focus moves to the new page, so screen
  // readers announce it and Tab continues from its top.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [hash]);

  if (!token || !user) {
    return (
      <Shell sandbox={sandbox}>
        <main id="main" tabIndex={-1} ref={main}>
          <SignIn onSignedIn={setSignedIn} />
        </main>
      </Shell>
    );
  }
  const signOut = () => {
    setToken(null);
    setSignedIn(null);
  };
  const section = { offering: 'catalog', request: 'requests', resource: 'resources' }[where.page] || where.page;
  return (
    <Shell sandbox={sandbox}>
      <header className="bar">
        <a className="brand" href="#/">
          Developer portal
        </a>
        <Nav current={section} sandbox={sandbox} />
        <div className="who">
          <span>
            Signed in as <strong>{user.sub}</strong>
            {user.groups?.length ? ` (${user.groups.join(', ')})` : ''}
          </span>
          <button type="button" className="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1} ref={main} key={hash}>
        <Page where={where} user={user} onUnauthorized={signOut} />
      </main>
    </Shell>
  );
}

function Shell({ sandbox, children }) {
  return (
    <>
      <a className="skip" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById('main')?.focus();
      }}>
        Skip to content
      </a>
      {sandbox && (
        <p className="sandbox-banner" role="note">
          Sandbox: JIRA and the provisioning APIs are local stand-ins. Nothing real is created.
        </p>
      )}
      {children}
    </>
  );
}

function Page({ where, user, onUnauthorized }) {
  const props = { user, onUnauthorized };
  switch (where.page) {
    case 'catalog':
      return <Catalog {...props} />;
    case 'offering':
      return <Offering kind={where.kind} name={where.id} {...props} />;
    case 'requests':
      return <RequestList {...props} />;
    case 'request':
      return <RequestPage id={where.id} {...props} />;
    case 'resources':
      return <ResourceList {...props} />;
    case 'resource':
      return <ResourcePage id={where.id} {...props} />;
    case 'sandbox':
      return <Sandbox {...props} />;
    case 'approvals':
      return <Approvals {...props} />;
    case 'insights':
      return (
        <Suspense fallback={<Loading />}>
          <Insights {...props} />
        </Suspense>
      );
    default:
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no such page. <a href="#/">Back to the catalog</a>.
          </p>
        </>
      );
  }
}

loadSettings().then(() => {
  createRoot(document.getElementById('root')).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
});
