package integration

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// An operator's first day: what happens around the daemon rather than
// inside it.

// TestCtrlCWithTee runs `sealfs mount ./mnt 2>&1 | tee log` as a shell
// would (one process group, the daemon's stdout and stderr a real pipe
// into tee) and presses Ctrl-C: tee dies first, so every log line the
// daemon writes while it shuts down meets a pipe without a reader. The
// daemon must still commit, unmount and exit cleanly: no dead mount
// ("Transport endpoint is not connected"), and the file written before is
// there on the next start.
func TestCtrlCWithTee(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "tee")
	dir := t.TempDir()
	data, mnt, logPath := filepath.Join(dir, "data"), filepath.Join(dir, "mnt"), filepath.Join(dir, "log")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	tee := exec.Command("tee", logPath)
	tee.Stdin, tee.Stdout = pr, io.Discard
	tee.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := tee.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := tee.Process.Pid
	teeDone := make(chan error, 1)
	go func() { teeDone <- tee.Wait() }()
	t.Cleanup(func() { tee.Process.Kill() })

	d := exec.Command(sealfsBin(t), "mount", mnt, "--data", data, "--s3", "127.0.0.1:0", "--log-format", "text")
	d.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+testAccessKey, "SEALFS_SECRET_KEY="+testSecretKey)
	d.Stdout, d.Stderr = pw, pw // 2>&1 | tee
	d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	pw.Close()
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	t.Cleanup(func() {
		d.Process.Kill()
		if isMounted(mnt) {
			t.Errorf("a mount was left behind at %s; removing it", mnt)
			unmountLazy(mnt)
		}
	})
	// Ready: mounted, and the daemon's "mounted" line has reached tee's
	// file (the mount shows before the daemon logs that it serves).
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if isMounted(mnt) && strings.Contains(string(b), "mounted") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted and logged within a minute (mounted: %v); log:\n%s", isMounted(mnt), b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Mkdir(filepath.Join(mnt, "teed"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(mnt, "teed", "f"), []byte("written before Ctrl-C"))

	// Ctrl-C: the terminal sends SIGINT to the whole group; tee goes first.
	syscall.Kill(pgid, syscall.SIGINT)
	select {
	case <-teeDone:
	case <-time.After(10 * time.Second):
		t.Fatal("tee did not exit on SIGINT")
	}
	syscall.Kill(-pgid, syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("sealfs exited with %v after Ctrl-C with its log pipe closed", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("sealfs did not exit within a minute of Ctrl-C")
	}
	if isMounted(mnt) {
		_, statErr := os.Stat(filepath.Join(mnt, "teed"))
		t.Fatalf("sealfs left a dead mount at %s (stat: %v)", mnt, statErr)
	}

	// Everything was committed: the next start serves the file.
	s := startDaemon(t, DaemonOptions{DataDir: data})
	out, err := s.S3().GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String("teed"), Key: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "written before Ctrl-C" {
		t.Fatalf("after restart: %q", b)
	}
}

// TestProgressOutput runs scrub and resync's progress off a terminal (a
// pipe) and on one (script(1) gives it a pseudo-terminal): off a terminal
// no line is printed twice; on one the final bar is drawn once and the
// summary starts a line of its own; counts of one are singular.
func TestProgressOutput(t *testing.T) {
	requireTool(t, "script")
	d := startMount(t, DaemonOptions{})
	if err := os.Mkdir(filepath.Join(d.MountDir, "prog"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(d.MountDir, "prog", "one"), []byte("1"))
	bin := sealfsBin(t)

	// Off a terminal.
	env := append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	cmd := exec.Command(bin, "scrub", "--data", d.DataDir)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scrub: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			t.Errorf("scrub off a terminal prints %q twice:\n%s", lines[i], stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), "scrub: 1 object (1 byte) verified, 0 skipped, 0 damaged; 0 orphan blobs (0 bytes) removed") {
		t.Errorf("scrub summary: %q", stdout.String())
	}
	sc := exec.Command(bin, "status", "--data", d.DataDir)
	sc.Env = env
	b, err := sc.CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, b)
	}
	status := string(b)
	if !strings.Contains(status, "1 bucket ") {
		t.Errorf("status of one bucket:\n%s", status)
	}

	// On a terminal.
	sc = exec.Command("script", "-qefc", bin+" scrub --data "+d.DataDir, "/dev/null")
	sc.Env = env
	b, err = sc.CombinedOutput()
	if err != nil {
		t.Fatalf("scrub on a terminal: %v\n%s", err, b)
	}
	out := string(b)
	t.Logf("scrub on a terminal: %q", out)
	if n := strings.Count(out, "1/1"); n != 1 {
		t.Errorf("the final bar (1/1) is drawn %d times on a terminal: %q", n, out)
	}
	var summary bool
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "scrub: 1 object") {
			summary = true
			if !strings.HasPrefix(line, "scrub: ") {
				t.Errorf("the summary is glued to the bar: %q", line)
			}
		}
	}
	if !summary {
		t.Errorf("no summary on a terminal: %q", out)
	}
}

