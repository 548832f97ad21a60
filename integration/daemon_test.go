// Package integration holds sealfs's end-to-end tests: they build the
// sealfs binary, run it as a child process on a data directory of their
// own, and drive it as users do, through the FUSE mount (mount_*) and over
// S3 (s3_*).
package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/sealfs/sealfs/internal/banner"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// TestMain builds the sealfs binary once for the whole test process (unless
// SEALFS_BIN names one) and hands it to every helper through SEALFS_BIN.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Getenv("SEALFS_BIN") == "" {
		dir, err := os.MkdirTemp("", "sealfs-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "sealfs")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/sealfs/sealfs/cmd/sealfs")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: building sealfs: %v\n%s", err, out)
			return 1
		}
		os.Setenv("SEALFS_BIN", bin)
	}
	return m.Run()
}

// sealfsBin returns the binary TestMain built.
func sealfsBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("SEALFS_BIN")
	if bin == "" {
		t.Fatal("SEALFS_BIN is not set (TestMain builds the binary)")
	}
	return bin
}

// Credentials the test daemons use.
const (
	testAccessKey = "SEALFSMOUNTTEST00001"
	testSecretKey = "sealfs-mount-test/secret+key=abcdef0123"
)

// DaemonOptions configure startDaemon.
type DaemonOptions struct {
	// DataDir is the data directory; "" makes a new one. Pass the one of a
	// stopped daemon to start it again on the same data.
	DataDir string
	// Mount runs `sealfs mount` (at MountDir, or a new empty directory)
	// instead of `sealfs serve`. Mounting needs FUSE: call requireFUSE
	// first.
	Mount    bool
	MountDir string
	// Args are more flags; Env more environment variables.
	Args []string
	Env  []string
}

// Daemon is a sealfs daemon running as a child process of the test. It is
// stopped at the end of the test; a mount it leaves behind fails the test
// and is removed.
type Daemon struct {
	DataDir   string
	MountDir  string // "" unless mounted
	S3Addr    string // host:port of the HTTPS S3 listener
	CAFile    string // the listener's certificate, to trust
	AccessKey string
	SecretKey string

	t       testing.TB
	opts    DaemonOptions
	cmd     *exec.Cmd
	exited  chan error
	logFile string
}

// startDaemon starts a daemon and waits until it is serving (and mounted).
func startDaemon(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if opts.Mount && opts.MountDir == "" {
		opts.MountDir = filepath.Join(t.TempDir(), "mnt")
	}
	d := &Daemon{
		DataDir:   opts.DataDir,
		AccessKey: testAccessKey,
		SecretKey: testSecretKey,
		t:         t,
		opts:      opts,
	}
	if opts.Mount {
		d.MountDir = opts.MountDir
	}
	d.start()
	return d
}

