package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The README's tour is tested as written. A fenced block whose info string
// is "sh tour" (optionally followed by "needs=TOOL,TOOL") is a step of the
// tour; a block whose info string is "text expect" holds lines the output
// of the step before it must contain, each on one output line, with "..."
// standing for any text.

// tourBlock is one runnable block of the README's tour.
type tourBlock struct {
	Line   int      // line of the opening fence in README.md
	Script string   // the block's text
	Needs  []string // tools named by needs=, beyond bash and coreutils
	Expect []string // lines of the expect blocks that follow it
}

// parseTour extracts the tour's blocks from a README.
func parseTour(readme string) ([]tourBlock, error) {
	var blocks []tourBlock
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		info, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimRight(lines[i], " ") != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("README.md:%d: fenced block is not closed", start+1)
		}
		fields := strings.Fields(info)
		switch {
		case len(fields) >= 2 && fields[0] == "sh" && fields[1] == "tour":
			b := tourBlock{Line: start + 1, Script: strings.Join(body, "\n") + "\n"}
			for _, f := range fields[2:] {
				v, ok := strings.CutPrefix(f, "needs=")
				if !ok {
					return nil, fmt.Errorf("README.md:%d: unknown word %q in the info string", start+1, f)
				}
				b.Needs = append(b.Needs, strings.Split(v, ",")...)
			}
			blocks = append(blocks, b)
		case len(fields) == 2 && fields[0] == "text" && fields[1] == "expect":
			if len(blocks) == 0 {
				return nil, fmt.Errorf("README.md:%d: expect block before any tour block", start+1)
			}
			for _, l := range body {
				if strings.TrimSpace(l) != "" {
					blocks[len(blocks)-1].Expect = append(blocks[len(blocks)-1].Expect, l)
				}
			}
		}
	}
	return blocks, nil
}

