/** The dashboard shell: header and the routed page (each page asks for a key when the server wants one). */
import { Provider } from '@urql/preact';
import { apiKey, setApiKey } from './auth';
import { client } from './client';
import { ExperimentList } from './pages/ExperimentList';
import { ExperimentPage } from './pages/ExperimentPage';
import { useRoute } from './router';

function Page() {
  const route = useRoute();
  return route.page === 'list' ? <ExperimentList /> : <ExperimentPage experimentKey={route.key} />;
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
      <Page />
    </Provider>
  );
}
