/** Two routes, in the browser's history: `/` (the list) and `/experiments/:key`. */
import { useEffect, useState } from 'preact/hooks';

export type Route = { page: 'list' } | { page: 'experiment'; key: string };

export function parseRoute(pathname: string): Route {
  const m = /^\/experiments\/([^/]+)\/?$/.exec(pathname);
  return m ? { page: 'experiment', key: decodeURIComponent(m[1]) } : { page: 'list' };
}

export function navigate(to: string): void {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return route;
}

/** An in-app link: a real <a href> (keyboard, new tab) that navigates without a reload. */
export function onLink(event: MouseEvent, to: string): void {
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(to);
}
