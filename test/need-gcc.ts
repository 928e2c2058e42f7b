// Tests that compile a guest workload or an oracle need gcc; without it they skip and say why (a
// machine set up by the README's first line boots guests without a compiler).
import { spawnSync } from 'node:child_process';

export const haveGcc = spawnSync(process.env.CC ?? 'gcc', ['--version']).status === 0;

/** Skip the running test, with the reason, when there is no gcc. */
export function needGcc(ctx: { skip(note?: string): void }): void {
  if (!haveGcc) ctx.skip('gcc not installed: this test builds a static guest workload or the native oracle (apt-get install gcc libc6-dev)');
}
