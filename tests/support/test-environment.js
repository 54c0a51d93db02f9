/**
 * Jest's node environment, plus what the test files one Jest worker runs can share when each opens an
 * in-memory PGlite (tests/support/db.ts). Jest evaluates every test file in a vm context of its own, with
 * a fresh module registry, so nothing a test file imports survives into the next file; this module is
 * loaded by the worker itself, outside those contexts, once per worker: its module-level state lasts for
 * all the files the worker runs, and `setup` hands it to each file as `globalThis.sonaPgliteAssets`.
 *
 * Shared: the snapshots' bytes, which nobody writes. Every file still starts instances of its own, so no
 * database state, and no object a test compares, crosses files. Not shared: the compiled pglite.wasm
 * (PGlite's `pgliteWasmModule`). A module compiled out here fails inside a test file's context, whose
 * WebAssembly is another realm's (Emscripten's `instanceof WebAssembly.Module` and Table.set checks); V8
 * already reuses the machine code of a module compiled again from the same bytes.
 *
 * Plain JavaScript because Jest loads the environment module with Node's own loader, untransformed.
 */
import { readFile } from 'node:fs/promises';
import { TestEnvironment } from 'jest-environment-node';

/**
 * A dumped data directory (a tar file) as the Blob PGlite's `loadDataDir` takes, whose arrayBuffer()
 * returns the same bytes every time instead of a new copy. A Blob's own arrayBuffer() streams its
 * content into a new buffer: ~0.6 s per open for the ~45 MB snapshot inside Jest. Handing out one
 * buffer is sound because PGlite only reads it: its untar copies each file out (`slice`) into the
 * in-memory file system, so the bytes stay as dumped for the next instance.
 */
class SnapshotBlob extends Blob {
  /** @type {ArrayBuffer} */
  #bytes;

  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    super([bytes], { type: 'application/x-tar' });
    this.#bytes = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  arrayBuffer() {
    return Promise.resolve(this.#bytes);
  }
}

/** @type {Map<string, Promise<Blob>>} */
const snapshots = new Map();

const assets = {
  /**
   * The snapshot in `file` (written by global-setup.ts), read once per worker.
   * @param {string} file
   */
  snapshot(file) {
    let blob = snapshots.get(file);
    if (!blob) {
      blob = readFile(file).then((bytes) => new SnapshotBlob(bytes));
      snapshots.set(file, blob);
    }
    return blob;
  },
};

export default class SonaTestEnvironment extends TestEnvironment {
  async setup() {
    await super.setup();
    this.global.sonaPgliteAssets = assets;
  }
}
