package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// startBlobBackend starts a plain sealfs daemon to serve as an S3 blob
// store and creates its bucket; it returns the daemon and the flags and
// environment a gateway needs to keep its blobs there under prefix.
func startBlobBackend(t testing.TB, bucket, prefix string) (*Daemon, []string, []string) {
	t.Helper()
	backend := startDaemon(t, DaemonOptions{})
	if _, err := backend.S3().CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--blobs", "s3://" + bucket + "/" + prefix, "--blobs-endpoint", "https://" + backend.S3Addr, "--blobs-ca", backend.CAFile}
	env := []string{"SEALFS_BLOBS_ACCESS_KEY=" + backend.AccessKey, "SEALFS_BLOBS_SECRET_KEY=" + backend.SecretKey,
		// Set explicitly: the machine's CA bundle variables must not
		// decide whom the gateway trusts.
		"AWS_CA_BUNDLE=", "SEALFS_BLOBS_REGION=us-east-1"}
	return backend, args, env
}

// TestServeS3Blobs: `sealfs serve --blobs s3://...` over another sealfs
// serving a plain bucket: PUT and GET of an inline, a 1 MiB and a 20 MiB
// object through the gateway; the gateway's data directory holds no blob,
// the backend holds sealed blobs only.
func TestServeS3Blobs(t *testing.T) {
	ctx := context.Background()
	backend, args, env := startBlobBackend(t, "blobstore", "gw1")
	gw := startDaemon(t, DaemonOptions{Args: args, Env: env})
	c := gw.S3()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("data"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
		}}}}); err != nil {
		t.Fatal(err)
	}
	marker := []byte("SEALFS-BLOBS-S3-MARKER-7c1e")
	sizes := map[string]int{"inline": 1 << 10, "1mib": 1 << 20, "20mib": 20 << 20}
	sums := map[string][32]byte{}
	for key, n := range sizes {
		var b bytes.Buffer
		for b.Len() < n {
			b.Write(marker)
			b.Write(pattern(97, uint64(b.Len())))
		}
		data := b.Bytes()[:n]
		sums[key] = sha256.Sum256(data)
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	for key := range sizes {
		r, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		got, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil || sha256.Sum256(got) != sums[key] {
			t.Fatalf("get %s: %d bytes, %v: differs", key, len(got), err)
		}
	}
	// A range of the 20 MiB object.
	r, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("20mib"), Range: aws.String("bytes=10485760-10485859")})
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if len(part) != 100 {
		t.Fatalf("range: %d bytes", len(part))
	}

	// The gateway keeps no blob locally.
	filepath.WalkDir(filepath.Join(gw.DataDir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("blob file in the gateway's data directory: %s", p)
		}
		return nil
	})
	// The backend holds the two blobs, sealed.
	bc := backend.S3()
	list, err := bc.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("blobstore")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 2 {
		t.Fatalf("backend holds %d objects, want the 2 blobs", len(list.Contents))
	}
	for _, o := range list.Contents {
		r, err := bc.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("blobstore"), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if bytes.Contains(raw, marker) {
			t.Fatalf("plaintext in the backend's object %s", aws.ToString(o.Key))
		}
	}
	// Deleting through the gateway removes the blob from the backend.
	if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("20mib")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := bc.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("blobstore")})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Contents) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted object's blob is still in the backend: %d objects", len(list.Contents))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// BenchmarkGatewayBlobs: PUT and GET MB/s through a gateway keeping its
// blobs in files (file://) and in another sealfs over S3 (s3://), one
// encrypting bucket each.
func BenchmarkGatewayBlobs(b *testing.B) {
	ctx := context.Background()
	for _, be := range []string{"file", "s3"} {
		var opts DaemonOptions
		if be == "s3" {
			_, args, env := startBlobBackend(b, "blobstore", "bench")
			opts = DaemonOptions{Args: args, Env: env}
		}
		gw := startDaemon(b, opts)
		c := gw.S3()
		if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("data")}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("data"),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
			}}}}); err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1 << 20, 64 << 20} {
			data := pattern(n, 1)
			name := fmt.Sprintf("%dMiB", n>>20)
			// The GETs need the object even when the PUTs are filtered out.
			if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(name), Body: bytes.NewReader(data)}); err != nil {
				b.Fatal(err)
			}
			b.Run(be+"/PUT/"+name, func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(name), Body: bytes.NewReader(data)}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(be+"/GET/"+name, func(b *testing.B) {
				b.SetBytes(int64(n))
				for i := 0; i < b.N; i++ {
					r, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(name)})
					if err != nil {
						b.Fatal(err)
					}
					m, err := io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if err != nil || m != int64(n) {
						b.Fatalf("get: %d bytes, %v", m, err)
					}
				}
			})
		}
	}
}
