// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql binaries (/usr/lib/postgresql/<version>/bin, the newest), a
// cluster made by initdb in a temporary directory, the postmaster on a free
// loopback port with its unix socket in that directory. PostgreSQL refuses
// to run as root, so when the test runs as root the directory is given to
// the "postgres" system user (made by the Debian package) and the server
// runs as that user. Authentication is "trust" on loopback: the user is
// postgres, without a password.
//
// The server runs with fsync off (the tests kill processes, they do not cut
// power: the page cache survives; and it is much faster) and
// synchronous_commit on, so a commit that returns has reached the server's
// write-ahead log and survives the server's death. Stop and Restart stop it
// with SIGINT (fast shutdown) or SIGQUIT (immediate: a crash, recovered
// from the log at the next start). The postmaster is started with
// Pdeathsig, so a test binary that dies takes the server with it.
//
// When the binaries are missing, Start returns an error wrapping
// ErrNotInstalled: tests skip with a loud message, or fail when
// SEALFS_REQUIRE_ENGINES=1 (CI installs the postgresql package).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sealfs/sealfs/internal/freeport"
)

// ErrNotInstalled is wrapped by Start's error when PostgreSQL's binaries are
// not installed.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (Debian: apt-get install postgresql)")

// ReadyTimeout bounds the wait for a started server to accept connections.
const ReadyTimeout = 60 * time.Second

// BinDir returns the directory of the newest installed PostgreSQL's
// binaries ($SEALFS_PG_BINDIR overrides).
func BinDir() (string, error) {
	if d := os.Getenv("SEALFS_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/postgres: %w", ErrNotInstalled)
	}
	sort.Slice(ok, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[j])))
		return vi < vj
	})
	return ok[len(ok)-1], nil
}

// Server is a running PostgreSQL server. Its methods are safe for
// concurrent use.
type Server struct {
	Port int

	dir    string // temporary: data/, the socket, the log
	bin    string
	cred   *syscall.Credential // nil: run as ourselves
	schema atomic.Int64

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Start makes a cluster in a new temporary directory and starts the server.
// Stop it (Stop removes the directory).
func Start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sealfs-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	out, err := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if s.Port, err = freeport.Port(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.start(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// command runs name as the server's user, in the server's directory.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

// start starts the postmaster and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(), "-p", strconv.Itoa(s.Port),
		"-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=on",
		"-c", "shared_buffers=32MB", "-c", "max_connections=300", "-c", "max_pred_locks_per_transaction=256")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done, s.log = cmd, done, logf
	deadline := time.Now().Add(ReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("pgtest: postgres exited at start: %s", s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %v: %w: %s", ReadyTimeout, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop signals the postmaster (SIGINT: fast shutdown; SIGQUIT: immediate)
// and waits for it, killing it after a minute.
func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
	s.cmd, s.done, s.log = nil, nil, nil
}

// Restart stops the server (immediate: SIGQUIT, a crash; else a fast
// shutdown, which rolls back open transactions and closes connections) and
// starts it again on the same port and data, waiting until it serves.
func (s *Server) Restart(immediate bool) error {
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	s.stop(sig)
	return s.start()
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	s.stop(syscall.SIGINT)
	os.RemoveAll(s.dir)
}

// URL is the URL of database db as the postgres user over loopback TCP,
// followed by any extra query parameters ("k=v").
func (s *Server) URL(db string, params ...string) string {
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
	for _, p := range params {
		u += "&" + p
	}
	return u
}

// NewSchema creates a fresh schema in database postgres and returns the URL
// of a store in it (search_path names it).
func (s *Server) NewSchema(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.schema.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", err
	}
	return s.URL("postgres", "search_path="+name), nil
}
