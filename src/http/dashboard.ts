/**
 * The results dashboard (web/, built by `npm run build` into dist/dashboard): its pages at `/` and
 * `/experiments/:key` (one index.html, the app routes in the browser) and its hashed assets at
 * `/assets/…`. Files are read once and kept compressed (gzip, brotli) in memory; nothing comes from a CDN.
 * Builds the dashboard when it is missing (a fresh clone's `npm start`), with Vite, a dev dependency.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../paths';

export const DASHBOARD_DIR = path.join(PROJECT_ROOT, 'dist', 'dashboard');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  br: Buffer;
  immutable: boolean;
}

/**
 * Builds the dashboard into DASHBOARD_DIR when it has no index.html and its sources are here (a fresh
 * clone; an image holds the built one and no sources). Built into a folder of its own and then renamed,
 * so instances starting together never serve (or clobber) a half-written build: the first rename wins.
 * False when there is no dashboard to serve.
 */
export function ensureDashboardBuilt(logger: Logger): boolean {
  const index = path.join(DASHBOARD_DIR, 'index.html');
  if (existsSync(index)) return true;
  const vite = path.join(PROJECT_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const config = path.join(PROJECT_ROOT, 'web', 'vite.config.ts');
  if (!existsSync(vite) || !existsSync(config)) {
    logger.warn('the dashboard is not built (run `npm run build`): `/` redirects to /graphql');
    return false;
  }
  logger.info('building the dashboard (first start)');
  const staging = `${DASHBOARD_DIR}.${process.pid}`;
  const result = spawnSync(
    process.execPath,
    [vite, 'build', '--config', config, '--outDir', staging, '--logLevel', 'error'],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (result.status === 0 && !existsSync(index)) {
    try {
      renameSync(staging, DASHBOARD_DIR);
    } catch {
      // Another instance renamed its build first: serve that one.
    }
  }
  rmSync(staging, { recursive: true, force: true });
  if (!existsSync(index)) logger.error({ status: result.status }, 'the dashboard build failed');
  return existsSync(index);
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else {
        const raw = readFileSync(file);
        const urlPath = `/${path.relative(dir, file).split(path.sep).join('/')}`;
        assets.set(urlPath, {
          type: TYPES[path.extname(file)] ?? 'application/octet-stream',
          raw,
          gzip: gzipSync(raw, { level: 9 }),
          br: brotliCompressSync(raw),
          immutable: urlPath.startsWith('/assets/'),
        });
      }
    }
  };
  walk(dir);
  return assets;
}

/** Is this path one of the dashboard's pages? (`/`, `/experiments/<key>`) */
export function isDashboardPage(pathname: string): boolean {
  return pathname === '/' || /^\/experiments\/[^/]+\/?$/.test(pathname);
}

/**
 * A handler for the dashboard's paths, or null when there is no build to serve. It answers true when
 * the path was the dashboard's.
 */
export function createDashboard(
  dir = DASHBOARD_DIR,
): ((req: IncomingMessage, res: ServerResponse, pathname: string) => boolean) | null {
  if (!existsSync(path.join(dir, 'index.html'))) return null;
  const assets = load(dir);
  const index = assets.get('/index.html')!;
  return (req, res, pathname) => {
    const asset = isDashboardPage(pathname)
      ? index
      : pathname.startsWith('/assets/')
        ? assets.get(pathname)
        : null;
    if (!asset) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return true;
    }
    const accepts = String(req.headers['accept-encoding'] ?? '');
    const [body, encoding] = /\bbr\b/.test(accepts)
      ? [asset.br, 'br']
      : /\bgzip\b/.test(accepts)
        ? [asset.gzip, 'gzip']
        : [asset.raw, null];
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': String(body.length),
      vary: 'accept-encoding',
      // Hashed asset names change with their content; the page itself is always revalidated.
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...(asset === index
        ? {
            'content-security-policy':
              "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
          }
        : {}),
      ...(encoding ? { 'content-encoding': encoding } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
