/**
 * The API key, entered once and kept for the browser session (sessionStorage: gone when the tab closes).
 * It travels only in the Authorization header: never in a URL, never logged.
 */
const STORAGE_KEY = 'sona.apiKey';

export function apiKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(STORAGE_KEY, key);
  else sessionStorage.removeItem(STORAGE_KEY);
}

export function authHeaders(): Record<string, string> {
  const key = apiKey();
  // The CSRF header the service asks of browsers when keys are required (harmless otherwise).
  return { 'x-graphql-yoga-csrf': '1', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}
