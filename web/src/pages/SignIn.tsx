/** Asks for an API key once; it is kept for this tab only (sessionStorage), then the page reloads. */
import { useState } from 'preact/hooks';
import { setApiKey } from '../auth';

export function SignIn({ rejected }: { rejected: boolean }) {
  const [value, setValue] = useState('');
  return (
    <main>
      <h1>Sign in</h1>
      <p>
        This server needs an API key with the <code>read</code> scope (<code>write</code> to start, pause or
        complete experiments). It is kept only for this browser tab.
      </p>
      {rejected ? <p role="alert">That key was not accepted.</p> : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!value.trim()) return;
          setApiKey(value.trim());
          location.reload();
        }}
      >
        <label class="field">
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
