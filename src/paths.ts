import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root folder (the one holding package.json, drizzle/ and schema.graphql): the nearest
 * folder above this module with a package.json. Found by walking up rather than by a fixed `../..`
 * because the same code runs from src/ (tsx, tests) and bundled into dist/ (`npm run build`, the
 * Docker image), at different depths; the working directory plays no part.
 */
export const PROJECT_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json in ${start} or above`);
  }
}
