package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShellCompletion sources `sealfs completion bash` in a real bash and
// completes subcommands and flags with it.
func TestShellCompletion(t *testing.T) {
	requireTool(t, "bash")
	bin := sealfsBin(t)
	script := `source <("$BIN" completion bash)
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _sealfs_complete; echo "${COMPREPLY[*]}"; }
complete_words "$BIN" buck
complete_words "$BIN" bucket encryption c
complete_words "$BIN" mount --allow
complete_words "$BIN" scrub --sam`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(cmd.Environ(), "BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	want := []string{"bucket", "clear", "--allow-other", "--sample"}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("completions: want %q, have %q", want, got)
	}
}

// TestExitCodes: wrong usage exits 2, a failure 1.
func TestExitCodes(t *testing.T) {
	bin := sealfsBin(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{args: []string{"--no-such-flag"}, code: 2},
		{args: []string{"mount"}, code: 2},
		{args: []string{"scrub", "--sample", "3"}, code: 2},
		{args: []string{"status", "--data", t.TempDir()}, code: 1}, // no daemon there
	} {
		err := exec.Command(bin, tc.args...).Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tc.code {
			t.Errorf("sealfs %s: want exit %d, have %v", strings.Join(tc.args, " "), tc.code, err)
		}
	}
}
