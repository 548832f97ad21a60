package etcdtest

import (
	"context"
	"net/http"
	"os"
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
