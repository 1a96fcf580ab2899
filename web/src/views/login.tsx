import { useState } from 'preact/hooks';
import { apiClient, ApiError, ok, type Whoami } from '../api.js';

/** Log in with an API key: checked against `GET /v1/whoami` before it is kept. */
export function Login({ onLogin, reason }: { onLogin: (key: string, me: Whoami, remember: boolean) => void; reason?: string | undefined }) {
  const [key, setKey] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<string | null>(reason ?? null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError('Paste an API key (npm start prints the admin key; `autovibe keys create` makes more).');
    setBusy(true);
    setError(null);
    try {
      const me = await ok(apiClient(trimmed).GET('/whoami'));
      onLogin(trimmed, me, remember);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That key is unknown, revoked or expired.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>AutoVibe</h1>
      <form onSubmit={submit} aria-describedby={error ? 'login-error' : undefined}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="current-password"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          autofocus
        />
        <label class="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} /> Stay logged in on this browser
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Log in'}
        </button>
        {error ? (
          <p id="login-error" class="error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </main>
  );
}
