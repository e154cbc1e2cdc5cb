#!/usr/bin/env node
// The executable: runs main() with the process's arguments, environment and streams.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  progressTerminal: process.stderr.isTTY ? process.stderr : undefined,
});
