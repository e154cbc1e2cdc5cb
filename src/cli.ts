#!/usr/bin/env node
// The executable: runs main() with the process's arguments, environment, streams and signals.
import { main } from './program/main.js';

// SIGTERM (what Kubernetes sends) and SIGINT stop the run at its next safe point: the open
// transaction is rolled back, the run log says so, and the exit code is 1. A second signal
// exits at once (the database rolls back the transaction of a dropped connection).
const stop = new AbortController();
for (const name of ['SIGTERM', 'SIGINT'] as const) {
  process.on(name, () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort(name);
  });
}

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signal: stop.signal,
  progressTerminal: process.stderr.isTTY ? process.stderr : undefined,
  columns: process.stdout.isTTY ? process.stdout.columns : undefined,
});
