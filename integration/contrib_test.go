package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The files in contrib/ are tried for real: the fstab helper through
// mount(8), the systemd unit by running its own Environment= and ExecStart=
// lines (there is no systemd as PID 1 to start it here) and stopping it with
// its KillSignal; systemd-analyze checks its syntax where it is installed.

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// TestFstabHelper installs contrib/mount.fuse.sealfs where mount(8) looks
// for helpers and mounts with `mount -t fuse.sealfs`, as an fstab line
// would; umount stops the daemon.
func TestFstabHelper(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "mount", "umount")
	if os.Geteuid() != 0 {
		notRun(t, "installing a mount helper needs root")
	}
	const helper = "/sbin/mount.fuse.sealfs"
	if _, err := os.Stat(helper); err == nil {
		notRun(t, helper+" already exists; not replacing it")
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "contrib", "mount.fuse.sealfs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, src, 0o755); err != nil {
		notRun(t, fmt.Sprintf("cannot install %s: %v", helper, err))
	}
	t.Cleanup(func() { os.Remove(helper) })

	dir := t.TempDir()
	data, mnt, log := filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), filepath.Join(dir, "log")
	os.Mkdir(mnt, 0o755)
	t.Cleanup(func() {
		if isMounted(mnt) {
			unmountLazy(mnt)
		}
	})
	cmd := exec.Command("mount", "-t", "fuse.sealfs", data, mnt, "-o", "defaults,_netdev,s3=127.0.0.1:0,log="+log)
	cmd.Env = append(os.Environ(), "SEALFS_BIN="+sealfsBin(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mount -t fuse.sealfs: %v\n%s", err, out)
	}
	if !isMounted(mnt) {
		t.Fatal("mount returned but nothing is mounted")
	}
	if err := os.Mkdir(filepath.Join(mnt, "fstab-bucket"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(mnt, "fstab-bucket", "f"), []byte("through fstab"))
	if got := mustRead(t, filepath.Join(mnt, "fstab-bucket", "f")); string(got) != "through fstab" {
		t.Fatalf("read back %q", got)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	// The daemon notices, commits, closes the store and exits: the data
	// directory opens again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		logs, _ := os.ReadFile(log)
		if bytes.Contains(logs, []byte("kms keyring closed")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not shut down after umount; log:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	bad := exec.Command("mount", "-t", "fuse.sealfs", data, mnt, "-o", "bogus_option")
	bad.Env = cmd.Env
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown option bogus_option") {
		t.Fatalf("unknown option: %v\n%s", err, out)
	}
}

// TestSystemdUnit runs contrib/sealfs.service's Environment= and ExecStart=
// with its paths moved into a temporary directory, checks the mount and the
// S3 endpoint come up, and stops it with the unit's KillSignal within its
// TimeoutStopSec.
func TestSystemdUnit(t *testing.T) {
	requireFUSE(t)
	unit := filepath.Join(repoRoot(t), "contrib", "sealfs.service")
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			// The binary is not installed at /usr/local/bin on a test machine.
			if line != "" && !strings.Contains(line, "is not executable") {
				t.Errorf("systemd-analyze verify: %s", line)
			}
		}
	}
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "root.key")
	os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600)
	moves := strings.NewReplacer(
		"/var/lib/sealfs", filepath.Join(dir, "data"),
		"/srv/sealfs", filepath.Join(dir, "mnt"),
		"/etc/sealfs/root.key", keyFile,
		"/usr/local/bin/sealfs", sealfsBin(t),
		"127.0.0.1:9443", "127.0.0.1:0",
	)
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	var start, kill, timeout string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		value = moves.Replace(value)
		switch name {
		case "Environment":
			env = append(env, value)
		case "ExecStart":
			start = value
		case "KillSignal":
			kill = value
		case "TimeoutStopSec":
			timeout = value
		}
	}
	if start == "" || kill != "SIGTERM" || timeout == "" {
		t.Fatalf("unit: ExecStart %q KillSignal %q TimeoutStopSec %q", start, kill, timeout)
	}
	args := strings.Fields(start)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	t.Cleanup(func() {
		cmd.Process.Kill()
		if isMounted(mnt) {
			unmountLazy(mnt)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !isMounted(mnt) {
		if time.Now().After(deadline) {
			t.Fatalf("the unit's ExecStart did not mount; output:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := os.Mkdir(filepath.Join(mnt, "unit-bucket"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(mnt, "unit-bucket", "f"), []byte("x"))
	stop, err := time.ParseDuration(timeout + "s")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopping with SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(stop):
		t.Fatalf("not stopped within TimeoutStopSec=%s", timeout)
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after the service stopped")
	}
	if !strings.Contains(out.String(), `"level":"INFO"`) {
		t.Fatalf("SEALFS_LOG_FORMAT=json from the unit not applied:\n%s", out.String())
	}
}
