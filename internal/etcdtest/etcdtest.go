// Package etcdtest runs a real etcd cluster for tests: three members (or
// any number) of /usr/bin/etcd on free loopback ports, each in its own data
// directory under a temporary directory, joined with a static
// --initial-cluster. It waits for the cluster to serve by polling every
// member's /health endpoint until a deadline, can SIGKILL a member and
// start it again on the same ports and data, and stops every process it
// started (in t.Cleanup for Start; through Stop for a cluster shared by a
// test binary, see Shared).
//
// When the etcd binary is missing, a test that asks for a cluster is
// skipped with a loud message, or fails when SEALFS_REQUIRE_ENGINES=1 (CI
// sets it and installs Debian's etcd-server package).
//
// Every member is started with Pdeathsig set, so a test binary that dies
// (a -timeout panic) takes its etcd processes with it.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/freeport"
)

// Bin is the etcd server binary the harness runs; SEALFS_ETCD overrides it.
var Bin = "/usr/bin/etcd"

// ReadyTimeout bounds the wait for a cluster or a restarted member to
// serve.
const ReadyTimeout = 60 * time.Second

// Cluster is a running etcd cluster. Its methods are safe for concurrent
// use.
type Cluster struct {
	dir     string
	bin     string
	token   string
	flags   []string // extra etcd flags of every member
	members []*Member

	mu      sync.Mutex
	stopped bool
}

// Member is one etcd process of a Cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	PeerURL   string
	dataDir   string
	logPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	log  *os.File
}

// binary returns the etcd binary, or an error saying it is missing.
func binary() (string, error) {
	bin := Bin
	if b := os.Getenv("SEALFS_ETCD"); b != "" {
		bin = b
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "", fmt.Errorf("etcd server %s not found (Debian: apt-get install etcd-server etcd-client): %w", bin, err)
	}
	return bin, nil
}

// Available reports whether the etcd binary is installed.
func Available() bool {
	_, err := binary()
	return err == nil
}

// Require skips t loudly when etcd is not installed, or fails it when
// SEALFS_REQUIRE_ENGINES=1.
func Require(t testing.TB) {
	t.Helper()
	if _, err := binary(); err != nil {
		msg := fmt.Sprintf("SKIPPING %s: %v; SEALFS_REQUIRE_ENGINES=1 makes this a failure", t.Name(), err)
		if os.Getenv("SEALFS_REQUIRE_ENGINES") == "1" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

// Start starts an n-member cluster for t and stops it in t.Cleanup; flags
// are extra etcd flags for every member (--max-txn-ops=1024, ...). It
// skips or fails t as Require does when etcd is missing.
func Start(t testing.TB, n int, flags ...string) *Cluster {
	t.Helper()
	Require(t)
	c, err := New(n, flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test binary's 3-member cluster, starting it on first
// use. The test binary's TestMain must call StopShared after m.Run. It
// skips or fails t as Require does when etcd is missing.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	Require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = New(3)
	}
	if shared.err != nil {
		t.Fatalf("etcdtest: shared cluster: %v", shared.err)
	}
	return shared.c
}

// StopShared stops the cluster Shared started, if any.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
}

// New starts an n-member cluster and waits until every member is healthy;
// flags are extra etcd flags for every member. The caller must call Stop.
func New(n int, flags ...string) (*Cluster, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	// A free port can be taken by another process between freePorts and
	// etcd's bind: a member that exits at once is tried again on new
	// ports.
	for attempt := 1; ; attempt++ {
		c, err := newCluster(bin, n, flags)
		if err == nil || !errors.Is(err, errExited) || attempt == 3 {
			return c, err
		}
	}
}

// errExited is wrapped by the error of a member that exited before it
// served.
var errExited = errors.New("exited before serving")

func newCluster(bin string, n int, flags []string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "sealfs-etcd-")
	if err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin, token: filepath.Base(dir), flags: flags}
	ports, err := freeport.Ports(2 * n)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dataDir:   filepath.Join(dir, fmt.Sprintf("m%d", i)),
			logPath:   filepath.Join(dir, fmt.Sprintf("m%d.log", i)),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.members {
		if err := c.start(m, strings.Join(initial, ","), "new"); err != nil {
			c.Stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	for _, m := range c.members {
		if err := m.waitHealthy(ctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// start starts m's process (state "new" the first time, "existing" on a
// restart; etcd ignores it once the data directory holds a member).
func (c *Cluster) start(m *Member, initial, state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	args := []string{
		"--name", m.Name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.ClientURL,
		"--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.PeerURL,
		"--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial,
		"--initial-cluster-token", c.token,
		"--initial-cluster-state", state,
		"--logger", "zap",
	}
	cmd := exec.Command(c.bin, append(args, c.flags...)...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	m.cmd, m.done, m.log = cmd, done, log
	return nil
}

// initialCluster is the --initial-cluster flag of c.
func (c *Cluster) initialCluster() string {
	var s []string
	for _, m := range c.members {
		s = append(s, m.Name+"="+m.PeerURL)
	}
	return strings.Join(s, ",")
}

// Members returns the cluster's members, in order.
func (c *Cluster) Members() []*Member { return c.members }

// Endpoints returns the members' client addresses, host:port.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, strings.TrimPrefix(m.ClientURL, "http://"))
	}
	return eps
}

// URL returns sealfs's metadata URL for the cluster under a key prefix:
// etcd://host:port,host:port,host:port/prefix.
func (c *Cluster) URL(prefix string) string {
	return "etcd://" + strings.Join(c.Endpoints(), ",") + "/" + strings.TrimPrefix(prefix, "/")
}

// Dir returns the cluster's temporary directory (data and logs).
func (c *Cluster) Dir() string { return c.dir }

// Kill SIGKILLs member i and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("etcdtest: %s is not running", m.Name)
	}
	m.cmd.Process.Kill()
	<-m.done
	m.log.Close()
	m.cmd = nil
	return nil
}

// Restart starts member i again (after Kill) on its ports and data
// directory, and waits until it is healthy.
func (c *Cluster) Restart(i int) error {
	m := c.members[i]
	m.mu.Lock()
	running := m.cmd != nil
	m.mu.Unlock()
	if running {
		return fmt.Errorf("etcdtest: %s is running", m.Name)
	}
	if err := c.start(m, c.initialCluster(), "existing"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	return m.waitHealthy(ctx)
}

// Stop kills every member and removes the cluster's directory. It may be
// called more than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	for _, m := range c.members {
		m.mu.Lock()
		if m.cmd != nil {
			m.cmd.Process.Kill()
			<-m.done
			m.log.Close()
			m.cmd = nil
		}
		m.mu.Unlock()
	}
	os.RemoveAll(c.dir)
}

// running reports whether m's process has not exited.
func (m *Member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// waitHealthy polls m's /health endpoint until it says the member serves
// (it has a leader and a quorum read succeeds), the process exits or ctx
// ends.
func (m *Member) waitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		if !m.running() {
			return fmt.Errorf("etcdtest: %s %w; log:\n%s", m.Name, errExited, m.LogTail(4096))
		}
		last = m.health(ctx, client)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: %s not healthy: %v (%w); log:\n%s", m.Name, last, ctx.Err(), m.LogTail(4096))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *Member) health(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"health":"true"`)) {
		return errors.New("health: " + resp.Status + " " + strings.TrimSpace(string(body)))
	}
	return nil
}

// LogTail returns up to the last n bytes of m's log.
func (m *Member) LogTail(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
