/** Reference vectors copied into tests/fixtures (each file names its source and licence in `source`). */
import { readFileSync } from 'node:fs';

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as T;
}
