package main

import (
	"github.com/urfave/cli/v2"
	"strings"
	"testing"
)

// TestReorderArgs: flags after positional arguments are moved in front of
// them, with their values; "--" ends the flags.
func TestReorderArgs(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{in: "sealfs mount ./mnt --data d", want: "sealfs mount --data d ./mnt"},
		{in: "sealfs mount --data d ./mnt", want: "sealfs mount --data d ./mnt"},
		{in: "sealfs mount ./mnt --allow-other --data=d --s3 :1", want: "sealfs mount --allow-other --data=d --s3 :1 ./mnt"},
		{in: "sealfs bucket encryption set photos --data d", want: "sealfs bucket encryption set --data d photos"},
		{in: "sealfs scrub photos --sample 0.5", want: "sealfs scrub --sample 0.5 photos"},
		{in: "sealfs mount ./mnt -- --data", want: "sealfs mount ./mnt -- --data"},
		{in: "sealfs --help", want: "sealfs --help"},
	} {
		got := strings.Join(reorderArgs(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%q: want %q, have %q", tc.in, tc.want, got)
		}
	}
}

// TestEveryFlagHasEnv: every flag of every command can come from a
// SEALFS_ environment variable.
func TestEveryFlagHasEnv(t *testing.T) {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				names := f.Names()
				env, ok := f.(interface{ GetEnvVars() []string })
				if !ok || len(env.GetEnvVars()) == 0 || !strings.HasPrefix(env.GetEnvVars()[0], "SEALFS_") {
					t.Errorf("%s%s --%s has no SEALFS_ variable", prefix, c.Name, names[0])
				}
			}
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("", newApp().Commands)
}

// TestCompletionScript: the script is printed for bash and zsh (the
// completion itself is tried in bash by integration/cli_test.go).
func TestCompletionScript(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		var out strings.Builder
		app := newApp()
		app.Writer = &out
		if err := app.Run([]string{"sealfs", "completion", shell}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "complete -o default -F _sealfs_complete sealfs") {
			t.Fatalf("%s script: %q", shell, out.String())
		}
	}
	if err := newApp().Run([]string{"sealfs", "completion", "fish"}); err == nil {
		t.Fatal("completion fish: no error")
	}
}
