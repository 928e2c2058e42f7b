// --script types at the shell's first prompt: the bundled guest's, or any shell's that ends in
// "# ", "$ " or "> " — but not before a prompt, and only once.
import { describe, expect, it } from 'vitest';
import { GuestConsole } from '../../emu/cli/guest-console.ts';

function typedAfter(output: string): string {
  const c = new GuestConsole(() => {}, 'uname -a');
  for (const b of new TextEncoder().encode(output)) c.onByte(b);
  return new TextDecoder().decode(Uint8Array.from(c.pendingInput));
}

describe('GuestConsole --script', () => {
  it.each([
    ['the bundled guest, with ash\'s cursor query', 'hvlab guest ready\n~ # \x1b[6n'],
    ['a busybox root prompt', 'Please press Enter\n/ # '],
    ['a user\'s prompt', 'debian login ok\nuser@debian:~$ '],
  ])('types the script at %s', (_what, output) => {
    expect(typedAfter(output)).toBe('uname -a\n');
  });

  it.each([
    ['kernel messages', '[    0.100000] Run /init as init process\n[    0.2] random: crng init done\n'],
    ['a "#" inside a line', 'build #1 SMP PREEMPT_DYNAMIC\n'],
  ])('waits through %s', (_what, output) => {
    expect(typedAfter(output)).toBe('');
  });

  it('types only once', () => {
    expect(typedAfter('~ # ls\nbin  etc\n~ # ')).toBe('uname -a\n');
  });
});
