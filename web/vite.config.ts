// The dashboard's build: Preact, bundled by Vite into dist/dashboard (served by the service at `/`).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  plugins: [preact()],
  build: {
    outDir: path.join(here, '..', 'dist', 'dashboard'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: { proxy: { '/graphql': 'http://127.0.0.1:4000' } },
});
