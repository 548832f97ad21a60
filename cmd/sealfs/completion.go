package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// The completion script asks sealfs itself for the candidates
// (--generate-bash-completion lists the subcommands and flags that fit).
const bashCompletion = `# sealfs completion for bash (zsh: run "autoload -U +X bashcompinit && bashcompinit" first)
_sealfs_complete() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local words
	if [[ $cur == -* ]]; then
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _sealfs_complete sealfs
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script (bash, zsh)",
		ArgsUsage: "bash|zsh",
		Description: `   $ source <(sealfs completion bash)
   $ sealfs completion bash > /etc/bash_completion.d/sealfs`,
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash", "zsh", "":
				fmt.Fprint(c.App.Writer, bashCompletion)
				return nil
			}
			return exitUsage(errors.New("completion: bash or zsh"))
		},
	}
}
