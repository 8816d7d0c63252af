import type { Command } from 'commander';

interface Entry {
  path: string;
  words: string[];
}

/** The completion words of each command path, from the program's own definitions (so they never drift). */
function entries(cmd: Command, prefix: string[] = []): Entry[] {
  const words = [...cmd.commands.map((c) => c.name()), ...cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)), '--help'];
  const here = { path: prefix.join(' '), words };
  return [here, ...cmd.commands.flatMap((c) => entries(c, [...prefix, c.name()]))];
}

/** A bash or zsh completion script for the program: commands, subcommands and options. */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const list = entries(program);
  const cases = list.map((e) => `    "${e.path}") words="${e.words.join(' ')}" ;;`).join('\n');
  const known = list.filter((e) => e.path !== '').map((e) => `'${e.path}'`).join('|');
  const fn = `_os_node_words() {
  # The longest known command path among the words typed so far (options skipped). zsh's
  # bashcompinit hands over COMP_WORDS as a zsh array (from 1): read it from 0, as bash does.
  [[ -n "\${ZSH_VERSION:-}" ]] && setopt localoptions ksharrays
  local path="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "\${path:+$path }$w" in ${known}) path="\${path:+$path }$w" ;; esac
  done
  case "$path" in
${cases}
  esac
}
`;
  if (shell === 'bash') {
    return `# os-node completion for bash: eval "$(os-node completion bash)"
${fn}_os_node() {
  local words=""
  _os_node_words
  COMPREPLY=($(compgen -W "$words" -- "\${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _os_node os-node
`;
  }
  return `#compdef os-node
# os-node completion for zsh: eval "$(os-node completion zsh)", or save as _os_node in your $fpath
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }
autoload -U +X bashcompinit && bashcompinit
${fn}_os_node() {
  # bashcompinit's compgen does not filter here: match the typed prefix directly.
  local words="" cur="\${COMP_WORDS[COMP_CWORD+1]}" w
  _os_node_words
  COMPREPLY=()
  for w in \${=words}; do [[ "$w" == "$cur"* ]] && COMPREPLY+=("$w"); done
}
complete -o default -F _os_node os-node
`;
}
