package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestEncryptExistingSIGKILL: `sealfs bucket encrypt-existing` is refused
// on a plain bucket; once default encryption is on it rewrites the objects
// stored before, throttled; the daemon is killed with SIGKILL half way
// while a client overwrites objects; after a restart the same command
// continues where it stopped. At the end every object is encrypted, has its
// content type and user metadata, reads back what was last written, none is
// missing or doubled, no blob file holds the plaintext marker, and no file
// of the data directory (Badger's included) holds the plaintext of the
// objects the run replaced.
func TestEncryptExistingSIGKILL(t *testing.T) {
	const n = 200
	ctx := context.Background()
	d := startDaemon(t, DaemonOptions{})
	c := d.S3()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("legacy")}); err != nil {
		t.Fatal(err)
	}
	marker := []byte("SEALFS-ENCRYPT-EXISTING-IT-MARKER-9d1")
	// Even keys, which the concurrent writer below never overwrites, carry
	// a second marker: no file of the data directory, the metadata
	// engine's included, may hold it at the end.
	marker2 := []byte("SEALFS-ENCRYPT-EXISTING-INLINE-MARKER-5e2")
	var mu sync.Mutex
	want := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("k%04d", i)
		size := 1000
		if i%25 == 0 {
			size = 300 << 10 // in a blob file, not inline
		}
		want[key] = markerBody(marker, size)
		if i%2 == 0 {
			want[key] = markerBody(marker2, size)
		}
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("legacy"), Key: aws.String(key), Body: strings.NewReader(string(want[key])),
			ContentType: aws.String("text/x-legacy"), Metadata: map[string]string{"mtime": "1600000000", "origin": "before"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(filesHolding(t, filepath.Join(d.DataDir, "blobs"), marker)) == 0 {
		t.Fatal("positive control: no blob holds the marker; the scan is blind")
	}
	if out, err := adminCmd(d, "bucket", "encrypt-existing", "legacy").CombinedOutput(); err == nil || !strings.Contains(string(out), "no default encryption") {
		t.Fatalf("encrypt-existing on a plain bucket: %v\n%s", err, out)
	}
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("legacy"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}}}); err != nil {
		t.Fatal(err)
	}

	run := adminCmd(d, "bucket", "encrypt-existing", "legacy", "--rate", "100")
	var out strings.Builder
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 3; ; i = (i + 22) % n { // odd keys only
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			key := fmt.Sprintf("k%04d", i)
			body := []byte(fmt.Sprintf("overwritten %d", time.Now().UnixNano()))
			_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("legacy"), Key: aws.String(key), Body: strings.NewReader(string(body)),
				ContentType: aws.String("text/x-legacy"), Metadata: map[string]string{"mtime": "1600000000", "origin": "before"}})
			if err == nil {
				mu.Lock()
				want[key] = body
				mu.Unlock()
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("legacy"), Key: aws.String(fmt.Sprintf("k%04d", n/3))})
		if err == nil && h.ServerSideEncryption == types.ServerSideEncryptionAwsKms {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("encrypt-existing made no progress:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	d.Kill()
	if err := run.Wait(); err == nil {
		t.Fatalf("the command succeeded although its daemon was killed:\n%s", out.String())
	}
	d.start()
	c = d.S3() // a new port
	res := adminRun(t, d, "bucket", "encrypt-existing", "legacy")
	if !strings.Contains(res, "resumed after legacy/k") {
		t.Fatalf("the second run did not resume:\n%s", res)
	}
	t.Logf("second run: %s", strings.TrimSpace(res))
	list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("legacy")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != n {
		t.Fatalf("list: %d objects, want %d", len(list.Contents), n)
	}
	for key, body := range want {
		h, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("legacy"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if h.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(h.ContentType) != "text/x-legacy" ||
			h.Metadata["mtime"] != "1600000000" || h.Metadata["origin"] != "before" {
			t.Fatalf("%s: sse %q type %q meta %v", key, h.ServerSideEncryption, aws.ToString(h.ContentType), h.Metadata)
		}
		if got := s3Get(t, c, "legacy", key); string(got) != string(body) {
			t.Fatalf("%s reads %q, want %q", key, trunc(got), trunc(body))
		}
	}
	if hits := filesHolding(t, filepath.Join(d.DataDir, "blobs"), marker); len(hits) > 0 {
		t.Fatalf("plaintext left in blob files: %v", hits)
	}
	if again := adminRun(t, d, "bucket", "encrypt-existing", "legacy"); !strings.Contains(again, fmt.Sprintf("0 encrypted (0 bytes), %d skipped", n)) {
		t.Fatalf("third run:\n%s", again)
	}
	// Every file of the data directory, Badger's write-ahead logs and
	// tables included (small objects live inline there), once the daemon
	// has stopped.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(filesHolding(t, filepath.Join(d.DataDir, "blobs"), marker2)) > 0 {
		t.Fatal("plaintext of even keys left in blob files")
	}
	if hits := filesHolding(t, d.DataDir, marker2); len(hits) > 0 {
		t.Fatalf("plaintext of objects encrypt-existing replaced left in %v", hits)
	}
}
