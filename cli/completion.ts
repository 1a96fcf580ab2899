import type { Command } from 'commander';

/** Every command path of the tree with the words that may follow it (subcommands and options). */
function commandPaths(cmd: Command, prefix: string[] = [], out = new Map<string, string[]>()): Map<string, string[]> {
  const words = [
    ...cmd.commands.map((c) => c.name()),
    ...cmd.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)),
  ];
  if (prefix.length === 0) words.push('--help');
  out.set(prefix.join(' '), words);
  for (const sub of cmd.commands) commandPaths(sub, [...prefix, sub.name()], out);
  return out;
}

/**
 * A bash completion script generated from the command tree: the words typed so far that name
 * commands select the level; what follows them (subcommands, options; global options everywhere).
 * zsh uses the same function through bashcompinit (so no variable may be named like a zsh special
 * parameter: `path` would shadow PATH there).
 */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const name = program.name();
  const paths = commandPaths(program);
  const globals = program.options.filter((o) => !o.hidden).map((o) => o.long!);
  const cases = [...paths].map(([path, words]) => `    "${path}") words="${[...new Set([...words, ...(path ? globals : [])])].join(' ')}" ;;`).join('\n');
  const known = [...paths.keys()].filter(Boolean).join('|');
  const fn = `_${name.replace(/\W/g, '_')}_complete`;
  const bash = `# ${name} completion (generated from the command tree by \`${name} completion ${shell}\`)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" w i words=""
  local known="|${known}|"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if [[ "$known" == *"|\${cmdpath:+$cmdpath }$w|"* ]]; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  case "$cmdpath" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${name}
`;
  if (shell === 'bash') return bash;
  return `#compdef ${name}\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
