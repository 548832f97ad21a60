package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets the tests run this test binary as the sealfs command
// (SEALFS_TEST_AS_MAIN=1): exit codes are what a shell sees.
func TestMain(m *testing.M) {
	if os.Getenv("SEALFS_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"sealfs"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// runSealfs runs the sealfs command (this binary as main) and returns its
// exit code, stdout and stderr.
func runSealfs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SEALFS_TEST_AS_MAIN=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestExitCodeTable: the README's table (0 success, 1 failure, 2 wrong
// usage, 3 damage) for every kind of wrong usage, on every command level.
func TestExitCodeTable(t *testing.T) {
	nodaemon := filepath.Join(t.TempDir(), "none")
	for _, tc := range []struct {
		args string
		code int
	}{
		{"version", 0},
		{"--version", 0},
		{"--help", 0},
		{"help", 0},
		{"bucket --help", 0},
		{"completion bash", 0},
		// wrong usage: unknown commands, at the top and below
		{"bogus", 2},
		{"help bogus", 2},
		{"bucket bogus", 2},
		{"bucket encryption bogus", 2},
		{"kms bogus", 2},
		{"replicate target bogus", 2},
		// a command that only groups others, without one
		{"", 2},
		{"bucket", 2},
		{"replicate", 2},
		// unknown flags and bad values, at the top and on subcommands
		{"--bogus", 2},
		{"status --bogus", 2},
		{"bucket create --bogus x", 2},
		{"scrub --sample x", 2},
		{"scrub --sample 3", 2},
		{"mount --sync-interval soon ./m", 2},
		{"serve --log-level loud", 2},
		// missing or extra arguments, missing required flags
		{"mount", 2},
		{"serve extra", 2},
		{"version extra", 2},
		{"completion fish", 2},
		{"replicate target add eu-west-1", 2},
		{"replicate enable photos", 2},
		// a failure: no daemon to ask
		{"status --data " + nodaemon, 1},
		{"bucket list --data " + nodaemon, 1},
	} {
		code, _, stderr := runSealfs(t, strings.Fields(tc.args)...)
		if code != tc.code {
			t.Errorf("sealfs %s: exit %d, want %d; stderr:\n%s", tc.args, code, tc.code, stderr)
		}
		if code != 0 && !strings.HasPrefix(stderr, "sealfs: ") && !strings.Contains(stderr, "\nsealfs: ") {
			t.Errorf("sealfs %s: stderr does not say why:\n%s", tc.args, stderr)
		}
	}
}

// TestVersionCommand: `sealfs version` and `sealfs --version` print the
// same line: the version, and Go's version and platform.
func TestVersionCommand(t *testing.T) {
	code, out, _ := runSealfs(t, "version")
	if code != 0 || !regexp.MustCompile(`^sealfs \S+( \(commit [0-9a-f]+(, modified)?\))? go\S+ \w+/\w+\n$`).MatchString(out) {
		t.Fatalf("sealfs version: exit %d, output %q", code, out)
	}
	code, out2, _ := runSealfs(t, "--version")
	if code != 0 || out2 != out {
		t.Fatalf("sealfs --version: exit %d, output %q, want %q", code, out2, out)
	}
}

// TestExitCodeDamageOrUndone: exit code 3 is scrub's damage and the
// objects a rewrap or an encrypt-existing run left undone, each saying
// which; and `sealfs --help` says so.
func TestExitCodeDamageOrUndone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		msg  string
		code int
	}{
		{damageError{n: 2}, "2 damaged objects", 3},
		{damageError{1, "not re-wrapped"}, "1 object not re-wrapped", 3},
		{damageError{3, "not encrypted"}, "3 objects not encrypted", 3},
	} {
		if got := tc.err.Error(); got != tc.msg {
			t.Errorf("%#v: %q, want %q", tc.err, got, tc.msg)
		}
		if got := exitCode(tc.err); got != tc.code {
			t.Errorf("%#v: exit %d, want %d", tc.err, got, tc.code)
		}
	}
	code, out, _ := runSealfs(t, "--help")
	help := strings.Join(strings.Fields(out), " ")
	if code != 0 || !strings.Contains(help, "3 objects damaged or left undone: scrub found damage, or kms rewrap / bucket encrypt-existing failed on some objects") {
		t.Errorf("sealfs --help does not give exit code 3's meanings:\n%s", out)
	}
}
