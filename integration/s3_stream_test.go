package integration

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// patternReader yields n bytes of a repeating, position-dependent pattern
// without holding them, so the test client stays small too.
type patternReader struct {
	n, off int64
	seed   byte
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rem := r.n - r.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	for i := range p {
		o := r.off + int64(i)
		p[i] = byte(o*131) ^ byte(o>>17) ^ r.seed
	}
	r.off += int64(len(p))
	return len(p), nil
}

func patternSum(n int64, seed byte) [32]byte {
	h := sha256.New()
	io.Copy(h, &patternReader{n: n, seed: seed})
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// TestS3StreamingBoundedMemory uploads 200 MiB through the SDK's
// manager.Uploader (concurrent 8 MiB parts) and 64 MiB as a single
// PutObject (the SDK sends it as one aws-chunked chunk with a CRC32
// trailer), into an encrypting bucket, and checks the daemon's peak RSS
// did not grow with the object size: bodies stream, they are never
// buffered.
func TestS3StreamingBoundedMemory(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{})
	c := d.sdk()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("stream")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutBucketEncryption(ctx, &awss3.PutBucketEncryptionInput{Bucket: aws.String("stream"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}}); err != nil {
		t.Fatal(err)
	}
	// Warm up: one small object through every path, so the baseline
	// includes the daemon's steady-state buffers.
	if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String("warm"), Body: &patternReader{n: 1 << 20}, ContentLength: aws.Int64(1 << 20)}); err != nil {
		t.Fatal(err)
	}
	base := d.ProcStatus("VmHWM")

	const big, single = 200 << 20, 64 << 20
	// manager.Uploader is what most aws-sdk-go-v2 programs upload with;
	// its successor, transfermanager, is not a dependency of sealfs.
	//lint:ignore SA1019 deliberately the widely used uploader
	up := manager.NewUploader(c, func(u *manager.Uploader) { u.PartSize = 8 << 20; u.Concurrency = 4 })
	//lint:ignore SA1019 deliberately the widely used uploader
	out, err := up.Upload(ctx, &awss3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String("big"), Body: &patternReader{n: big, seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("multipart upload SSE %q", out.ServerSideEncryption)
	}
	// A non-seekable body of known length: the SDK streams it as
	// aws-chunked, one chunk, CRC32 in the trailer.
	put, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("stream"), Key: aws.String("single"),
		Body: io.NopCloser(&patternReader{n: single, seed: 2}), ContentLength: aws.Int64(single)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ChecksumCRC32) == "" {
		t.Fatal("single PUT carried no CRC32 trailer")
	}

	for _, o := range []struct {
		key  string
		n    int64
		seed byte
	}{{"big", big, 1}, {"single", single, 2}} {
		g, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("stream"), Key: aws.String(o.key)})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, g.Body)
		g.Body.Close()
		if err != nil || n != o.n {
			t.Fatalf("%s: read %d bytes: %v", o.key, n, err)
		}
		var got [32]byte
		h.Sum(got[:0])
		if got != patternSum(o.n, o.seed) {
			t.Fatalf("%s: SHA-256 differs", o.key)
		}
	}
	peak := d.ProcStatus("VmHWM")
	t.Logf("daemon peak RSS: %d MiB before, %d MiB after 264 MiB in and out", base>>20, peak>>20)
	// Buffering either body would add at least its size; streaming adds
	// pipeline buffers and GC slack only.
	if grew := peak - base; grew > 48<<20 {
		t.Fatalf("peak RSS grew by %d MiB moving 200 and 64 MiB objects", grew>>20)
	}
	if peak > 256<<20 {
		t.Fatalf("peak RSS %d MiB", peak>>20)
	}
}
