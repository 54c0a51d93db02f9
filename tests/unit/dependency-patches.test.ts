/**
 * The dependency patches in patches/ (patch-package, applied on postinstall) are really in node_modules:
 * every hunk's result is in the installed file, the installed version is the one the patch was written
 * for, and package.json pins exactly that version. This runs in-process, where Jest loads the same
 * node_modules as the server, the CLIs and the benchmark, so "patched here" means "patched everywhere".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ROOT } from '../support/paths';

interface FilePatch {
  file: string;
  /** Each hunk as it must read after patching: context and added lines, in order. */
  after: string[];
}

/** The files a unified diff (as patch-package writes it) changes, with each hunk's resulting text. */
function parsePatch(text: string): FilePatch[] {
  const files: FilePatch[] = [];
  let hunk: string[] | null = null;
  const close = () => {
    if (hunk) files.at(-1)!.after.push(hunk.join('\n'));
    hunk = null;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('diff --git ')) {
      close();
      files.push({ file: line.split(' b/')[1], after: [] });
    } else if (line.startsWith('@@')) {
      close();
      hunk = [];
    } else if (hunk && (line.startsWith(' ') || line.startsWith('+'))) {
      hunk.push(line.slice(1));
    } else if (hunk && line === '\\ No newline at end of file') {
      // not part of the text
    } else if (hunk && !line.startsWith('-')) {
      close();
    }
  }
  close();
  return files;
}

/** patch-package's file name: `name+version.patch`, `@scope+name+version.patch` for scoped packages. */
function patchTarget(fileName: string): { name: string; version: string } {
  const parts = fileName.replace(/\.patch$/, '').split('+');
  return { name: parts.slice(0, -1).join('/'), version: parts.at(-1)! };
}

const patchDir = path.join(ROOT, 'patches');
const patches = readdirSync(patchDir).filter((f) => f.endsWith('.patch'));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

describe('dependency patches (patches/, applied by patch-package on install)', () => {
  it('run on every install and fail it when they do not apply', () => {
    expect(pkg.scripts.postinstall).toMatch(/^patch-package\b/);
    expect(pkg.scripts.postinstall).toContain('--error-on-fail');
    expect(pkg.scripts.postinstall).toContain('--error-on-warn');
    expect(pkg.devDependencies['patch-package'] ?? pkg.dependencies['patch-package']).toBeDefined();
  });

  it('include the postgres.js fix for connections that die mid-write', () => {
    expect(patches.filter((f) => patchTarget(f).name === 'postgres')).toHaveLength(1);
  });

  describe.each(patches)('%s', (fileName) => {
    const { name, version } = patchTarget(fileName);
    const files = parsePatch(readFileSync(path.join(patchDir, fileName), 'utf8'));

    it('is for the installed version, which package.json pins exactly', () => {
      const installed = JSON.parse(
        readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8'),
      );
      expect(installed.version).toBe(version);
      expect(pkg.dependencies[name] ?? pkg.devDependencies[name]).toBe(version);
    });

    it('is applied: every hunk reads as patched in node_modules', () => {
      expect(files.length).toBeGreaterThan(0);
      const missing = files.flatMap(({ file, after }) => {
        const installed = readFileSync(path.join(ROOT, file), 'utf8');
        return after.filter((hunk) => !installed.includes(hunk)).map((hunk) => `${file}:\n${hunk}`);
      });
      expect(missing).toEqual([]);
    });
  });

  it('cover the postgres.js build Node loads for import and for require', () => {
    const patch = patches.find((f) => patchTarget(f).name === 'postgres')!;
    const postgresFiles = parsePatch(readFileSync(path.join(patchDir, patch), 'utf8')).map((f) => f.file);
    const requireEntry = createRequire(path.join(ROOT, 'package.json')).resolve('postgres');
    const exportsMap = JSON.parse(
      readFileSync(path.join(ROOT, 'node_modules/postgres/package.json'), 'utf8'),
    ).exports;
    for (const entry of [requireEntry, path.join(ROOT, 'node_modules/postgres', exportsMap.import)]) {
      const connection = path.relative(ROOT, path.join(path.dirname(entry), 'connection.js'));
      expect(postgresFiles).toContain(connection);
    }
  });
});
