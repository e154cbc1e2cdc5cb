/**
 * An exclusive lock on an embedded database directory, held by a lock file with the owner's
 * process id, host name and a token of its own. PGlite has no lock of its own and its advisory
 * locks do not reach other processes, so this is what keeps a second process out (exit code
 * 3, like the server lock).
 *
 * A lock whose holder is gone is taken over. In a container every process is pid 1, so a lock
 * left by an earlier container names the new process's own pid: that pid is "alive" but the
 * lock is not this process's (its token is not one this process wrote), so it is stale. A lock
 * written on another host (another container's hostname) cannot be checked from here and is
 * respected; the message names the host and the file to remove once that holder is gone. A
 * file that names no owner yet is another process between creating and writing it: held, unless
 * it is older than that takes.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LockHeldError } from '../errors.js';

export interface DirectoryLock {
  release(): void;
}

const lockFileName = '.aggregate-features-daily.lock';

/** The tokens of the locks this process holds, by lock file. */
const heldTokens = new Map<string, string>();

/** Takes the directory's lock or throws LockHeldError; a lock left by a dead process is taken over. */
export function acquireDirectoryLock(directory: string): DirectoryLock {
  const path = join(directory, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      const token = randomUUID();
      writeSync(fd, `${process.pid}\n${hostname()}\n${token}\n`);
      closeSync(fd);
      heldTokens.set(path, token);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          heldTokens.delete(path);
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
      if (owner === undefined && createdRecently(path)) {
        // Created by a process that has not written its pid yet (it does right after): held.
        // Taken for stale, its file was removed and two processes ran on one directory.
        throw new LockHeldError(
          `another process is starting on the embedded database ${directory}; wait for it to finish (lock file ${path})`,
        );
      }
      if (owner !== undefined && owner.host !== undefined && owner.host !== hostname()) {
        throw new LockHeldError(
          `another process (pid ${owner.pid} on host ${owner.host}) is using the embedded database ${directory}; wait for it to finish, or, if that container is gone, remove the lock file ${path}`,
        );
      }
      if (owner !== undefined && isAlive(owner, path)) {
        throw new LockHeldError(
          `another process (pid ${owner.pid}) is using the embedded database ${directory}; wait for it to finish (lock file ${path})`,
        );
      }
      // The owner died (e.g. kill -9), or an unreadable file is older than a process needs to
      // write its pid: the lock is stale. Remove it and try once more; if a third process wins
      // that race, the second attempt reports it as the holder.
      try {
        unlinkSync(path);
      } catch {
        // Someone else removed it first.
      }
    }
  }
  throw new LockHeldError(`another process is using the embedded database ${directory}; wait for it to finish`);
}

/** How long a lock file without a readable owner counts as just created (its owner about to write it). */
const ownerWriteGraceMs = 10_000;

/** True when the lock file was modified within the grace period (false when it is gone). */
function createdRecently(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < ownerWriteGraceMs;
  } catch {
    return false;
  }
}

interface Owner {
  readonly pid: number;
  /** Undefined in lock files written by earlier versions (the pid alone). */
  readonly host: string | undefined;
  readonly token: string | undefined;
}

function readOwner(path: string): Owner | undefined {
  try {
    const [pidText, host, token] = readFileSync(path, 'utf8').split('\n');
    const pid = Number(pidText?.trim());
    return Number.isInteger(pid) && pid > 0 ? { pid, host: host?.trim() || undefined, token: token?.trim() || undefined } : undefined;
  } catch {
    return undefined;
  }
}

function isAlive({ pid, token }: Owner, path: string): boolean {
  // Our own pid: alive only if this very process wrote the lock; else an earlier process
  // that had the same pid (pid 1 of an earlier container) left it.
  if (pid === process.pid) return token !== undefined && heldTokens.get(path) === token;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
