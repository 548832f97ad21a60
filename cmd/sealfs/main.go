// Command sealfs is the sealfs daemon and its admin tool: an object store
// that keeps objects encrypted on the server and serves them as a FUSE mount
// and over an S3-compatible HTTPS API at once.
//
// This package only wires packages together: one file per command, flag
// groups shared between commands (flags.go), the daemon's start and stop
// (daemon.go).
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed
	exitBadArgs = 2 // wrong usage: unknown flag, bad value, missing argument
	exitDamage  = 3 // scrub found damaged objects
)

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitUsage(err error) error { return usageError{err} }

func errUnexpectedArgs(c *cli.Context) error {
	return fmt.Errorf("%s: unexpected argument %q", c.Command.Name, c.Args().First())
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "sealfs",
		Usage:   "an encrypted object store served as a FUSE mount and over S3",
		Version: version,
		Description: `Exit codes: 0 success; 1 failure; 2 wrong usage; 3 scrub found damage.

   $ sealfs serve                      # S3 over HTTPS on 127.0.0.1:9443, data in ./sealfs-data
   $ sealfs mount ./mnt                # the same, plus the store mounted at ./mnt`,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			serveCommand(),
			mountCommand(),
			replicateCommand(),
			bucketCommand(),
			kmsCommand(),
			statusCommand(),
			scrubCommand(),
			completionCommand(),
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return exitUsage(err)
		},
	}
}

func main() {
	app := newApp()
	err := app.Run(reorderArgs(app, os.Args))
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		fmt.Fprintln(os.Stderr, "sealfs:", err)
		return ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "sealfs:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitBadArgs
	}
	return exitFailure
}

// reorderArgs moves flags that follow positional arguments in front of them,
// so that `sealfs mount ./mnt --data d` works as `sealfs mount --data d ./mnt`
// (urfave/cli stops reading flags at the first positional argument). A "--"
// ends the flags as usual.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	cmds := app.Commands
	var flags []cli.Flag
	// Walk down the command path.
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		var next *cli.Command
		for _, c := range cmds {
			if c.HasName(rest[0]) {
				next = c
			}
		}
		if next == nil {
			break
		}
		out = append(out, rest[0])
		rest = rest[1:]
		cmds, flags = next.Subcommands, next.Flags
	}
	takesValue := make(map[string]bool)
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var fl, pos []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			fl = append(fl, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				fl = append(fl, rest[i])
			}
			continue
		}
		pos = append(pos, a)
	}
	out = append(out, fl...)
	return append(out, pos...)
}
