/**
 * A minimal graphql-sse (distinct connections) client for tests: POSTs a subscription with
 * `Accept: text/event-stream`, parses `event: next` / `event: complete` messages, and hands each payload
 * over as it arrives, with the time it arrived.
 */
export interface Push<T = any> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
  at: number;
}

export interface SseSubscription<T = any> {
  /** HTTP status of the answer. */
  status: number;
  /** Every payload so far, oldest first. */
  pushes: Push<T>[];
  /** Resolves with the push at this index (0 is the first), waiting at most timeoutMs. */
  push(index: number, timeoutMs?: number): Promise<Push<T>>;
  /** True once the server completed the stream. */
  completed(): boolean;
  /** Disconnects (aborts the request). */
  close(): void;
}

type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export async function subscribe<T = any>(
  fetchFn: Fetch,
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<SseSubscription<T>> {
  const abort = new AbortController();
  const response = await fetchFn(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  const pushes: Push<T>[] = [];
  let done = false;
  const waiters: (() => void)[] = [];
  const notify = () => {
    for (const w of waiters.splice(0)) w();
  };
  const reader = response.body?.getReader();
  const pump = async () => {
    if (!reader) return;
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        buffer += decoder.decode(value, { stream: true });
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const message = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf('\n\n');
          const event = /^event: (.*)$/m.exec(message)?.[1];
          const data = message
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (event === 'complete') done = true;
          else if (data) pushes.push({ ...JSON.parse(data), at: Date.now() });
          notify();
        }
      }
    } catch {
      // Aborted by close().
    }
    done = true;
    notify();
  };
  if (response.headers.get('content-type')?.includes('text/event-stream')) void pump();
  else {
    pushes.push({ ...(await response.json()), at: Date.now() });
    done = true;
  }
  return {
    status: response.status,
    pushes,
    completed: () => done,
    close: () => {
      // Cancelling the body is what a browser does when it disconnects; the abort covers a real socket.
      void reader?.cancel().catch(() => {});
      abort.abort();
    },
    async push(index, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (pushes.length <= index) {
        if (done) throw new Error(`stream ended after ${pushes.length} pushes (waiting for #${index})`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no push #${index} within ${timeoutMs} ms (${pushes.length} so far)`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return pushes[index];
    },
  };
}
