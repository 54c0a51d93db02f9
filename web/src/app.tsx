/** The dashboard shell: sign-in when the server asks for a key, then the routed page. */
import { Provider, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { apiKey, setApiKey } from './auth';
import { client, needsKey } from './client';
import { graphql } from './gql';
import { ExperimentList } from './pages/ExperimentList';
import { ExperimentPage } from './pages/ExperimentPage';
import { useRoute } from './router';

const WhoAmI = graphql(`
  query DashboardViewer {
    viewer {
      name
    }
  }
`);

function SignIn({ onDone }: { onDone: () => void }) {
  const [value, setValue] = useState('');
  return (
    <main>
      <h1>Sign in</h1>
      <p>
        This server needs an API key with the <code>read</code> scope (<code>write</code> to start, pause or
        complete experiments). It is kept only for this browser tab.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim()) return;
          setApiKey(value.trim());
          onDone();
        }}
      >
        <label>
          API key
          <input
            type="password"
            autocomplete="off"
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function Gate() {
  // Asked only when a key is stored or the server refuses anonymous calls; the pages' own queries carry
  // the viewer too, so an open server costs no extra request.
  const [signedIn, setSignedIn] = useState(0);
  const [{ error }] = useQuery({ query: WhoAmI, pause: !apiKey() && signedIn === 0, context: { signedIn } });
  const route = useRoute();
  const page = route.page === 'list' ? <ExperimentList /> : <ExperimentPage experimentKey={route.key} />;
  if (needsKey(error)) {
    return (
      <SignIn
        onDone={() => {
          setSignedIn((n) => n + 1);
        }}
      />
    );
  }
  return page;
}

function Header() {
  const key = apiKey();
  return (
    <header>
      <a href="/" class="brand">
        sona-experiments
      </a>
      {key ? (
        <button
          type="button"
          class="link"
          onClick={() => {
            setApiKey(null);
            location.reload();
          }}
        >
          Sign out
        </button>
      ) : null}
    </header>
  );
}

export function App() {
  return (
    <Provider value={client}>
      <Header />
      <Gate />
    </Provider>
  );
}
