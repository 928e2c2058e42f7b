// Image locking, after QEMU's (block/file-posix.c): a writable user of an image excludes every other
// user of it, and a reader excludes writers, so a disk can never be attached twice writable — the
// second user would corrupt the qcow2 metadata the first one caches. QEMU takes OFD byte-range locks
// on the image file itself; Node.js has no fcntl locking, so hvlab records each holder in a small
// file next to the image, `FILE.hvlab-lock.PID` (its content: `read` or `write`), and keeps its own
// holds in a registry (one process may attach the same image through two paths).
//
// A process killed with SIGKILL leaves its record behind: a record whose PID no longer runs is stale
// and is removed by the next user. Two writers starting in the same instant both see each other's
// record and both refuse — the safe side of the race. The refusal uses QEMU's wording:
//   Failed to get "write" lock. Is another process using the image [FILE]?
//   Failed to get shared "write" lock. Is another process using the image [FILE]?
import { readdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type LockMode = 'read' | 'write';

/** Another user holds the image in a conflicting mode. */
export class ImageLockError extends Error {
  constructor(readonly path: string, mode: LockMode) {
    // QEMU: a writer wants the "write" permission itself; a reader wants nobody else to share it.
    super(`Failed to get ${mode === 'write' ? '"write"' : 'shared "write"'} lock. Is another process using the image [${path}]?`);
  }
}

const RECORD_INFIX = '.hvlab-lock.';

/** This process's holds, by the image's real path. */
const held = new Map<string, { mode: LockMode; count: number; record: string | null }>();

function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** The live records of other processes on the image at `real`, removing stale ones on the way. */
function otherHolders(real: string): LockMode[] {
  const dir = dirname(real), prefix = basename(real) + RECORD_INFIX;
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const modes: LockMode[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const file = join(dir, name);
    if (!processAlive(pid)) { try { unlinkSync(file); } catch { /* another user removed it */ } continue; }
    let content = '';
    try { content = readFileSync(file, 'utf8').trim(); } catch { continue; }
    modes.push(content === 'read' ? 'read' : 'write'); // unreadable or partial: assume the worse
  }
  return modes;
}

const conflicts = (wanted: LockMode, holder: LockMode) => wanted === 'write' || holder === 'write';

/** A hold on one image; `release` gives it back (once). */
export interface ImageLock { readonly path: string; readonly mode: LockMode; release(): void }

/** Lock the image at `path` for reading or writing, or throw ImageLockError naming `path` as given.
 *  A file that does not exist is not locked (opening it reports the error). */
export function lockImage(path: string, mode: LockMode): ImageLock {
  let real: string;
  try { real = realpathSync(path); } catch { return { path, mode, release: () => {} }; }
  const mine = held.get(real);
  if (mine && conflicts(mode, mine.mode)) throw new ImageLockError(path, mode);
  if (otherHolders(real).some((h) => conflicts(mode, h))) throw new ImageLockError(path, mode);
  if (mine) mine.count++;
  else {
    const record = `${real}${RECORD_INFIX}${process.pid}`;
    let written: string | null = record;
    // A directory we cannot write to: other processes cannot be told, this one still is.
    try { writeFileSync(record, mode); } catch { written = null; }
    held.set(real, { mode, count: 1, record: written });
    // Re-check after publishing: a writer that started at the same instant is seen now.
    if (written && otherHolders(real).some((h) => conflicts(mode, h))) { releaseHold(real); throw new ImageLockError(path, mode); }
  }
  let released = false;
  return { path, mode, release: () => { if (!released) { released = true; releaseHold(real); } } };
}

function releaseHold(real: string): void {
  const h = held.get(real);
  if (h && --h.count === 0) dropHold(real);
}

function dropHold(real: string): void {
  const h = held.get(real);
  held.delete(real);
  if (h?.record) { try { unlinkSync(h.record); } catch { /* already gone */ } }
}

// Records must not outlive the process on a normal exit (including process.exit from a signal handler).
process.on('exit', () => { for (const real of [...held.keys()]) dropHold(real); });
