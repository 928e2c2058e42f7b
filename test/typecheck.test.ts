// The TypeScript side (emu/, bench/, test/, the shared tables) type-checks cleanly with `tsc`;
// wasm/ is checked by asc when the core is built (notes/assemblyscript-probe.md: tsc cannot read
// AssemblyScript's decorators).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

describe('typecheck', () => {
  it('tsc -p tsconfig.json reports no errors', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
