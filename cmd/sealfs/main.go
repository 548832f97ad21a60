// Command sealfs is the sealfs daemon and its admin tool: an object store
// that keeps objects encrypted on the server and serves them as a FUSE mount
// and over an S3-compatible HTTPS API at once.
//
// This package only wires packages together: one file per command, flag
// groups shared between commands (flags.go), the daemon's start and stop
// (daemon.go), its Prometheus metrics (metrics.go), the audit log of key
// use (audit.go: DATA/audit/key-use.jsonl and sealfs_key_uses_total), the
// users and their access keys (user.go), the admin commands'
// progress lines (progress.go). main.go owns the exit codes: every usage
// error, at every command level, exits 2.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed
	exitBadArgs = 2 // wrong usage: unknown flag, bad value, missing argument
	exitDamage  = 3 // objects left damaged or undone: scrub found damage, kms rewrap or bucket encrypt-existing failed on some
)

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitUsage(err error) error { return usageError{err} }

func errUnexpectedArgs(c *cli.Context) error {
	return fmt.Errorf("%s: unexpected argument %q", c.Command.Name, c.Args().First())
}

func newApp() *cli.App {
	app := &cli.App{
		Name:    "sealfs",
		Usage:   "an encrypted object store served as a FUSE mount and over S3",
		Version: version,
		Description: `Exit codes: 0 success; 1 failure; 2 wrong usage; 3 objects damaged or left
undone: scrub found damage, or kms rewrap / bucket encrypt-existing failed on
some objects (run it again: it retries them).

   $ sealfs serve                      # S3 over HTTPS on 127.0.0.1:9443, data in ./sealfs-data
   $ sealfs mount ./mnt                # the same, plus the store mounted at ./mnt`,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			versionCommand(),
			serveCommand(),
			mountCommand(),
			replicateCommand(),
			bucketCommand(),
			userCommand(),
			accessKeyCommand(),
			kmsCommand(),
			statusCommand(),
			scrubCommand(),
			completionCommand(),
		},
	}
	usageErrors(app)
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
	return app
}

func main() {
	// A write to a closed pipe (`sealfs mount ./mnt 2>&1 | tee log` after
	// Ctrl-C killed tee) fails with EPIPE instead of killing the process:
	// the daemon still commits open files and unmounts. Notify, not
	// Ignore, so that child processes start with SIGPIPE at its default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	app := newApp()
	err := app.Run(reorderArgs(app, os.Args))
	os.Exit(exitCode(err))
}

// usageErrors makes every kind of wrong usage an error main turns into
// exit code 2, for every command: an unknown flag or a bad flag value, a
// missing required flag, an unknown command (urfave/cli would exit 3) and
// a missing subcommand. Exit codes are main's alone: the library never
// calls os.Exit.
func usageErrors(app *cli.App) {
	app.ExitErrHandler = func(*cli.Context, error) {}
	onUsage := func(c *cli.Context, err error, isSubcommand bool) error { return exitUsage(err) }
	app.OnUsageError = onUsage
	app.Action = groupAction("")
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			name := strings.TrimSpace(path + " " + cmd.Name)
			cmd.OnUsageError = onUsage
			if cmd.Action == nil && len(cmd.Subcommands) > 0 {
				cmd.Action = groupAction(name)
			}
			var required []string
			for _, f := range cmd.Flags {
				if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
					sf.Required = false
					sf.Usage += " (required)"
					required = append(required, sf.Name)
				}
			}
			if len(required) > 0 && cmd.Action != nil {
				action := cmd.Action
				cmd.Action = func(c *cli.Context) error {
					var missing []string
					for _, n := range required {
						if !c.IsSet(n) {
							missing = append(missing, "--"+n)
						}
					}
					if len(missing) > 0 {
						return exitUsage(fmt.Errorf("%s: missing %s", name, strings.Join(missing, ", ")))
					}
					return action(c)
				}
			}
			walk(name, cmd.Subcommands)
		}
	}
	walk("", app.Commands)
}

// groupAction runs when a command that only groups others (or sealfs
// itself) is given no known subcommand: help, then exit code 2.
func groupAction(name string) cli.ActionFunc {
	return func(c *cli.Context) error {
		prog, prefix := strings.TrimSpace("sealfs "+name), ""
		if name != "" {
			prefix = name + ": "
		}
		if c.Args().Present() {
			return exitUsage(fmt.Errorf("%sunknown command %q (%s --help lists them)", prefix, c.Args().First(), prog))
		}
		if name == "" {
			cli.ShowAppHelp(c)
		} else {
			cli.ShowSubcommandHelp(c)
		}
		return exitUsage(fmt.Errorf("%smissing command", prefix))
	}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "sealfs:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitBadArgs
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if ec.ExitCode() == exitDamage && errors.As(err, new(damageError)) {
			return exitDamage
		}
		// The library's own exits ("No help topic for 'x'", code 3)
		// are all wrong usage.
		return exitBadArgs
	}
	return exitFailure
}

// damageError is exit code 3: scrub found n damaged objects, or a rewrap
// or an encrypt-existing run failed on n objects (undone says what was not
// done to them: "not re-wrapped").
type damageError struct {
	n      int
	undone string // "": damaged
}

func (e damageError) Error() string {
	if e.undone == "" {
		return fmt.Sprintf("%d damaged %s", e.n, plural(e.n, "object"))
	}
	return fmt.Sprintf("%d %s %s", e.n, plural(e.n, "object"), e.undone)
}
func (e damageError) ExitCode() int { return exitDamage }

// plural is "object" for 1, "objects" otherwise.
func plural[N ~int | ~int64](n N, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
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
