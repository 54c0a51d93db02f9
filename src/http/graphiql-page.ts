/**
 * GraphiQL's page, served by this yoga plugin instead of yoga's own: the page inlines GraphiQL, Monaco
 * and their workers (about 9 MB, so it works offline), which yoga renders and sends uncompressed on every
 * open. Here it is rendered once, compressed once per encoding (brotli or gzip, as the browser accepts)
 * and sent with an ETag and `Cache-Control: no-cache`: a browser that has the page revalidates and gets
 * a 304 without a body.
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { Plugin } from 'graphql-yoga';

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);

export type ContentEncoding = 'br' | 'gzip' | 'identity';

/** The encoding to send for an Accept-Encoding header: the preferred of brotli and gzip (brotli on a tie), else none. */
export function chooseEncoding(header: string | null): ContentEncoding {
  const weights = new Map<string, number>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    weights.set(name, q ? Number(q.slice(2)) : 1);
  }
  const q = (name: string) => weights.get(name) ?? weights.get('*') ?? 0;
  if (q('br') > 0 && q('br') >= q('gzip')) return 'br';
  if (q('gzip') > 0) return 'gzip';
  return 'identity';
}

function compress(html: Buffer, encoding: ContentEncoding): Promise<Buffer> {
  switch (encoding) {
    case 'br':
      // Quality 5: ~1 s once for 9 MB → ~1.9 MB; quality 11 would take ~30 s for 12% less.
      return brotli(html, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: 5,
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: html.length,
        },
      });
    case 'gzip':
      return gzip(html, { level: 6 });
    case 'identity':
      return Promise.resolve(html);
  }
}

export interface GraphiQLPageOptions {
  /** Where GraphiQL is served: the GraphQL endpoint, for GET requests that accept text/html (as yoga). */
  endpoint: string;
  title: string;
  defaultQuery: string;
}

export function useGraphiQLPage({ endpoint, title, defaultQuery }: GraphiQLPageOptions): Plugin {
  let page: { html: Buffer; hash: string } | null = null;
  const encoded = new Map<ContentEncoding, Promise<Buffer>>();
  const render = () => {
    if (!page) {
      const html = Buffer.from(renderGraphiQL({ title, defaultQuery }));
      page = { html, hash: createHash('sha256').update(html).digest('base64url').slice(0, 22) };
    }
    return page;
  };

  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== 'GET' || !request.headers.get('accept')?.includes('text/html')) return;
      if (url.pathname !== endpoint && url.pathname !== `${endpoint}/`) return;
      const { html, hash } = render();
      const encoding = chooseEncoding(request.headers.get('accept-encoding'));
      // A strong ETag per representation: the brotli and gzip bodies are different bytes.
      const etag = `"${hash}${encoding === 'identity' ? '' : `-${encoding}`}"`;
      const headers: Record<string, string> = {
        etag,
        'cache-control': 'no-cache',
        vary: 'Accept-Encoding',
      };
      const ifNoneMatch = request.headers.get('if-none-match');
      if (
        ifNoneMatch?.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag || tag.trim() === '*')
      ) {
        endResponse(new fetchAPI.Response(null, { status: 304, headers }));
        return;
      }
      let body = encoded.get(encoding);
      if (!body) {
        body = compress(html, encoding);
        encoded.set(encoding, body);
        // A failed compression is retried by the next request instead of being cached.
        body.catch(() => encoded.delete(encoding));
      }
      return body.then((bytes) => {
        if (encoding !== 'identity') headers['content-encoding'] = encoding;
        endResponse(
          new fetchAPI.Response(new Uint8Array(bytes), {
            status: 200,
            headers: { 'content-type': 'text/html; charset=utf-8', ...headers },
          }),
        );
      });
    },
  };
}
