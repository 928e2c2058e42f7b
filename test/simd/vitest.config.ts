// Runs only the SIMD differential test, without the repository's globalSetup (which builds the main
// core and the native oracle): `npx vitest run --config test/simd/vitest.config.ts`.
import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: { include: ['test/simd-ops.test.ts'], testTimeout: 300_000, hookTimeout: 300_000 },
});