// TestS3cmdInfo: `s3cmd info` asks for the object's and the bucket's ACL;
// sealfs answers the single owner's FULL_CONTROL and logs no error.
func TestS3cmdInfo(t *testing.T) {
	requireTool(t, "s3cmd")
	d := startDaemon(t, DaemonOptions{})
	cfg := filepath.Join(t.TempDir(), "s3cfg")
	conf := "[default]\naccess_key = " + d.AccessKey + "\nsecret_key = " + d.SecretKey + "\nhost_base = " + d.S3Addr +
		"\nhost_bucket = " + d.S3Addr + "\nuse_https = True\nca_certs_file = " + d.CAFile +
		"\ncheck_ssl_certificate = True\nsignature_v2 = False\nbucket_location = us-east-1\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "f")
	mustWrite(t, f, []byte("info"))
	s3cmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("s3cmd", append([]string{"-c", cfg, "--no-progress"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "AWS_CA_BUNDLE=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=", "CURL_CA_BUNDLE=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("s3cmd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	s3cmd("mb", "s3://infobucket")
	s3cmd("put", f, "s3://infobucket/f")
	for _, target := range []string{"s3://infobucket/f", "s3://infobucket"} {
		out := s3cmd("info", target)
		if !strings.Contains(out, "FULL_CONTROL") {
			t.Errorf("s3cmd info %s shows no owner's FULL_CONTROL:\n%s", target, out)
		}
	}
	if logs := d.Logs(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("s3cmd info made the daemon log an error:\n%s", logs)
	}
}

// TestMakeRun: `make run` on a fresh clone says it is building, shows each
// package compiled against the total, and starts the daemon with its
// metrics listener on (127.0.0.1:9464).
func TestMakeRun(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "make", "awk")
	dir := filepath.Join(t.TempDir(), "sealfs")
	if err := copyTree(repoRoot(t), dir); err != nil {
		t.Fatal(err)
	}
	m := startMakeRun(t, dir, cleanEnv(t.TempDir()))
	logs := m.logs()
	for _, want := range []string{
		"building bin/sealfs: the first build compiles sealfs",
		"metrics:     http://127.0.0.1:9464/metrics",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("make run's output lacks %q:\n%s", want, logs)
		}
	}
	if !regexp.MustCompile(`\[\d+/\d+\] github\.com/sealfs/sealfs/cmd/sealfs\n`).MatchString(logs) {
		t.Errorf("make run shows no counted progress:\n%s", logs)
	}
	text := scrape(t, "127.0.0.1:9464")
	for _, want := range []string{"sealfs_build_info{", "sealfs_objects 0", "sealfs_buckets 0"} {
		if !strings.Contains(text, want) {
			t.Errorf("make run's metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetricsFromStart: every series exists before its first event, and
// the store's contents are gauges: buckets, objects, bytes, the encrypted
// share (in total and per bucket), with the build's version.
func TestMetricsFromStart(t *testing.T) {
	d, addr := startMetered(t)
	text := scrape(t, addr)
	for _, want := range []string{
		`sealfs_s3_requests_total{op="PutObject",status="200"} 0`,
		`sealfs_s3_request_duration_seconds_count{op="GetObject"} 0`,
		`sealfs_fuse_operations_total{op="Write",result="ok"} 0`,
		`sealfs_fuse_operation_duration_seconds_count{op="Read"} 0`,
		`sealfs_kms_operations_total{op="Decrypt",result="error"} 0`,
		`sealfs_build_info{commit=`,
		"sealfs_buckets 0", "sealfs_objects 0", "sealfs_bytes 0", "sealfs_encrypted_bytes 0", "sealfs_encrypted_share 1",
		"sealfs_replication_backlog 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("a fresh daemon's metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Fatalf("metrics:\n%s", text)
	}

	for _, b := range []string{"sealed", "open"} {
		if err := os.Mkdir(filepath.Join(d.MountDir, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "setfattr", "-n", "user.sealfs.default-encryption", "-v", "aws:kms", filepath.Join(d.MountDir, "sealed"))
	mustWrite(t, filepath.Join(d.MountDir, "sealed", "a"), make([]byte, 3000))
	mustWrite(t, filepath.Join(d.MountDir, "open", "b"), make([]byte, 1000))
	wants := []string{
		"sealfs_buckets 2", "sealfs_objects 2", "sealfs_bytes 4000", "sealfs_encrypted_objects 1",
		"sealfs_encrypted_bytes 3000", "sealfs_encrypted_share 0.75",
		`sealfs_bucket_objects{bucket="sealed"} 1`, `sealfs_bucket_bytes{bucket="open"} 1000`,
		`sealfs_bucket_encrypted_bytes{bucket="sealed"} 3000`, `sealfs_bucket_default_encryption{bucket="open"} 0`,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		text = scrape(t, addr)
		var missing []string
		for _, w := range wants {
			if !strings.Contains(text, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after writes, metrics lack %q:\n%s", missing, text)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestBucketNameRefusedSaysWhy: mkdir at the top of the mount with a name
// S3 refuses fails with EINVAL, and the daemon's log says which rule the
// name breaks; the README states the rules.
func TestBucketNameRefusedSaysWhy(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	for name, why := range map[string]string{
		"b1":        "want 3 to 63 characters, have 2",
		"My_Photos": "want only lower-case letters, digits, dots and hyphens",
		"-photos":   "want a letter or digit at both ends",
	} {
		err := os.Mkdir(filepath.Join(d.MountDir, name), 0o755)
		if errnoOf(err) != syscall.EINVAL {
			t.Errorf("mkdir %s: %v, want EINVAL", name, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(d.Logs(), why) || !strings.Contains(d.Logs(), `"name":"`+name+`"`) {
			if time.Now().After(deadline) {
				t.Errorf("mkdir %s: the log does not say why (%q):\n%s", name, why, d.Logs())
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	prose := strings.Join(strings.Fields(string(readme)), " ")
	for _, rule := range []string{"3 to 63 characters", "lower-case letters, digits, dots and hyphens"} {
		if !strings.Contains(prose, rule) {
			t.Errorf("README.md does not state the bucket naming rule %q", rule)
		}
	}
}

// TestReadmeSecretsOffCommandLines: no shell block of the README puts a
// secret key on a command line or into a file it writes; the environment
// variables (SEALFS_TARGET_SECRET_KEY, AWS_SECRET_ACCESS_KEY, ...) or the
// credentials file carry them.
func TestReadmeSecretsOffCommandLines(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inShell := false
	for i, line := range strings.Split(string(readme), "\n") {
		if info, ok := strings.CutPrefix(line, "```"); ok {
			inShell = !inShell && (info == "sh" || strings.HasPrefix(info, "sh "))
			continue
		}
		if !inShell {
			continue
		}
		for _, bad := range []string{"--secret-key", "secret_key =", "secret_access_key ="} {
			if strings.Contains(line, bad) {
				t.Errorf("README.md:%d puts a secret on a command line or in a file: %s", i+1, line)
			}
		}
	}
}

// TestScrubDamageExit3: the last row of the exit-code table. A flipped
// byte in an object's blob makes `sealfs scrub` list it and exit 3,
// saying so in the singular for one object.
func TestScrubDamageExit3(t *testing.T) {
	d := startDaemon(t, DaemonOptions{})
	ctx := context.Background()
	if _, err := d.S3().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("dmg")}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.S3().PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("dmg"), Key: aws.String("obj"),
		Body: strings.NewReader(strings.Repeat("sealfs ", 100000))}); err != nil {
		t.Fatal(err)
	}
	blobs := storedBlobs(t, d.DataDir)
	if len(blobs) != 1 {
		t.Fatalf("want one blob file, have %q", blobs)
	}
	f, err := os.OpenFile(blobs[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 4096)
	b[0] ^= 0x55
	f.WriteAt(b, 4096)
	f.Close()

	cmd := exec.Command(sealfsBin(t), "scrub", "--data", d.DataDir)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("scrub of a damaged object: %v, want exit 3\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "DAMAGED dmg/obj") || !strings.Contains(stderr.String(), "sealfs: 1 damaged object\n") {
		t.Fatalf("scrub output:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}
