// Package localkms starts a local implementation of the AWS KMS API
// (github.com/nsmithuk/local-kms, installed by .ci/run with go install) on
// loopback for tests of sealfs's aws-kms:// engine. It owns nothing but the
// child process and its data directory, and stops the process in
// t.Cleanup. It is for tests only.
package localkms

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Install is the command that installs the server.
const Install = "go install github.com/nsmithuk/local-kms@v0.0.0-20260228092603-2a5e92d09ab6"

// Server is one local-kms process and its data directory.
type Server struct {
	t        testing.TB
	bin, dir string
	port     string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Binary finds the local-kms binary: on PATH, or in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("local-kms"); err == nil {
		return p, nil
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "local-kms")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("local-kms is not installed (%s)", Install)
}

// Start starts local-kms on a free loopback-reachable port with an empty
// data directory. Where the binary is missing the test is skipped loudly,
// or fails under SEALFS_REQUIRE_TOOLS=1 (as CI sets).
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		msg := fmt.Sprintf("SKIPPING %s: %v; SEALFS_REQUIRE_TOOLS=1 makes this a failure", t.Name(), err)
		if os.Getenv("SEALFS_REQUIRE_TOOLS") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: "0"}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://127.0.0.1:" + s.port }

// URL is the sealfs --kms URL for this server.
func (s *Server) URL() string { return "aws-kms://eu-west-2?endpoint=" + s.Endpoint() }

var startedRE = regexp.MustCompile(`Local KMS started on [^ ]*:(\d+)`)

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin)
	cmd.Env = append(os.Environ(), "PORT="+s.port, "KMS_DATA_PATH="+s.dir,
		"KMS_SEED_PATH="+filepath.Join(s.dir, "no-seed.yaml"), "KMS_REGION=eu-west-2", "KMS_ACCOUNT_ID=111122223333")
	out, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting local-kms: %v", err)
	}
	portc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				portc <- m[1]
				sent = true
			}
		}
	}()
	select {
	case p := <-portc:
		s.port = p
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		s.t.Fatal("local-kms did not say it started within 30 s")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+s.port, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			s.t.Fatalf("local-kms is not answering on %s: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
}

// Stop kills the server (SIGKILL) and waits for it; its keys stay in its
// data directory for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Restart starts the server again on the same port with the same keys.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
