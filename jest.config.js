// `npm test`: the unit and in-process integration tiers (tests/unit, tests/integration); nothing here
// starts a process or depends on timing. `npm run test:system` (jest.system.config.js) runs tests/system.
//
import { availableParallelism } from 'node:os';

// Jest runs in native ESM mode (see the `test` script: --experimental-vm-modules) so that PGlite's ESM
// build, import.meta and top-level await behave exactly as they do under tsx.
/** @type {import('jest').Config} */
export default {
  // Node's environment plus what one worker's test files share (the PGlite snapshots' bytes): see
  // tests/support/test-environment.js.
  testEnvironment: '<rootDir>/tests/support/test-environment.js',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      },
    ],
  },
  testMatch: ['<rootDir>/tests/unit/**/*.test.ts', '<rootDir>/tests/integration/**/*.test.ts'],
  globalSetup: '<rootDir>/tests/support/global-setup.ts',
  globalTeardown: '<rootDir>/tests/support/global-teardown.ts',
  testTimeout: 60_000,
  // Test files run side by side (their data is isolated by unique keys). Jest's default, one worker per
  // core but one, is a single worker on a 2-core machine, which leaves a core idle while tests wait for
  // PostgreSQL: there two workers ran `npm test` on PostgreSQL in 132 s instead of 232 s, and PGlite
  // (CPU-bound) in the same time either way.
  maxWorkers: Math.max(2, availableParallelism() - 1),
  coverageProvider: 'v8',
  collectCoverageFrom: ['src/**/*.ts'],
};
