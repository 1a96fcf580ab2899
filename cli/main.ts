import { Command, CommanderError, Option } from 'commander';
import { registerAdmin } from './commands/admin.js';
import { registerConfig } from './commands/config.js';
import { registerMachines } from './commands/machines.js';
import { registerCosts, registerProjects } from './commands/projects.js';
import { registerSettings } from './commands/settings.js';
import { registerWork } from './commands/work.js';
import { registerWebhooks } from './commands/webhooks.js';
import { registerRemotes } from './commands/remotes.js';
import { registerIntegrations } from './commands/integrations.js';
import { completionScript } from './completion.js';
import { CliError, EXIT, EXIT_HELP } from './errors.js';
import { colors } from './output.js';

/** The command tree (also what `completion` is generated from). */
export function buildProgram(): Command {
  const program = new Command('autovibe')
    .description('AutoVibe from the command line: projects, machines, checkpoints, budgets, … over the REST API')
    .version('0.1.0')
    .option('--json', 'machine-readable JSON on stdout')
    .option('--profile <name>', 'configuration profile (else AUTOVIBE_PROFILE, else the current one)')
    .addOption(new Option('--no-color', 'no colours (as NO_COLOR=1)'))
    .addHelpText(
      'after',
      `\nConnection: AUTOVIBE_API_URL / AUTOVIBE_API_KEY, else the profile (autovibe config), else ${'http://127.0.0.1:3000'} with ./.autovibe/admin-key.\n\n${EXIT_HELP}`,
    )
    .showHelpAfterError()
    // Usage errors are thrown, not exited on, so they get exit code 2 like the api's 400/422.
    .exitOverride();

  registerConfig(program);
  registerProjects(program);
  registerCosts(program);
  registerMachines(program);
  registerWork(program);
  registerAdmin(program);
  registerSettings(program);
  registerWebhooks(program);
  registerRemotes(program);
  registerIntegrations(program);
  program
    .command('completion <shell>')
    .description('print a completion script: bash (source it) or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CliError('completion: shell must be bash or zsh', EXIT.usage);
      process.stdout.write(completionScript(program, shell));
    });
  return program;
}

/** Runs the CLI and returns its exit code; errors print one line (the api's message), never a stack. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has printed its message already; help and version are not errors.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof CliError) {
      process.stderr.write(`${colors.red('error:')} ${e.message}\n`);
      if (e.details && typeof e.details === 'object' && Object.keys(e.details).length > 0) process.stderr.write(`${JSON.stringify(e.details)}\n`);
      return e.code;
    }
    // A prompt closed with Ctrl-C.
    if ((e as Error).name === 'ExitPromptError') return 130;
    process.stderr.write(`${colors.red('error:')} ${(e as Error).message ?? String(e)}\n`);
    if (process.env.AUTOVIBE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return EXIT.generic;
  }
}

process.exitCode = await main(process.argv);
