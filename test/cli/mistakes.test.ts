// A first-time user's mistakes on the command line: each ends at once (before any guest boots) with
// one line on stderr, nothing on stdout and a nonzero status — never a stack trace or the whole help.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { lines, runCli, REPO_ROOT } from './run-cli.ts';

const DIRECTORY = `${REPO_ROOT}test`;
const MISSING = '/nonexistent/hvlab-test-file';

/** [the command line, what its one line must say]. */
const MISTAKES: Array<[string[], RegExp]> = [
  [['boot', '--mmu', 'foo'], /--mmu.*'foo'.*Allowed choices are direct, ept, shadow/],
  [['boot', '-m', '0'], /-m, --memory.*'0'.*>= 1/],
  [['boot', '-m', 'lots'], /-m, --memory.*'lots'/],
  [['boot', '-m', '4096'], /-m 4096: guest RAM must be 1 to 3808 MiB/],
  [['boot', '-m', '3809'], /-m 3809: guest RAM must be 1 to 3808 MiB/],
  [['host', '-m', '4096'], /guest g0: -m 4096: guest RAM must be 1 to 3808 MiB/],
  [['boot', '-m', '2048.5'], /-m, --memory.*'2048\.5'/],
  [['boot', '--smp', '9'], /--smp.*'9'.*from 1 to 4/],
  [['boot', '--kernel', DIRECTORY], /kernel .* is a directory/],
  [['boot', '--kernel', MISSING], /kernel .* does not exist/],
  [['boot', '--initrd', DIRECTORY], /initrd .* is a directory/],
  [['boot', '--bios', DIRECTORY], /firmware .* is a directory/],
  [['boot', '--drive', `file=${MISSING}`], /image file does not exist/],
  [['boot', '--drive', 'file=x.img,format=vmdk'], /format must be raw or qcow2/],
  [['boot', '--drive', `file=${DIRECTORY}`], /--drive file=.*: a directory, not a disk image/],
  [['boot', '--drive', 'format=raw'], /--drive needs file=PATH/],
  [['boot', '--append'], /--append <cmdline>' argument missing/],
  [['boot', '--pv', 'maybe'], /--pv.*Allowed choices are on, off, realtime/],
  [['boot', '--ple', 'yes'], /--ple.*Allowed choices are on, off/],
  [['boot', '--timeout', '0'], /--timeout.*'0'/],
  [['boot', '--rtc', 'yesterday'], /--rtc.*'yesterday'/],
  [['boot', '--frob'], /^error: unknown option '--frob'$/],
  [['frob'], /^error: unknown command 'frob'$/],
  [['boot', '--memry', '64'], /^error: unknown option '--memry' \(Did you mean --memory\?\)$/],
  [['bot'], /^error: unknown command 'bot' \(Did you mean boot\?\)$/],
  [['walk', '--guest-page', '8k'], /--guest-page.*'8k'.*Allowed choices are 4k, 2m, 1g/],
  [['walk', '--host-page', '3m'], /--host-page.*'3m'/],
  [['walk', '--mmu', 'foo'], /--mmu.*'foo'/],
  [['walk', '--gva', '0x800000000000'], /0x800000000000 is not canonical/],
  [['walk', '--gva', 'here'], /--gva.*'here'.*expected an address/],
  [['bench', 'pagewalk', '--tlb', 'foo'], /--tlb.*'foo'.*Allowed choices are skylake, default/],
  [['bench', 'pagewalk', '--working-set', '3'], /--working-set.*power of two/],
  [['bench', 'blk', '--format', 'vmdk'], /--format.*Allowed choices are raw, qcow2/],
  [['bench', 'host', '--guests', '0,2'], /--guests.*from 1 to 16/],
  [['difftest', '--only', 'frob'], /--only: no instruction family, mnemonic or form is called frob/],
  [['difftest', '--count', 'many'], /--count.*'many'/],
  [['bench', 'mips', '--rounds', '0'], /--rounds.*'0'.*>= 1/],
  [['bench', 'pagewalk', '--churn', '--iterations', '0'], /--iterations.*'0'/],
  [['host', '--mmu', 'direct'], /--mmu.*Allowed choices are ept, shadow/],
  [['host', '--smp', '0'], /--smp.*'0'/],
  [['host', '--config', MISSING], /no such file/i],
  [['img', 'create', '-f', 'vmdk', `${MISSING}.img`, '1M'], /unknown format 'vmdk'/],
  [['img', 'info', MISSING], /does not exist|no such file/i],
  [['img', 'create'], /missing required argument 'file'/],
];

describe('hvlab: a mistake is one line on stderr and a nonzero status', () => {
  it.concurrent.each(MISTAKES)('hvlab %j', async (args, message) => {
    const r = await runCli(args, { timeoutMs: 60_000 });
    expect(r.signal, 'it must end at once, before booting anything').toBeNull();
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
  });
});

describe('hvlab --version and --help', () => {
  const { version } = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string };
  it.concurrent.each([['--version'], ['-V']])('hvlab %s prints the package version', async (flag) => {
    const r = await runCli([flag]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(version);
    expect(r.stderr).toBe('');
  });
  it.concurrent('hvlab boot --help prints the help on stdout with status 0', async () => {
    const r = await runCli(['boot', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: hvlab boot \[options\]/);
    expect(r.stdout).toMatch(/--rtc <base>/);
  });
});
