package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/internal/etcdtest"
	"github.com/sealfs/sealfs/internal/pgtest"
)

// Two gateways (each a daemon with its mount and its S3 listener, its own
// data directory) over one shared metadata engine — PostgreSQL, and a
// 3-member etcd cluster, both started here — and one shared blob store:
// a directory (file://), and a bucket of another sealfs daemon (s3://).
func TestTwoGateways(t *testing.T) {
	for _, engine := range []string{"postgres", "etcd"} {
		for _, blobs := range []string{"file", "s3"} {
			t.Run(engine+"/"+blobs, func(t *testing.T) {
				requireFUSE(t)
				var args, env []string
				if blobs == "s3" {
					_, args, env = startBlobBackend(t, "gwblobs", "shared")
				} else {
					args = []string{"--blobs", "file://" + filepath.Join(t.TempDir(), "blobs")}
				}
				twoGateways(t, engineURL(t, engine), args, env)
			})
		}
	}
}

// engineURL starts a metadata engine's server for t (stopped in
// t.Cleanup) and returns the URL of a store on it.
func engineURL(t *testing.T, engine string) string {
	t.Helper()
	switch engine {
	case "postgres":
		srv, err := pgtest.Start()
		if errors.Is(err, pgtest.ErrNotInstalled) {
			missingEngine(t, err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		url, err := srv.NewSchema(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return url
	case "etcd":
		if !etcdtest.Available() {
			missingEngine(t, "etcd is not installed (apt-get install etcd-server)")
		}
		return etcdtest.Start(t, 3).URL("gateways")
	}
	t.Fatalf("no engine %q", engine)
	return ""
}

// missingEngine skips (or, under SEALFS_REQUIRE_ENGINES=1, fails) a test
// whose engine server is not installed.
func missingEngine(t *testing.T, why string) {
	t.Helper()
	msg := fmt.Sprintf("!!! TEST %s NOT RUN: %s !!!", t.Name(), why)
	if os.Getenv("SEALFS_REQUIRE_ENGINES") == "1" {
		t.Fatal(msg + " (SEALFS_REQUIRE_ENGINES=1 makes this a failure)")
	}
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// twoGateways runs the checks over two gateways on the metadata at metaURL
// with the blob store blobArgs (flags) and blobEnv (its credentials) name.
func twoGateways(t *testing.T, metaURL string, blobArgs, blobEnv []string) {
	root := make([]byte, 32)
	rand.Read(root)
	opts := func() DaemonOptions {
		return DaemonOptions{
			Args: append([]string{"--meta", metaURL}, blobArgs...),
			Env:  append([]string{"SEALFS_KMS_ROOT_KEY=" + hex.EncodeToString(root)}, blobEnv...),
		}
	}
	a := startMount(t, opts())
	b := startMount(t, opts())
	sa, sb := a.S3(), b.S3()
	ctx := context.Background()
	put := func(c *awss3.Client, key string, data []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("gwbucket"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	if _, err := sa.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("gwbucket")}); err != nil {
		t.Fatal(err)
	}

	// Cross-gateway visibility: an S3 PUT on A shows in a cat on B's
	// mount within a second, over what B's kernel cached (the old
	// content, and a negative entry).
	put(sa, "k", []byte("version one"))
	waitContent(t, b.Path("gwbucket", "k"), []byte("version one"), 5*time.Second)
	if _, err := os.Stat(b.Path("gwbucket", "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of a missing key on B: %v", err)
	}
	start := time.Now()
	put(sa, "k", []byte("version two, longer"))
	put(sa, "new", []byte("fresh"))
	waitContent(t, b.Path("gwbucket", "k"), []byte("version two, longer"), time.Second)
	waitContent(t, b.Path("gwbucket", "new"), []byte("fresh"), time.Second)
	lat := time.Since(start)
	t.Logf("S3 PUT on gateway A visible through gateway B's mount after %v", lat)
	fmt.Fprintf(os.Stderr, "%s: cross-gateway visibility (PUT on A, cat on B): %v\n", t.Name(), lat)
	// And the other way: B's mount writes, A's S3 reads.
	mustWrite(t, b.Path("gwbucket", "from-b"), []byte("written on B"))
	got, err := sa.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("gwbucket"), Key: aws.String("from-b")})
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(got.Body); string(body) != "written on B" {
		t.Fatalf("A reads %q", body)
	}
	got.Body.Close()

	// Encryption toggled on A applies to commits on B.
	sse := func(key string) types.ServerSideEncryption {
		t.Helper()
		h, err := sa.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("gwbucket"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		return h.ServerSideEncryption
	}
	if _, err := sa.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("gwbucket"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}}}); err != nil {
		t.Fatal(err)
	}
	put(sb, "enc-s3", bytes.Repeat([]byte("e"), 100<<10))
	mustWrite(t, b.Path("gwbucket", "enc-mount"), []byte("through B's mount"))
	for _, k := range []string{"enc-s3", "enc-mount"} {
		if got := sse(k); got != types.ServerSideEncryptionAwsKms {
			t.Fatalf("%s committed on B after A turned encryption on: SSE %q", k, got)
		}
	}
	waitContent(t, a.Path("gwbucket", "enc-mount"), []byte("through B's mount"), time.Second)
	if _, err := sa.DeleteBucketEncryption(ctx, &awss3.DeleteBucketEncryptionInput{Bucket: aws.String("gwbucket")}); err != nil {
		t.Fatal(err)
	}
	put(sb, "plain-s3", []byte("plain"))
	if got := sse("plain-s3"); got != "" {
		t.Fatalf("committed on B after A turned encryption off: SSE %q", got)
	}

	// B is killed in the middle of a large PUT: nothing of it shows, A
	// keeps serving (the old version whole, new writes).
	old := pattern(1<<20, 7)
	put(sa, "big", old)
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		_, err := sb.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("gwbucket"), Key: aws.String("big"),
			Body: pr, ContentLength: aws.Int64(64 << 20)})
		putDone <- err
	}()
	chunk := pattern(1<<20, 9)
	for range 8 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	b.Kill()
	unmountLazy(b.MountDir)
	pw.CloseWithError(errors.New("gateway killed"))
	if err := <-putDone; err == nil {
		t.Fatal("the PUT to the killed gateway succeeded")
	}
	waitContent(t, a.Path("gwbucket", "big"), old, time.Second)
	r, err := sa.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("gwbucket"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil || !bytes.Equal(body, old) {
		t.Fatalf("after B was killed mid-PUT A reads %d bytes (%v), want the old version whole", len(body), err)
	}
	put(sa, "after-kill", []byte("A serves on"))
	waitContent(t, a.Path("gwbucket", "after-kill"), []byte("A serves on"), time.Second)
}

// waitContent polls path until it holds want, failing after within.
func waitContent(t *testing.T, path string, want []byte, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := os.ReadFile(path)
		if err == nil && bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after %v: %d bytes (%v), want %d bytes %.20q", path, within, len(got), err, len(want), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
