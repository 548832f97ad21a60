package integration

// Helpers of the replication tests, over the daemons of daemon_test.go.
// (Names carry a repl prefix so they stay apart from other helpers of this
// package.)

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// freeAddr returns a loopback address with a port free right now (so a
// daemon can also be restarted on the address its peers know).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replDaemon is a daemon of daemon_test.go serving one region on a fixed
// address, with an S3 client that signs for that region.
type replDaemon struct {
	*Daemon
	t      *testing.T
	region string
	addr   string
	client *s3.Client
}

// replStart starts `sealfs serve` on dir for region at addr. Retries are
// capped at 300 ms so that a target that comes back is drained quickly.
func replStart(t *testing.T, dir, region, addr string, env ...string) *replDaemon {
	t.Helper()
	d := &replDaemon{t: t, region: region, addr: addr}
	d.Daemon = startDaemon(t, DaemonOptions{
		DataDir: dir,
		Args:    []string{"--s3", addr, "--region", region},
		Env:     append([]string{"SEALFS_REPLICATION_RETRY_MAX_DELAY=300ms"}, env...),
	})
	d.client = d.newClient()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of %s:\n%s", region, lastLines(d.Logs(), 40))
		}
	})
	return d
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *replDaemon) caFile() string { return filepath.Join(d.DataDir, "tls", "cert.pem") }

func (d *replDaemon) endpoint() string { return "https://" + d.addr }

func (d *replDaemon) newClient() *s3.Client {
	pem, err := os.ReadFile(d.caFile())
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return s3.New(s3.Options{
		Region:       d.region,
		Credentials:  credentials.NewStaticCredentialsProvider(d.AccessKey, d.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 16}},
		BaseEndpoint: aws.String(d.endpoint()),
		UsePathStyle: true,
	})
}

// stop ends the daemon gracefully (SIGTERM).
func (d *replDaemon) stop() {
	d.t.Helper()
	if err := d.Stop(); err != nil {
		d.t.Fatalf("daemon %s exited with %v", d.region, err)
	}
}

// kill ends the daemon with SIGKILL, as a crash.
func (d *replDaemon) kill() { d.Kill() }

// restart starts a stopped or killed daemon again on the same data
// directory and address.
func (d *replDaemon) restart() {
	d.t.Helper()
	d.start()
	d.client = d.newClient()
}

// cli runs `sealfs ARGS... --data DIR` against this daemon.
func (d *replDaemon) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sealfsBin(d.t), append(args, "--data", d.DataDir)...)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (d *replDaemon) mustCLI(args ...string) string {
	d.t.Helper()
	out, err := d.cli(args...)
	if err != nil {
		d.t.Fatalf("sealfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// replStatus is what `sealfs replicate status --json` prints.
type replStatus struct {
	Backlog       int            `json:"backlog"`
	Failed        int            `json:"failed"`
	Retries       int            `json:"retries"`
	BucketBacklog map[string]int `json:"bucketBacklog"`
}

type replBucketStatus struct {
	Backlog int              `json:"backlog"`
	Objects map[string]int64 `json:"objects"`
}

func (d *replDaemon) status() replStatus {
	d.t.Helper()
	var st replStatus
	if err := json.Unmarshal([]byte(d.mustCLI("replicate", "status", "--json")), &st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

func (d *replDaemon) bucketStatus(bucket string) replBucketStatus {
	d.t.Helper()
	var st replBucketStatus
	if err := json.Unmarshal([]byte(d.mustCLI("replicate", "status", bucket, "--json")), &st); err != nil {
		d.t.Fatal(err)
	}
	return st
}

// connect registers dst as src's target for dst's region.
func replConnect(t *testing.T, src, dst *replDaemon) {
	t.Helper()
	src.mustCLI("replicate", "target", "add", dst.region, "--endpoint", dst.endpoint(),
		"--access-key", dst.AccessKey, "--secret-key", dst.SecretKey, "--ca", dst.caFile())
}

// replWait polls cond until it holds (a deadline for the test, not a timed
// assertion).
func replWait(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replGrep reports the files under dir holding needle.
func replGrep(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			hits = append(hits, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func replMustMkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
