package integration

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealfs/sealfs/internal/localkms"
	"github.com/sealfs/sealfs/kms"
)

// externalKMSEnv is what a daemon using local-kms needs: credentials to
// sign with (local-kms accepts any).
var externalKMSEnv = []string{"AWS_ACCESS_KEY_ID=sealfs-test", "AWS_SECRET_ACCESS_KEY=sealfs-test", "AWS_REGION=", "AWS_PROFILE="}

// TestExternalKMS runs a daemon with --kms aws-kms:// against local-kms: the
// bucket's master key is created there with an alias naming the bucket;
// disabling it there makes S3 answer KMS.DisabledException and the mount
// ENOKEY at once, enabling it brings reads back; with the KMS killed,
// writes into an encrypting bucket fail with 503 ServiceUnavailable, reads
// of objects whose data key is cached keep working (within cache-ttl), a
// plain bucket is untouched, and once the KMS is back everything is there.
func TestExternalKMS(t *testing.T) {
	requireFUSE(t)
	srv := localkms.Start(t)
	d := startMount(t, DaemonOptions{
		Args: []string{"--kms", srv.URL() + "&cache-ttl=10m"},
		Env:  externalKMSEnv,
	})
	ctx := context.Background()
	s3c := d.S3()
	locked := newBucket(t, d, "vault.one", true)
	plain := newBucket(t, d, "plain", false)
	put := func(bucket, key string, body []byte) error {
		_, err := s3c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}
	get := func(bucket, key string) ([]byte, error) {
		out, err := s3c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	small, large := []byte("under an external key"), pattern(3<<20, 11)
	for key, body := range map[string][]byte{"small": small, "large": large, "cold": []byte("never read before the outage")} {
		if err := put("vault.one", key, body); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
	}
	if got, err := get("vault.one", "small"); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("GET small: %v", err)
	}

	// The key lives in the KMS, named by an alias after the bucket.
	admin, err := kms.OpenAWS(srv.URL(), kms.AWSOptions{Credentials: credentials.NewStaticCredentialsProvider("t", "t", "")})
	if err != nil {
		t.Fatal(err)
	}
	md, err := admin.DescribeKey(ctx, &kms.KeyRequest{KeyID: "alias/sealfs/vault_one"})
	if err != nil {
		t.Fatalf("the bucket's key has no alias in the KMS: %v", err)
	}
	head, err := s3c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("vault.one"), Key: aws.String("small")})
	if err != nil || string(head.ServerSideEncryption) != "aws:kms" || aws.ToString(head.SSEKMSKeyId) != md.ARN {
		t.Fatalf("HEAD: sse %q key %q, want aws:kms and %s (%v)", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), md.ARN, err)
	}

	// Disabled in the KMS: refused at once through both doors.
	if err := admin.DisableKey(ctx, &kms.KeyRequest{KeyID: md.KeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := get("vault.one", "small"); sdkCode(err) != "KMS.DisabledException" {
		t.Fatalf("GET under a disabled key: %v, want KMS.DisabledException", err)
	}
	if _, err := os.ReadFile(filepath.Join(locked, "large")); errnoOf(err) != syscall.ENOKEY {
		t.Fatalf("reading through the mount under a disabled key: %v, want ENOKEY", err)
	}
	if err := put("vault.one", "new", []byte("x")); sdkCode(err) != "KMS.DisabledException" {
		t.Fatalf("PUT under a disabled key: %v, want KMS.DisabledException", err)
	}
	if err := admin.EnableKey(ctx, &kms.KeyRequest{KeyID: md.KeyID}); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(locked, "large")); !bytes.Equal(got, large) {
		t.Fatal("large read back wrong after enabling the key")
	}
	if got, err := get("vault.one", "small"); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("GET after enabling the key: %v", err)
	}

	// The KMS goes down.
	srv.Stop()
	start := time.Now()
	if err := put("vault.one", "during-outage", []byte("y")); sdkCode(err) != "ServiceUnavailable" {
		t.Fatalf("PUT into an encrypting bucket with the KMS down: %v, want ServiceUnavailable", err)
	}
	t.Logf("a PUT failed %v after the KMS went down (the client retries)", time.Since(start).Round(time.Millisecond))
	if got, err := get("vault.one", "small"); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("GET of an object whose data key is cached, KMS down: %v", err)
	}
	if got := mustRead(t, filepath.Join(locked, "large")); !bytes.Equal(got, large) {
		t.Fatal("mount read of a cached object, KMS down: wrong bytes")
	}
	if _, err := get("vault.one", "cold"); sdkCode(err) != "ServiceUnavailable" {
		t.Fatalf("GET of an object never read, KMS down: %v, want ServiceUnavailable", err)
	}
	if err := put("plain", "p", []byte("plain bucket")); err != nil {
		t.Fatalf("PUT into a plain bucket with the KMS down: %v", err)
	}
	mustWrite(t, filepath.Join(plain, "q"), []byte("plain via mount"))

	// It comes back: nothing was lost, writes work.
	srv.Restart()
	if err := put("vault.one", "after", []byte("z")); err != nil {
		t.Fatalf("PUT after the KMS came back: %v", err)
	}
	for key, body := range map[string][]byte{"small": small, "large": large, "cold": []byte("never read before the outage"), "after": []byte("z")} {
		if got, err := get("vault.one", key); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("GET %s after the outage: %v", key, err)
		}
	}
	if _, err := get("vault.one", "during-outage"); sdkCode(err) != "NoSuchKey" {
		t.Fatalf("the PUT refused during the outage left something: %v", err)
	}
}
