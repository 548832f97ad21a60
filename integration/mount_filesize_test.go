package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maxObjectSize is the largest object S3 stores, and so the largest file
// the mount stores: 5 TiB.
const maxObjectSize = 5 << 40

// usedBytes returns how much of the file system holding dir is in use.
func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestMountFileTooLarge: growing a file beyond 5 TiB — truncate(2), the
// truncate tool, fallocate, a write past the limit — fails with EFBIG
// (pjdfstest truncates to 999999999999999) and writes nothing: before,
// the daemon wrote zeros until the data disk was full. The data directory
// is a small loop-mounted ext4, so a regression fills it, not the real
// disk.
func TestMountFileTooLarge(t *testing.T) {
	requireFUSE(t)
	disk := smallDisk(t, 384<<20)
	d := startMount(t, DaemonOptions{DataDir: disk})
	b := newBucket(t, d, "big", true)
	f := filepath.Join(b, "f")
	mustWrite(t, f, []byte("hello"))
	before := usedBytes(t, disk)

	// Each call runs in a child process with a deadline: the old code
	// never returned from them (it wrote zeros until the disk was full,
	// then spun), and a process waiting for a FUSE answer cannot be killed;
	// killing the daemon ends the wait, and the test.
	tooLarge := func(what string, name string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			d.Kill()
			<-done
			t.Fatalf("%s: no answer after 30s; want EFBIG at once", what)
		}
		if err == nil || !strings.Contains(out.String(), "File too large") {
			t.Errorf("%s: %v, %q; want it to fail with EFBIG (\"File too large\")", what, err, out.String())
		}
	}
	requireTool(t, "truncate", "fallocate", "python3")
	truncate2 := "import os, sys\ntry:\n os.truncate(sys.argv[1], int(sys.argv[2]))\nexcept OSError as e:\n sys.exit(e.strerror)"
	for _, size := range []int64{999999999999999, maxObjectSize + 1} {
		n := strconv.FormatInt(size, 10)
		tooLarge("truncate(2) to "+n, "python3", "-c", truncate2, f, n)
		tooLarge("truncate -s "+n, "truncate", "-s", n, f)
	}
	tooLarge("fallocate to 5 TiB + 1", "fallocate", "-o", strconv.FormatInt(maxObjectSize-10, 10), "-l", "11", f)
	d.alive("after the truncates")

	if got := string(mustRead(t, f)); got != "hello" {
		t.Errorf("the file holds %q, want %q", got, "hello")
	}
	if fi, err := os.Stat(f); err != nil {
		t.Error(err)
	} else if fi.Size() != 5 {
		t.Errorf("the file's size is %d, want 5", fi.Size())
	}
	if grew := usedBytes(t, disk) - before; grew > 8<<20 {
		t.Errorf("the data disk grew by %d bytes, want (nearly) nothing", grew)
	}
}