func (d *Daemon) start() {
	t := d.t
	t.Helper()
	var args []string
	if d.opts.Mount {
		args = append(args, "mount", d.MountDir)
	} else {
		args = append(args, "serve")
	}
	args = append(args, "--data", d.DataDir, "--s3", "127.0.0.1:0", "--log-format", "json")
	args = append(args, d.opts.Args...)
	cmd := exec.Command(sealfsBin(t), args...)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	cmd.Env = append(cmd.Env, d.opts.Env...)
	d.logFile = filepath.Join(filepath.Dir(d.DataDir), fmt.Sprintf("daemon-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(d.logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	d.exited = make(chan error, 1)
	t.Cleanup(func() { d.cleanup(cmd) })
	b, full := banner.Wait(stdout, time.Minute)
	go func() { d.exited <- cmd.Wait() }()
	d.S3Addr, d.CAFile = b.S3Addr, b.CAFile
	if !full && d.S3Addr != "" {
		t.Fatalf("sealfs did not finish starting within a minute:\n%s", d.Logs())
	}
	if d.S3Addr == "" {
		t.Fatalf("sealfs did not start:\n%s", d.Logs())
	}
	if !filepath.IsAbs(d.CAFile) {
		d.CAFile = filepath.Join(d.DataDir, "tls", "cert.pem")
	}
	if d.opts.Mount && !isMounted(d.MountDir) {
		t.Fatalf("sealfs printed its banner but %s is not mounted:\n%s", d.MountDir, d.Logs())
	}
}

// cleanup stops a daemon still running at the end of the test and removes
// a mount it left, failing the test if it did.
func (d *Daemon) cleanup(cmd *exec.Cmd) {
	if d.cmd == cmd && cmd.ProcessState == nil {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-d.exited:
			if err != nil {
				// A daemon built with -race exits 66 after a race.
				d.t.Errorf("sealfs exited with %v on SIGTERM:\n%s", err, d.Logs())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-d.exited
			d.t.Errorf("sealfs did not exit within 30s of SIGTERM:\n%s", d.Logs())
		}
	}
	if d.MountDir != "" && isMounted(d.MountDir) {
		d.t.Errorf("a mount was left behind at %s; removing it", d.MountDir)
		unmountLazy(d.MountDir)
	}
}

// Stop sends SIGTERM and waits for the daemon to exit; it returns the
// exit error. The mount must be gone afterwards.
func (d *Daemon) Stop() error {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	var err error
	select {
	case err = <-d.exited:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		d.t.Fatalf("sealfs did not exit within a minute of SIGTERM:\n%s", d.Logs())
	}
	if d.MountDir != "" && isMounted(d.MountDir) {
		d.t.Errorf("sealfs exited after SIGTERM but left %s mounted", d.MountDir)
		unmountLazy(d.MountDir)
	}
	return err
}

// Kill kills the daemon with SIGKILL, as a crash would: the mount is left
// behind, stale.
func (d *Daemon) Kill() {
	d.t.Helper()
	d.cmd.Process.Kill()
	<-d.exited
}

// Restart stops the daemon and starts it again on the same data and mount
// point.
func (d *Daemon) Restart() {
	d.t.Helper()
	if err := d.Stop(); err != nil {
		d.t.Fatalf("sealfs exited with %v:\n%s", err, d.Logs())
	}
	d.start()
}

// Logs returns what the daemon logged so far (JSON lines).
func (d *Daemon) Logs() string {
	b, _ := os.ReadFile(d.logFile)
	return string(b)
}

// Pid returns the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Path returns a path inside the mount.
func (d *Daemon) Path(elem ...string) string {
	return filepath.Join(append([]string{d.MountDir}, elem...)...)
}

// ProcStatus reads a kB field of the daemon's /proc/PID/status (VmRSS,
// VmHWM, ...) in bytes.
func (d *Daemon) ProcStatus(field string) int64 {
	d.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				d.t.Fatal(err)
			}
			return n << 10
		}
	}
	d.t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// S3 returns an aws-sdk-go-v2 client for the daemon's HTTPS listener (path
// style), trusting only the daemon's certificate.
func (d *Daemon) S3() *awss3.Client {
	t := d.t
	t.Helper()
	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", d.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = false
	// The machine's CA bundle and profile variables would override the
	// trust set here.
	for _, v := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(v, "")
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(d.AccessKey, d.SecretKey, "")),
		config.WithHTTPClient(&http.Client{Transport: tr}),
		config.WithLogger(logging.Nop{}),
		config.WithSharedConfigFiles(nil),
		config.WithSharedCredentialsFiles(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String("https://" + d.S3Addr)
		o.UsePathStyle = true
	})
}

// requireFUSE skips the test, loudly, where FUSE mounts cannot be made;
// with SEALFS_REQUIRE_FUSE=1 (as in CI) it fails instead.
func requireFUSE(t testing.TB) {
	t.Helper()
	var why string
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "/dev/fuse is missing"
	} else if _, err := exec.LookPath("fusermount3"); err != nil && os.Geteuid() != 0 {
		why = "fusermount3 is not installed (apt-get install fuse3)"
	}
	if why == "" {
		return
	}
	notRun(t, why)
}

// notRun skips a test that cannot run here, loudly; under
// SEALFS_REQUIRE_FUSE=1 (as in CI, where everything it needs is installed
// and it runs as root) it fails instead, so nothing is skipped unseen.
func notRun(t testing.TB, why string) {
	t.Helper()
	msg := fmt.Sprintf("!!! TEST %s NOT RUN: %s !!!", t.Name(), why)
	if os.Getenv("SEALFS_REQUIRE_FUSE") == "1" {
		t.Fatal(msg + " (SEALFS_REQUIRE_FUSE=1 makes this a failure)")
	}
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// requireTool skips the test when a command-line tool it drives is
// missing (failing instead under SEALFS_REQUIRE_FUSE=1, where CI installs
// them).
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			notRun(t, name+" is not installed")
		}
	}
}

// startMount starts a mounted daemon.
func startMount(t testing.TB, opts DaemonOptions) *Daemon {
	t.Helper()
	requireFUSE(t)
	opts.Mount = true
	return startDaemon(t, opts)
}

// isMounted reports whether dir is a mount point.
func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func unmountLazy(dir string) {
	if err := exec.Command("fusermount3", "-u", "-z", dir).Run(); err != nil {
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
}

// run runs a command, failing the test with its output if it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := runErr(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// errnoOf returns the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// mustWrite writes a whole file.
func mustWrite(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustRead reads a whole file.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pattern returns n bytes that differ at every offset for a given seed, so
// a misplaced range shows.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
