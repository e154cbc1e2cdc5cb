/**
 * Waiting in tests: for a condition, with a deadline, never for a fixed time. A test that
 * needs "the run holds the lock" or "the writer is inside its transaction" polls exactly that
 * and fails with a message naming it when the deadline passes, instead of sleeping and hoping.
 */

export interface WaitOptions {
  /** What is awaited, for the failure message ("the lock file names the run's pid"). */
  readonly what: string;
  /** Fail after this long (default 60 s: far beyond any wait of a healthy run, even on a loaded machine). */
  readonly timeoutMs?: number;
  /** Between two checks (default 5 ms). */
  readonly intervalMs?: number;
  /**
   * Stop waiting, without failing, once this returns true (e.g. the process being watched has
   * exited: the condition can no longer become true). waitFor then resolves to undefined.
   */
  readonly until?: () => boolean;
}

/**
 * Resolves with the first truthy value of `condition`, checked at once and then every
 * `intervalMs`; rejects with `timed out after N ms waiting for <what>` after `timeoutMs`.
 * With `until`, resolves to undefined as soon as that returns true and the condition is not met.
 */
export function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions & { until?: undefined }): Promise<T>;
export function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions): Promise<T | undefined>;
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions): Promise<T | undefined> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (options.until?.()) return undefined;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 5));
  }
}