// outputHas reports whether one line of out matches want, where "..." in
// want stands for any text.
func outputHas(out, want string) bool {
	parts := strings.Split(want, "...")
	for _, line := range strings.Split(out, "\n") {
		rest, ok := line, true
		for _, p := range parts {
			j := strings.Index(rest, p)
			if j < 0 {
				ok = false
				break
			}
			rest = rest[j+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

func TestParseTour(t *testing.T) {
	readme := "# x\n\n```sh\nnot a step\n```\n\n```sh tour\necho one\n```\n\nprose\n\n" +
		"```text expect\none\n\n```\n\n```sh tour needs=aws,rclone\necho two\n```\n"
	got, err := parseTour(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d blocks, want 2: %+v", len(got), got)
	}
	if got[0].Script != "echo one\n" || got[0].Line != 7 || len(got[0].Expect) != 1 || got[0].Expect[0] != "one" {
		t.Errorf("first block: %+v", got[0])
	}
	if got[1].Script != "echo two\n" || len(got[1].Needs) != 2 || got[1].Needs[1] != "rclone" || got[1].Expect != nil {
		t.Errorf("second block: %+v", got[1])
	}
	for _, bad := range []string{"```text expect\nx\n```\n", "```sh tour\necho\n", "```sh tour loud\necho\n```\n"} {
		if _, err := parseTour(bad); err == nil {
			t.Errorf("parseTour(%q) accepted it", bad)
		}
	}
}

func TestOutputHas(t *testing.T) {
	tests := []struct {
		out, want string
		has       bool
	}{
		{out: "a\n-rw-r--r-- 1 root root 100000 Nov 26 IMG.jpg\n", want: "100000 ... IMG.jpg", has: true},
		{out: "100000\nIMG.jpg\n", want: "100000 ... IMG.jpg", has: false},
		{out: "IMG.jpg 100000 \n", want: "100000 ... IMG.jpg", has: false},
		{out: `user.etag="abc"`, want: `user.etag="..."`, has: true},
		{out: "plaintext on disk\n", want: "no plaintext on disk", has: false},
	}
	for _, tt := range tests {
		if got := outputHas(tt.out, tt.want); got != tt.has {
			t.Errorf("outputHas(%q, %q) = %v, want %v", tt.out, tt.want, got, tt.has)
		}
	}
}

// TestReadmeTour follows the README on a fresh copy of the repository:
// `make run` in the background, then each tour block in turn.
func TestReadmeTour(t *testing.T) {
	requireFUSE(t)
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			readmeSkip(t, tool+" is not installed")
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseTour(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	// The tour must keep showing what the README promises.
	var all strings.Builder
	for _, b := range blocks {
		all.WriteString(b.Script)
	}
	for _, want := range []string{"mkdir mnt/", "./bin/sealfs bucket encryption set", "cp ", "ls -l mnt/",
		"getfattr -n sealfs.", "aws --endpoint-url", "AWS_CA_BUNDLE=", "rclone", "s3cmd", "./bin/sealfs status"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no tour block of README.md runs %q", want)
		}
	}
	sse := `sealfs.x-amz-server-side-encryption="aws:kms"`
	if !slices.ContainsFunc(blocks, func(b tourBlock) bool { return slices.Contains(b.Expect, sse) }) {
		t.Errorf("no expect block of README.md holds %s", sse)
	}

	// A clean copy of the working tree (what `git clone` gives once the
	// work is committed): everything but .git and what .gitignore names
	// (bin/, sealfs-data/, mnt/, build outputs).
	dir := filepath.Join(t.TempDir(), "sealfs")
	if err := copyTree(root, dir); err != nil {
		t.Fatal(err)
	}
	cloned, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	// PATH: the system's aws CLI before any other one.
	pathDir := t.TempDir()
	if _, err := os.Stat("/usr/bin/aws"); err == nil {
		if err := os.Symlink("/usr/bin/aws", filepath.Join(pathDir, "aws")); err != nil {
			t.Fatal(err)
		}
	}
	env := cleanEnv(pathDir)

	// The metrics listener on a free port too (make run's default is a
	// fixed one, which TestMakeRun checks).
	d := startMakeRun(t, dir, slices.Concat(env, []string{"SEALFS_METRICS=127.0.0.1:0"}))
	// The tour's scratch directory ($TOUR, mktemp -t) goes with the test.
	env = append(env, "SEALFS_S3="+d.s3Addr, "TMPDIR="+t.TempDir())

	state := filepath.Join(t.TempDir(), "exports")
	for i, b := range blocks {
		name := fmt.Sprintf("block%02d_line%d", i+1, b.Line)
		ok := t.Run(name, func(t *testing.T) {
			for _, tool := range b.Needs {
				if _, err := lookPathIn(tool, env); err != nil {
					readmeSkip(t, fmt.Sprintf("README.md:%d needs %s, which is not installed", b.Line, tool))
				}
			}
			out, err := runTourBlock(dir, env, state, b.Script)
			t.Logf("README.md:%d output:\n%s", b.Line, out)
			if err != nil {
				t.Fatalf("README.md:%d: %v\n--- block:\n%s--- output:\n%s--- daemon:\n%s", b.Line, err, b.Script, out, d.logs())
			}
			for _, want := range b.Expect {
				if !outputHas(out, want) {
					t.Errorf("README.md:%d: output has no line matching %q\n--- block:\n%s--- output:\n%s", b.Line, want, b.Script, out)
				}
			}
		})
		if !ok {
			t.Fatalf("stopping the tour at README.md:%d", b.Line)
		}
	}
	// The tour leaves nothing in the repository but what make run makes
	// and .gitignore names: its own files go to a scratch directory.
	after, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range after {
		name := e.Name()
		if slices.ContainsFunc(cloned, func(c os.DirEntry) bool { return c.Name() == name }) ||
			name == "bin" || name == "sealfs-data" || name == "mnt" {
			continue
		}
		t.Errorf("the tour left %s in the repository", name)
	}
}

// readmeSkip skips loudly, or fails under SEALFS_REQUIRE_TOOLS=1.
func readmeSkip(t *testing.T, why string) {
	t.Helper()
	msg := fmt.Sprintf("!!! README TOUR %s NOT RUN: %s !!!", t.Name(), why)
	if os.Getenv("SEALFS_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (SEALFS_REQUIRE_TOOLS=1 makes this a failure)")
	}
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// cleanEnv is the test's environment as a fresh shell would have it: no
// sealfs settings, no AWS profile or keys, no rclone or s3cmd settings
// (the README must set what it uses). A machine-wide AWS_CA_BUNDLE is kept
// on purpose: the README's lines must override it.
func cleanEnv(pathDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH":
			env = append(env, "PATH="+pathDir+":"+val)
		case name == "AWS_CA_BUNDLE":
			env = append(env, kv)
		case strings.HasPrefix(name, "SEALFS_"), strings.HasPrefix(name, "AWS_"),
			strings.HasPrefix(name, "RCLONE_"), strings.HasPrefix(name, "S3CMD_"),
			name == "MAKEFLAGS", name == "MFLAGS", name == "MAKELEVEL":
		default:
			env = append(env, kv)
		}
	}
	return env
}

// lookPathIn finds a command on the PATH of env.
func lookPathIn(name string, env []string) (string, error) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range filepath.SplitList(v) {
				p := filepath.Join(d, name)
				if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
					return p, nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// runTourBlock runs one block with bash in dir, after the variables the
// blocks before it exported (state), and saves what it exports in turn:
// the blocks behave as if typed into one shell.
func runTourBlock(dir string, env []string, state, script string) (string, error) {
	var s strings.Builder
	s.WriteString("set -euo pipefail\n")
	fmt.Fprintf(&s, "if [ -f %q ]; then . %q; fi\n", state, state)
	s.WriteString(script)
	fmt.Fprintf(&s, "export -p > %q\n", state)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", s.String())
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("block did not finish within 2 minutes: %w", err)
	}
	return string(out), err
}

// makeRun is `make run` running in the background.
type makeRun struct {
	cmd     *exec.Cmd
	mnt     string
	s3Addr  string
	logFile string
	exited  chan error
	mu      sync.Mutex
	stdout  strings.Builder
}

func (m *makeRun) logs() string {
	m.mu.Lock()
	out := m.stdout.String()
	m.mu.Unlock()
	b, _ := os.ReadFile(m.logFile)
	return out + string(b)
}

// startMakeRun starts `make run` in dir, in a process group of its own,
// with the S3 listener on a free port (SEALFS_S3, which the README's
// commands follow), and waits for the daemon's banner. At the end of the
// test the group gets SIGINT, as Ctrl-C in the README's shell would send;
// the daemon must then unmount and exit.
func startMakeRun(t *testing.T, dir string, env []string) *makeRun {
	t.Helper()
	m := &makeRun{
		mnt:     filepath.Join(dir, "mnt"),
		logFile: filepath.Join(filepath.Dir(dir), "make-run.log"),
		exited:  make(chan error, 1),
	}
	logf, err := os.Create(m.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("make", "run")
	cmd.Dir = dir
	cmd.Env = append(env, "SEALFS_S3=127.0.0.1:0")
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd = cmd
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			m.mu.Lock()
			m.stdout.WriteString(line + "\n")
			m.mu.Unlock()
			trimmed := strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(trimmed, "S3 endpoint: https://"); ok {
				m.mu.Lock()
				m.s3Addr = v
				m.mu.Unlock()
			}
			if strings.HasPrefix(trimmed, "credentials:") && !seen {
				seen = true
				close(banner)
			}
		}
		io.Copy(io.Discard, stdout)
		if !seen {
			close(banner)
		}
	}()
	go func() { m.exited <- cmd.Wait() }()
	t.Cleanup(func() { m.stop(t) })
	select {
	case <-banner:
	case <-time.After(3 * time.Minute): // make run builds the binary first
		t.Fatalf("make run printed no banner within 3 minutes:\n%s", m.logs())
	}
	m.mu.Lock()
	addr := m.s3Addr
	m.mu.Unlock()
	if addr == "" {
		t.Fatalf("make run did not start sealfs:\n%s", m.logs())
	}
	if !isMounted(m.mnt) {
		t.Fatalf("sealfs printed its banner but %s is not mounted:\n%s", m.mnt, m.logs())
	}
	return m
}

// stop sends SIGINT to make's process group and waits for every process
// of it to exit and the mount to be gone; it kills the group and removes
// the mount, failing the test, if they do not within 30 seconds.
func (m *makeRun) stop(t *testing.T) {
	pgid := m.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGINT)
	deadline := time.Now().Add(30 * time.Second)
	exited := false
	for time.Now().Before(deadline) {
		if !exited {
			select {
			case <-m.exited:
				exited = true
			default:
			}
		}
		if exited && !groupAlive(pgid) && !isMounted(m.mnt) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("make run did not stop within 30s of SIGINT:\n%s", m.logs())
	syscall.Kill(-pgid, syscall.SIGKILL)
	if !exited {
		<-m.exited
	}
	if isMounted(m.mnt) {
		t.Errorf("a mount was left behind at %s; removing it", m.mnt)
		unmountLazy(m.mnt)
	}
}

// groupAlive reports whether a process of group pgid still runs.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// copyTree copies the repository at src to dst, leaving out .git and what
// the top-level .gitignore names. It understands the forms that file uses:
// "/name" (anchored at the top), "name/" (directories only) and globs
// without a slash (matched against every base name).
func copyTree(src, dst string) error {
	var ignore []string
	if b, err := os.ReadFile(filepath.Join(src, ".gitignore")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				ignore = append(ignore, l)
			}
		}
	}
	ignored := func(rel string, isDir bool) bool {
		for _, p := range ignore {
			dirOnly := strings.HasSuffix(p, "/")
			p = strings.TrimSuffix(p, "/")
			if dirOnly && !isDir {
				continue
			}
			if anchored, ok := strings.CutPrefix(p, "/"); ok {
				if m, _ := path.Match(anchored, rel); m {
					return true
				}
			} else if m, _ := path.Match(p, path.Base(rel)); m {
				return true
			}
		}
		return false
	}
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if rel == "." {
			return os.MkdirAll(target, 0o755)
		}
		if rel == ".git" || ignored(rel, e.IsDir()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, FIFOs: not part of a clone
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
