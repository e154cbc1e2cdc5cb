/** What the CLI says about itself: the variables in --help, and a word that is no command. */
import { Command } from 'commander';
import { variables } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { closest } from './suggest.js';

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

/**
 * Flags people reach for that a command names differently: `--start` for `--from`. Offered only
 * when the command has the suggested flag.
 */
const synonyms: Readonly<Record<string, readonly string[]>> = {
  '--start': ['--from'],
  '--since': ['--from'],
  '--begin': ['--from'],
  '--end': ['--to'],
  '--until': ['--to'],
  '--day': ['--date'],
  '--anchor': ['--date'],
  '--dryrun': ['--dry-run'],
  '--lookback': ['--lookback-days'],
  '--tz': ['--timezone'],
};

/**
 * The program's commands, with two differences from commander's: a flag the command does not
 * know is reported as unknown before a required flag is reported missing (`backfill --start
 * 2025-01-01` is a misspelt --from, not a missing one), and the suggestion comes from the
 * command's own flags, by meaning (synonyms above) or by spelling.
 */
export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  /** Commander calls this for the first required flag without a value; an unknown flag is the better error. */
  missingMandatoryOptionValue(option: unknown): void {
    const unknown = this.args.find((arg) => arg.startsWith('-') && this.flagOf(arg) === undefined);
    if (unknown !== undefined) this.unknownOption(unknown.split('=')[0]!);
    (Command.prototype as unknown as { missingMandatoryOptionValue(o: unknown): void }).missingMandatoryOptionValue.call(this, option);
  }

  /** Commander calls this for a flag the command does not know. */
  unknownOption(flag: string): void {
    const known = this.knownFlags();
    const bySense = synonyms[flag.toLowerCase()]?.find((f) => known.includes(f));
    const nearest = bySense ?? (flag.startsWith('--') ? closest(flag, known) : undefined);
    const where = this.parent === null ? '' : ` for ${this.name()}`;
    this.error(`error: unknown option '${flag}'${where}${nearest === undefined ? '' : ` — did you mean ${nearest}?`}`, {
      code: 'commander.unknownOption',
      exitCode: 2,
    });
  }

  /** The long flags shown for this command and its ancestors. */
  private knownFlags(): string[] {
    return lineage(this).flatMap((command) => command.options.flatMap((o) => (o.long !== undefined && !o.hidden ? [o.long] : [])));
  }

  /** The flag of an argument (`--to` of `--to=2025-01-01`), if this command or an ancestor has it. */
  private flagOf(arg: string): string | undefined {
    const name = arg.split('=')[0]!;
    if (name === '--help' || name === '-h') return name;
    return lineage(this).some((command) => command.options.some((o) => o.long === name || o.short === name)) ? name : undefined;
  }
}

/** A command and its ancestors. */
function lineage(command: Command): Command[] {
  return command.parent === null ? [command] : [command, ...lineage(command.parent)];
}
