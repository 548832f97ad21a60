package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// startMetered starts a mounted daemon serving /metrics on a free loopback
// address, and returns it with that address (for scrape, operator_test.go).
func startMetered(t *testing.T) (*Daemon, string) {
	t.Helper()
	addr := freeAddr(t)
	return startMount(t, DaemonOptions{Args: []string{"--metrics", addr}}), addr
}

// TestMetrics runs a mounted daemon with --metrics, works through both
// doors, and reads the counters back from /metrics.
func TestMetrics(t *testing.T) {
	d, addr := startMetered(t)

	bucket := filepath.Join(d.MountDir, "metered")
	if err := os.Mkdir(bucket, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "setfattr", "-n", "user.sealfs.default-encryption", "-v", "aws:kms", bucket)
	mustWrite(t, filepath.Join(bucket, "a"), []byte("through the mount"))
	// Too big to keep inline: written into a blob.
	mustWrite(t, filepath.Join(bucket, "big"), make([]byte, 256<<10))
	if _, err := os.Stat(filepath.Join(bucket, "missing")); !os.IsNotExist(err) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	ctx := context.Background()
	out, err := d.S3().GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("metered"), Key: aws.String("a")})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if _, err := d.S3().HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("metered"), Key: aws.String("nope")}); err == nil {
		t.Fatal("HEAD of a missing key succeeded")
	}

	text := scrape(t, addr)
	for _, want := range []string{
		`sealfs_s3_requests_total{op="GetObject",status="200"} 1`,
		`sealfs_s3_requests_total{op="HeadObject",status="404"} 1`,
		`sealfs_s3_sent_bytes_total{op="GetObject"} 17`,
		`sealfs_fuse_operations_total{op="Mkdir",result="ok"} 1`,
		`sealfs_fuse_operations_total{op="Create",result="ok"} 2`,
		`sealfs_fuse_operations_total{op="SetXAttr",result="ok"} 1`,
		// The bucket's master key, and the system key the first start
		// creates to wrap the record-authentication key.
		`sealfs_kms_operations_total{op="CreateKey",result="ok"} 2`,
		`sealfs_kms_operations_total{op="GenerateDataKey",result="ok"} 2`,
		`sealfs_replication_backlog 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, re := range []string{
		`sealfs_s3_request_duration_seconds_count\{op="GetObject"\} 1`,
		`sealfs_kms_operations_total\{op="Decrypt",result="ok"\} [1-9]`,
		`sealfs_fuse_operation_duration_seconds_count\{op="Lookup"\} [1-9]`,
		`sealfs_fuse_operations_total\{op="Write",result="ok"\} [1-9]`,
		// Every metadata commit's phases; the bucket's setting was a
		// synced commit.
		`sealfs_meta_commit_phase_seconds_count\{phase="begin"\} [1-9]`,
		`sealfs_meta_commit_phase_seconds_count\{phase="body"\} [1-9]`,
		`sealfs_meta_commit_phase_seconds_count\{phase="commit"\} [1-9]`,
		`sealfs_meta_commit_phase_seconds_count\{phase="sync"\} [1-9]`,
		`sealfs_process_minor_page_faults_total [1-9]`,
		`sealfs_blob_commit_seconds_count [1-9]`,
		`sealfs_process_major_page_faults_total [0-9]`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("metrics lack %s", re)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}

// TestDaemonMemorySettings: the daemon gives the Go runtime its soft
// memory limit (160 MiB) and collection target (GOGC 50) unless GOMEMLIMIT
// and GOGC say otherwise; /metrics shows what the runtime runs with.
func TestDaemonMemorySettings(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   []string
		gogc  string
		limit string
	}{
		// Empty values are unset values, whatever the test's own
		// environment holds.
		{"defaults", []string{"GOGC=", "GOMEMLIMIT="}, "50", "1.6777216e+08"},
		{"environment", []string{"GOGC=80", "GOMEMLIMIT=300MiB"}, "80", "3.145728e+08"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := freeAddr(t)
			startDaemon(t, DaemonOptions{Args: []string{"--metrics", addr}, Env: c.env})
			text := scrape(t, addr)
			for _, want := range []string{"go_gc_gogc_percent " + c.gogc + "\n", "go_gc_gomemlimit_bytes " + c.limit + "\n"} {
				if !strings.Contains(text, want) {
					t.Errorf("metrics lack %q", strings.TrimSpace(want))
				}
			}
		})
	}
}
