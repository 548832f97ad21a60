package etcdtest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterKillRestart starts a 3-member cluster, SIGKILLs one member,
// checks the other two still serve, restarts it, and checks that Stop
// leaves no process and no directory behind.
func TestClusterKillRestart(t *testing.T) {
	c := Start(t, 3)
	if len(c.Endpoints()) != 3 {
		t.Fatalf("endpoints %v", c.Endpoints())
	}
	client := &http.Client{Timeout: 2 * time.Second}
	ctx := context.Background()
	victim := c.Members()[0]
	pid := victim.cmd.Process.Pid
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	if victim.running() {
		t.Fatal("killed member still running")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d still exists after Kill", pid)
	}
	if err := victim.health(ctx, client); err == nil {
		t.Fatal("killed member answers /health")
	}
	// The two others keep a quorum (a new leader if the victim led).
	for _, m := range c.Members()[1:] {
		wctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
		err := m.waitHealthy(wctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	if err := victim.health(ctx, client); err != nil {
		t.Fatalf("restarted member: %v", err)
	}
	var pids []int
	for _, m := range c.Members() {
		pids = append(pids, m.cmd.Process.Pid)
	}
	c.Stop()
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err == nil {
			t.Errorf("process %d survived Stop", p)
		}
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("cluster directory survived Stop: %v", err)
	}
}

// TestMemberThatCannotStart checks that a member that exits at once (here
// on a flag etcd does not know) is reported with its log, after the
// retries, and that nothing is left behind.
func TestMemberThatCannotStart(t *testing.T) {
	Require(t)
	// The cluster's directory goes under a temporary directory of this
	// test's own: other packages' tests start etcd clusters under /tmp at
	// the same time, and their directories are not this test's leftovers.
	t.Setenv("TMPDIR", t.TempDir())
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "sealfs-etcd-*"))
	c, err := New(1, "--no-such-flag")
	if err == nil {
		c.Stop()
		t.Fatal("a member with an unknown flag started")
	}
	if !errors.Is(err, errExited) || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("error %v: want errExited and the log naming the flag", err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "sealfs-etcd-*"))
	if len(after) > len(before) {
		t.Fatalf("temporary directories left: %v (before: %v)", after, before)
	}
}
