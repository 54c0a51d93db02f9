// `npm run test:system`: tests that start processes (the server, the CLIs, drizzle-kit) or judge
// behaviour over time (faults, shutdown). Same setup as `npm test` (jest.config.js), other files.
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  testMatch: ['<rootDir>/tests/system/**/*.test.ts'],
  testTimeout: 300_000,
};
