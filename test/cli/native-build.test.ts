// `npm ci` on a machine without gcc: the native oracle's build (the "prepare" script) skips with a
// note instead of failing the install, since booting needs no C compiler; `npm run native`
// (--require) still fails, and so do the commands that need the oracle, in one line.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT, lines } from './run-cli.ts';

const BUILD = `${REPO_ROOT}test/native/build.sh`;
const withoutCompiler = { ...process.env, CC: 'hvlab-no-such-compiler' };
const scripts = (JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('test/native/build.sh without a C compiler', () => {
  it('skips with a one-line note and status 0 (what npm ci runs)', () => {
    const r = spawnSync('bash', [BUILD], { env: withoutCompiler, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/note: 'hvlab-no-such-compiler' not found .*skipping the native oracle \(hvlab boot works without it/);
  });

  it('fails with --require (npm run native)', () => {
    const r = spawnSync('bash', [BUILD, '--require'], { env: withoutCompiler, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(lines(r.stderr)).toEqual(["test/native/build.sh: 'hvlab-no-such-compiler' not found (install gcc to build build/native/runner)"]);
  });

  it('is what "prepare" runs without --require, and what "native" runs with it', () => {
    expect(scripts.prepare).toMatch(/bash test\/native\/build\.sh$/);
    expect(scripts.native).toBe('bash test/native/build.sh --require');
  });
});
