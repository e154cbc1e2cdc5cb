/**
 * An exclusive lock on an embedded database directory, held by a lock file with the owner's
 * process id. PGlite has no lock of its own and its advisory locks do not reach other
 * processes, so this is what keeps a second process out (exit code 3, like the server lock).
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LockHeldError } from './errors.js';

export interface DirectoryLock {
  release(): void;
}

const lockFileName = '.aggregate-features-daily.lock';

/** Takes the directory's lock or throws LockHeldError; a lock left by a dead process is taken over. */
export function acquireDirectoryLock(directory: string): DirectoryLock {
  const path = join(directory, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(path);
      if (owner !== undefined && isAlive(owner)) {
        throw new LockHeldError(
          `another process (pid ${owner}) is using the embedded database ${directory}; wait for it to finish (lock file ${path})`,
        );
      }
      // The owner died (e.g. kill -9): its lock is stale. Remove it and try once more; if a
      // third process wins that race, the second attempt reports it as the holder.
      try {
        unlinkSync(path);
      } catch {
        // Someone else removed it first.
      }
    }
  }
  throw new LockHeldError(`another process is using the embedded database ${directory}; wait for it to finish`);
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
