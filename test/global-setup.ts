// Builds what the tests run: the WebAssembly core (so a test never runs a stale module) and the
// native oracle. Both are also built by `npm ci` (prepare); rebuilding is quick and idempotent.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'asbuild'], { stdio: 'inherit' });
  execFileSync('bash', ['test/native/build.sh'], { stdio: 'inherit' });
}
