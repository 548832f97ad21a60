package lazyfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/mountinfo"
)

const envChild = "SEALFS_LAZYFS_CHILD" // "BACKING\nMOUNTPOINT" in the child

// ChildMain serves a mount and exits when the process is the child Start
// runs; otherwise it returns at once. Call it first thing in TestMain (or
// an init function) of every test package that uses Start.
func ChildMain() {
	v := os.Getenv(envChild)
	if v == "" {
		return
	}
	backing, mnt, _ := strings.Cut(v, "\n")
	if err := Serve(backing, mnt, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lazyfs:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Harness is a lazyfs mount served by a child process.
type Harness struct {
	Backing, Mount string

	t    testing.TB
	cmd  *exec.Cmd
	ctl  io.WriteCloser
	out  *bufio.Reader
	done chan struct{}
	cuts int
}

// Stats are the child's counters (of the current mount only).
type Stats struct {
	Files      int   // files with unsynced data
	DirtyBytes int64 // unsynced bytes (whole pages)
	Fsyncs     int64
	Synced     int64 // bytes moved to the backing directory by fsync
}

// Start mounts backing at mnt (both existing directories) in a child
// process and returns once the mount is up. The mount is removed in
// t.Cleanup.
func Start(t testing.TB, backing, mnt string) *Harness {
	t.Helper()
	h := &Harness{Backing: backing, Mount: mnt, t: t}
	h.start()
	t.Cleanup(h.Close)
	return h
}

func (h *Harness) start() {
	t := h.t
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+h.Backing+"\n"+h.Mount)
	cmd.Stderr = os.Stderr
	ctl, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.cmd, h.ctl, h.out = cmd, ctl, bufio.NewReader(out)
	h.done = make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		line, _ := h.out.ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("lazyfs did not mount %s (child said %q)", h.Mount, line)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("lazyfs did not mount %s within 30s", h.Mount)
	}
	go func() { cmd.Wait(); close(h.done) }()
}

// Cut is a power cut: the child dies with everything it did not sync, and
// its mount (with the kernel's page cache of it) is detached. Processes
// using the mount get errors from then on: kill them, then Remount.
func (h *Harness) Cut() {
	h.cmd.Process.Kill()
	<-h.done
	h.ctl.Close()
	detach(h.Mount)
	h.cuts++
}

// Remount mounts the backing directory again, after a Cut: it serves only
// what was synced before the cut.
func (h *Harness) Remount() {
	h.t.Helper()
	h.start()
}

// Close unmounts (what is unsynced is dropped, as at a cut) and stops the
// child. Safe to call more than once.
func (h *Harness) Close() {
	select {
	case <-h.done:
	default:
		h.ctl.Close()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			h.cmd.Process.Kill()
			<-h.done
		}
	}
	if mountinfo.Mounted(h.Mount) {
		detach(h.Mount)
	}
}

// FailNextFsync makes the next fsync of a file whose path (relative to the
// mount) contains substr fail with EIO; the file's unsynced data is then
// lost at the next cut although it still reads back until then (as with
// Linux's writeback errors).
func (h *Harness) FailNextFsync(substr string) {
	h.t.Helper()
	if reply := h.command("fail-fsync " + substr); reply != "ok" {
		h.t.Fatalf("lazyfs: fail-fsync: %s", reply)
	}
}

// Stats returns the child's counters.
func (h *Harness) Stats() Stats {
	h.t.Helper()
	reply := h.command("stats")
	var s Stats
	if _, err := fmt.Sscanf(reply, "stats %d %d %d %d", &s.Files, &s.DirtyBytes, &s.Fsyncs, &s.Synced); err != nil {
		h.t.Fatalf("lazyfs: stats: %q: %v", reply, err)
	}
	return s
}

func (h *Harness) command(c string) string {
	if _, err := fmt.Fprintln(h.ctl, c); err != nil {
		return err.Error()
	}
	line, err := h.out.ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(line)
}

func detach(dir string) {
	for i := 0; i < 50 && mountinfo.Mounted(dir); i++ {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}
