/**
 * How a backfill shows its progress: a bar on a terminal (cli-progress), or a plain progress
 * event every `intervalMs` when the output is a log (a pod, a file, LOG_FORMAT=json). Both
 * consume the backfill's `day_written` events, emitted between statements after each committed
 * day: PGlite blocks the event loop while a statement runs, so nothing could be drawn during one
 * anyway.
 */
import cliProgress from 'cli-progress';
import { formatDuration, visible } from '../format.js';
import type { BackfillProgress, Consumer, Emit } from './events.js';

/** Where a bar is drawn: a TTY stream (process.stderr when it is one). */
export interface ProgressTerminal {
  readonly isTTY: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

export interface ProgressReporter {
  update(progress: BackfillProgress): void;
  /** Ends the bar (leaving its last state on screen); a no-op for lines. */
  stop(): void;
}

/** A bar on a terminal. */
export function barProgress(terminal: ProgressTerminal): ProgressReporter {
  const bar = new cliProgress.SingleBar({
    stream: terminal as unknown as NodeJS.WritableStream,
    format: 'backfill [{bar}] {percentage}% | {value}/{total} days | through {day} | elapsed {elapsed} | ETA {left}',
    barsize: 30,
    hideCursor: null,
    clearOnComplete: false,
    fps: 5,
  });
  let started = false;
  return {
    update(p) {
      const payload = { day: visible(p.day), elapsed: formatDuration(p.elapsedMs), left: formatDuration(p.etaMs) };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else {
        bar.update(p.done, payload);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * Plain progress events for a log: the first day, then at most one per `intervalMs` (0 = every
 * day), and always the last day.
 */
export function lineProgress(emit: Emit, intervalMs: number, now: () => number = Date.now): ProgressReporter {
  let last: number | undefined;
  return {
    update(p) {
      const time = now();
      if (last !== undefined && p.done < p.total && time - last < intervalMs) return;
      last = time;
      emit({ type: 'backfill_progress', done: p.done, total: p.total, day: p.day, elapsedMs: p.elapsedMs, etaMs: p.etaMs });
    },
    stop() {},
  };
}

/**
 * The progress as a consumer of events: each committed day (`day_written`) updates it. The
 * ripple's line and any message end the bar first (subscribe it `first`), so that they are
 * written below its last state.
 */
export function progressConsumer(reporter: ProgressReporter): Consumer {
  return (event) => {
    if (event.type === 'day_written') reporter.update(event);
    else if (event.type === 'ripple_finished' || event.type === 'message') reporter.stop();
  };
}
