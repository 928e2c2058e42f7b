// Builds the nasm-written bare-metal test kernels of test/guests/ into build/guests/ (flat multiboot
// images). Used by the tests; `nasm` comes from Debian (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const SRC = fileURLToPath(new URL('.', import.meta.url));
export const GUEST_BUILD = fileURLToPath(new URL('../../build/guests/', import.meta.url));

/** Assemble every test/guests/*.asm that is newer than its image; returns name -> image path.
 *  `bios.asm` is a firmware image (`--bios`); the others are multiboot kernels (`--kernel`). */
export function buildGuests(): Map<string, string> {
  mkdirSync(GUEST_BUILD, { recursive: true });
  const out = new Map<string, string>();
  const include = statSync(join(SRC, 'multiboot.inc')).mtimeMs;
  for (const f of readdirSync(SRC).filter((n) => n.endsWith('.asm'))) {
    const name = f.replace(/\.asm$/, '');
    const image = join(GUEST_BUILD, `${name}.bin`);
    const src = join(SRC, f);
    if (!existsSync(image) || statSync(image).mtimeMs < Math.max(statSync(src).mtimeMs, include)) {
      execFileSync('nasm', ['-w-zeroing', '-f', 'bin', '-i', SRC, '-o', image, src], { stdio: 'inherit' });
    }
    out.set(name, image);
  }
  return out;
}
