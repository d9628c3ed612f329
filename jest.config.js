/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 60000,
  // Builds dist/ once: the deploy and ops tests run `node dist/main.js` as the image does.
  globalSetup: '<rootDir>/test/global-setup.ts',
  // Integration tests start real servers and git processes; two cores are all CI has.
  maxWorkers: 2,
};
