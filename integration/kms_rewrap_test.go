package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/admin"
)

// adminCmd is a `sealfs` admin command against d.
func adminCmd(d *Daemon, args ...string) *exec.Cmd {
	cmd := exec.Command(sealfsBin(d.t), append(args, "--data", d.DataDir)...)
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+d.AccessKey, "SEALFS_SECRET_KEY="+d.SecretKey)
	return cmd
}

// adminRun runs an admin command and returns its stdout; it fails the test
// if the command fails.
func adminRun(t *testing.T, d *Daemon, args ...string) string {
	t.Helper()
	cmd := adminCmd(d, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sealfs %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// keyInfo is the master key of bucket, as `sealfs kms keys --json` shows it.
func keyInfo(t *testing.T, d *Daemon, bucket string) admin.KeyInfo {
	t.Helper()
	var keys []admin.KeyInfo
	if err := json.Unmarshal([]byte(adminRun(t, d, "kms", "keys", "--json")), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		for _, b := range k.Buckets {
			if b == bucket {
				return k
			}
		}
	}
	t.Fatalf("no key for bucket %s among %d", bucket, len(keys))
	return admin.KeyInfo{}
}

func encryptingBucket(t *testing.T, c *awss3.Client, name string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String(name),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}}}); err != nil {
		t.Fatal(err)
	}
}

func s3Get(t *testing.T, c *awss3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GET %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func s3Put(c *awss3.Client, bucket, key string, body []byte) error {
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

// TestRewrapSIGKILL: `sealfs kms rewrap` throttled, the daemon killed with
// SIGKILL half way while a client overwrites objects; after a restart the
// same command continues where it stopped, and at the end every object is
// under the current version, reads back what was last written, and no
// object is missing or doubled.
func TestRewrapSIGKILL(t *testing.T) {
	const n = 300
	d := startDaemon(t, DaemonOptions{})
	c := d.S3()
	encryptingBucket(t, c, "rewrapped")
	want := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("k%04d", i)
		want[key] = []byte(fmt.Sprintf("object %d, first version", i))
		if i%50 == 0 {
			want[key] = pattern(200<<10, uint64(i)) // some in blob files
		}
		if err := s3Put(c, "rewrapped", key, want[key]); err != nil {
			t.Fatal(err)
		}
	}
	adminRun(t, d, "kms", "rotate", "rewrapped")
	if k := keyInfo(t, d, "rewrapped"); k.CurrentVersion != 2 || k.VersionsInUse[1] != n {
		t.Fatalf("before: %+v", k)
	}

	if out, err := adminCmd(d, "kms", "retire", "rewrapped", "1").CombinedOutput(); err == nil || !strings.Contains(string(out), "still use this key version") {
		t.Fatalf("retiring a version in use: %v\n%s", err, out)
	}

	rw := adminCmd(d, "kms", "rewrap", "rewrapped", "--rate", "150")
	var out strings.Builder
	rw.Stdout, rw.Stderr = &out, &out
	if err := rw.Start(); err != nil {
		t.Fatal(err)
	}
	// A writer overwrites objects while the rewrap runs.
	var wg sync.WaitGroup
	var mu sync.Mutex
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i = (i + 7) % n {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			key := fmt.Sprintf("k%04d", i)
			body := []byte(fmt.Sprintf("object %d, overwritten at %d", i, time.Now().UnixNano()))
			if err := s3Put(c, "rewrapped", key, body); err == nil {
				mu.Lock()
				want[key] = body
				mu.Unlock()
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for keyInfo(t, d, "rewrapped").VersionsInUse[2] < n/3 {
		if time.Now().After(deadline) {
			t.Fatalf("the rewrap made no progress:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	d.Kill()
	if err := rw.Wait(); err == nil {
		t.Fatalf("the rewrap command succeeded although its daemon was killed:\n%s", out.String())
	}
	d.start()
	c = d.S3() // a new port
	mid := int(keyInfo(t, d, "rewrapped").VersionsInUse[1])
	if mid == 0 || mid == n {
		t.Fatalf("killed with %d objects under version 1, want some", mid)
	}

	res := adminRun(t, d, "kms", "rewrap", "rewrapped")
	if !strings.Contains(res, "resumed after rewrapped/k") {
		t.Fatalf("the second run did not resume:\n%s", res)
	}
	t.Logf("after SIGKILL: %d objects left under version 1; second run: %s", mid, strings.TrimSpace(res))
	if k := keyInfo(t, d, "rewrapped"); k.VersionsInUse[1] != 0 || k.VersionsInUse[2] != n {
		t.Fatalf("after: %+v", k)
	}
	list, err := c.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String("rewrapped")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != n {
		t.Fatalf("list: %d objects, want %d", len(list.Contents), n)
	}
	for key, body := range want {
		if got := s3Get(t, c, "rewrapped", key); !bytes.Equal(got, body) {
			t.Fatalf("%s reads %q, want %q", key, trunc(got), trunc(body))
		}
	}
	// Version 1 unwraps nothing now: it can be retired.
	if out := adminRun(t, d, "kms", "retire", "rewrapped", "1"); !strings.Contains(out, "version 1 retired") {
		t.Fatalf("retire: %s", out)
	}
	if k := keyInfo(t, d, "rewrapped"); len(k.RetiredVersions) != 1 {
		t.Fatalf("after retiring: %+v", k)
	}
	if got := s3Get(t, c, "rewrapped", "k0000"); !bytes.Equal(got, want["k0000"]) {
		t.Fatal("k0000 reads back wrong after retiring version 1")
	}
	// Nothing left to do.
	if again := adminRun(t, d, "kms", "rewrap", "rewrapped"); !strings.Contains(again, fmt.Sprintf("0 re-wrapped, %d already current", n)) {
		t.Fatalf("third run:\n%s", again)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
