package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// namespaceSettings are the systemd.exec settings that give a service a
// mount namespace of its own (systemd.exec(5)). systemd makes that
// namespace a slave of the host's (mount --make-rslave /), sets it up, then
// makes / shared again inside it: mounts of the host reach the service,
// the service's mounts never reach the host.
var namespaceSettings = []string{
	"PrivateTmp", "PrivateDevices", "PrivateMounts", "ProtectSystem", "ProtectHome",
	"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
	"ProtectProc", "ProcSubset", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
	"ExecPaths", "NoExecPaths", "BindPaths", "BindReadOnlyPaths", "TemporaryFileSystem",
	"MountFlags", "RootDirectory", "RootImage", "MountAPIVFS",
}

// TestSystemdUnitMountVisible starts contrib/sealfs.service's ExecStart= the
// way systemd would set up its process (there is no systemd as PID 1
// here): a mount namespace as systemd makes one when the unit uses a
// setting that asks for it (unshare(1), slave then shared), its
// Environment=, UMask=, NoNewPrivileges= and CapabilityBoundingSet=
// (setpriv(1)). The mount must be visible and usable from the host's mount
// namespace, where the test runs. (The unit's cgroup and seccomp settings
// are checked by systemd-analyze in TestSystemdUnit, not applied here.)
func TestSystemdUnitMountVisible(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "unshare", "setpriv", "mount")
	if os.Geteuid() != 0 {
		notRun(t, "the unit runs as root")
	}
	unit := filepath.Join(repoRoot(t), "contrib", "sealfs.service")
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(dir, "root.key")
	os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600)
	mnt := filepath.Join(dir, "mnt")
	moves := strings.NewReplacer(
		"/var/lib/sealfs", filepath.Join(dir, "data"),
		"/srv/sealfs", mnt,
		"/etc/sealfs/root.key", keyFile,
		"/usr/local/bin/sealfs", sealfsBin(t),
		"127.0.0.1:9443", "127.0.0.1:0",
	)
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	settings := make(map[string][]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		settings[name] = append(settings[name], moves.Replace(value))
	}
	f.Close()
	start := settings["ExecStart"]
	if len(start) != 1 {
		t.Fatalf("unit: ExecStart %q", start)
	}

	var argv []string
	var namespaced []string
	for _, s := range namespaceSettings {
		if _, ok := settings[s]; ok {
			namespaced = append(namespaced, s)
		}
	}
	if len(namespaced) > 0 {
		argv = append(argv, "unshare", "--mount", "--propagation", "slave", "--",
			"sh", "-c", `mount --make-rshared / && exec "$@"`, "sh")
	}
	umask := "0022"
	if v := settings["UMask"]; len(v) > 0 {
		umask = v[len(v)-1]
	}
	argv = append(argv, "sh", "-c", `umask "$0" && exec "$@"`, umask)
	priv := []string{"setpriv"}
	if v := settings["NoNewPrivileges"]; len(v) > 0 && v[len(v)-1] == "yes" {
		priv = append(priv, "--no-new-privs")
	}
	if v := settings["CapabilityBoundingSet"]; len(v) > 0 {
		caps := "-all"
		for _, c := range strings.Fields(v[len(v)-1]) {
			caps += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		priv = append(priv, "--bounding-set", caps, "--inh-caps", "-all")
	}
	argv = append(argv, priv...)
	argv = append(argv, strings.Fields(start[0])...)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), settings["Environment"]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if isMounted(mnt) {
			unmountLazy(mnt)
		}
	})
	// The daemon prints its banner once mounted, in whichever namespace.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "credentials:") {
		select {
		case err := <-done:
			t.Fatalf("the unit's service exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unit's service did not start within a minute:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if !isMounted(mnt) {
		t.Fatalf("the service mounted, but not where the host sees it: %s is not a mount point outside the service's mount namespace (the unit's %s give it one)\n%s",
			mnt, strings.Join(namespaced, ", "), out.String())
	}
	if err := os.Mkdir(filepath.Join(mnt, "from-host"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(mnt, "from-host", "f"), []byte("seen"))
	if got := mustRead(t, filepath.Join(mnt, "from-host", "f")); string(got) != "seen" {
		t.Fatalf("read back %q", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopping with SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("not stopped within TimeoutStopSec")
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after the service stopped")
	}
}
