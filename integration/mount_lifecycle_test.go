package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountSIGTERMFlushes stops the daemon with SIGTERM while a file is open
// for writing (its last bytes still in the kernel's page cache): the daemon
// commits it, unmounts and exits cleanly, and the data is there after a
// restart.
func TestMountSIGTERMFlushes(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "term", true)
	data := pattern(3<<20+17, 21)
	f, err := os.Create(filepath.Join(b, "open-for-writing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	small, err := os.Create(filepath.Join(b, "small-open"))
	if err != nil {
		t.Fatal(err)
	}
	small.WriteString("not closed")
	// SIGTERM with both still open. The daemon detaches the mount lazily
	// (it is busy), so closing them afterwards may fail: that is expected.
	if err := d.Stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.Logs())
	}
	f.Close()
	small.Close()
	d.start()
	if got := mustRead(t, filepath.Join(b, "open-for-writing")); !bytes.Equal(got, data) {
		t.Fatalf("after SIGTERM and restart: %d bytes, want %d", len(got), len(data))
	}
	if got := string(mustRead(t, filepath.Join(b, "small-open"))); got != "not closed" {
		t.Fatalf("small file after SIGTERM: %q", got)
	}
}

// TestMountPointChecks checks the refusals that must say what to do: a
// non-empty directory, a directory already mounted, a machine without
// /dev/fuse; and that a stale mount left by a crash is cleaned up.
func TestMountPointChecks(t *testing.T) {
	requireFUSE(t)
	bin := sealfsBin(t)
	mountErr := func(mnt string, env ...string) string {
		t.Helper()
		cmd := exec.Command(bin, "mount", mnt, "--data", filepath.Join(t.TempDir(), "data"), "--s3", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+testAccessKey, "SEALFS_SECRET_KEY="+testSecretKey)
		cmd.Env = append(cmd.Env, env...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			if isMounted(mnt) {
				unmountLazy(mnt)
			}
			t.Fatalf("sealfs mount %s did not fail: it ran\n%s", mnt, out)
		}
		if err == nil {
			t.Fatalf("sealfs mount %s succeeded, want a refusal:\n%s", mnt, out)
		}
		return string(out)
	}

	nonEmpty := filepath.Join(t.TempDir(), "full")
	os.MkdirAll(nonEmpty, 0o755)
	mustWrite(t, filepath.Join(nonEmpty, "x"), nil)
	if out := mountErr(nonEmpty); !strings.Contains(out, "not empty") || !strings.Contains(out, "empty directory") {
		t.Errorf("non-empty mount point:\n%s", out)
	}

	d := startMount(t, DaemonOptions{})
	if out := mountErr(d.MountDir); !strings.Contains(out, "already a mount point") || !strings.Contains(out, "fusermount3 -u") {
		t.Errorf("mount point in use:\n%s", out)
	}

	// A crash leaves the mount behind, "transport endpoint is not
	// connected"; the next start removes it and mounts.
	newBucket(t, d, "survivor", false)
	mustWrite(t, d.Path("survivor", "f"), []byte("kept"))
	d.Kill()
	if _, err := os.Stat(d.MountDir); errnoOf(err) != syscall.ENOTCONN {
		t.Fatalf("after SIGKILL the mount point answers %v, want ENOTCONN (a stale mount)", err)
	}
	d.start()
	if got := string(mustRead(t, d.Path("survivor", "f"))); got != "kept" {
		t.Fatalf("after a crash and restart: %q", got)
	}
	if !strings.Contains(d.Logs(), "stale mount") {
		t.Errorf("the stale mount was removed without a word in the log:\n%s", d.Logs())
	}

	// No /dev/fuse: run it in a mount namespace whose /dev is empty.
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("unshare"); err == nil {
			mnt := filepath.Join(t.TempDir(), "nofuse")
			script := `mount -t tmpfs none /dev && exec "$@"`
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
				bin, "mount", mnt, "--data", filepath.Join(t.TempDir(), "data"), "--s3", "127.0.0.1:0")
			cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+testAccessKey, "SEALFS_SECRET_KEY="+testSecretKey)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "/dev/fuse is missing") || !strings.Contains(string(out), "modprobe fuse") {
				t.Errorf("without /dev/fuse: %v\n%s", err, out)
			}
		}
	}
}

// TestMountAllowOther mounts with --allow-other: another user gets in, and
// the kernel enforces the stored modes and owners.
func TestMountAllowOther(t *testing.T) {
	requireTool(t, "setpriv")
	if os.Geteuid() != 0 {
		notRun(t, "needs root to act as another user")
	}
	d := startMount(t, DaemonOptions{Args: []string{"--allow-other"}})
	b := newBucket(t, d, "shared-users", false)
	// t.TempDir's parents are 0700: let the other user reach the mount.
	for p := d.MountDir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	mustWrite(t, filepath.Join(b, "public"), []byte("anyone"))
	mustWrite(t, filepath.Join(b, "private"), []byte("root only"))
	if err := os.Chmod(filepath.Join(b, "private"), 0o600); err != nil {
		t.Fatal(err)
	}
	as := func(args ...string) (string, error) {
		return runErr("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
	}
	if out, err := as("cat", filepath.Join(b, "public")); err != nil || out != "anyone" {
		t.Fatalf("other user reading a 0644 file: %v %q", err, out)
	}
	if out, err := as("cat", filepath.Join(b, "private")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("other user reading a 0600 root file: %v %q, want Permission denied", err, out)
	}
	// The bucket directory is 1777 with --allow-other: users may create
	// files there (and the stored owner is theirs).
	if out, err := as("sh", "-c", "echo mine > "+filepath.Join(b, "theirs")); err != nil {
		t.Fatalf("other user creating a file: %v %s", err, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(b, "theirs"), &st); err != nil || st.Uid != 65534 {
		t.Fatalf("owner of a file another user created: %d, %v", st.Uid, err)
	}
	if out, err := as("chmod", "777", filepath.Join(b, "private")); err == nil {
		t.Fatalf("other user changed the mode of root's file: %s", out)
	}
}
