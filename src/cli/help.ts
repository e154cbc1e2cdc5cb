/** What the CLI says about itself: the variables in --help, and a word that is no command. */
import type { Command } from 'commander';
import { variables } from '../config.js';
import { ConfigError } from '../errors.js';
import { closest } from '../suggest.js';

/**
 * A first word that is no command would otherwise reach the default command as an argument
 * ("too many arguments for 'run'"); say what it is instead, with the nearest command.
 */
export function rejectUnknownCommand(argv: readonly string[], program: Command): void {
  const word = argv[0];
  if (word === undefined || word.startsWith('-')) return;
  const names = [...program.commands.flatMap((c) => [c.name(), ...c.aliases()]), 'help'];
  if (names.includes(word)) return;
  const nearest = closest(word, names);
  const commands = program.commands.map((c) => c.name()).join(', ');
  throw new ConfigError(
    `unknown command ${JSON.stringify(word)}${nearest === undefined ? '' : ` — did you mean '${nearest}'?`} Commands: ${commands} (run --help for usage)`,
  );
}

/** The environment variables with their defaults, for --help. */
export function environmentHelp(): string {
  const width = Math.max(...variables.map((v) => v.name.length)) + 2;
  const defaultWidth = Math.max(...variables.map((v) => (v.default ?? '(none)').length)) + 2;
  const lines = variables.map(
    (v) => `  ${v.name.padEnd(width)}${(v.default ?? '(none)').padEnd(defaultWidth)}${v.help}${v.flag ? ` [${v.flag}]` : ''}`,
  );
  return `\nEnvironment variables (name, default, meaning; an empty variable counts as unset, a flag overrides its variable):\n${lines.join('\n')}\n`;
}
