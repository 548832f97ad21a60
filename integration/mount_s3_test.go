package integration

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestMountAndS3 checks that the two front doors see each other at once: a
// file closed on the mount is listed over S3, and objects put, overwritten
// and deleted over S3 show on the mount without waiting for any cache to
// expire, even where the kernel had cached the name, the attributes or the
// pages.
func TestMountAndS3(t *testing.T) {
	d := startMount(t, DaemonOptions{})
	b := newBucket(t, d, "shared", true)
	c := d.S3()
	ctx := context.Background()
	put := func(key, body string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("shared"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("S3 put %s: %v", key, err)
		}
	}
	del := func(key string) {
		t.Helper()
		if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("shared"), Key: aws.String(key)}); err != nil {
			t.Fatalf("S3 delete %s: %v", key, err)
		}
	}

	// Mount → S3.
	for i := range 20 {
		name := filepath.Join(b, "from-mount-"+string(rune('a'+i)))
		mustWrite(t, name, []byte("closed on the mount"))
		list, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("shared")})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, o := range list.Contents {
			found = found || aws.ToString(o.Key) == filepath.Base(name)
		}
		if !found {
			t.Fatalf("%s was closed on the mount but ListObjectsV2 does not list it", filepath.Base(name))
		}
	}
	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("shared"), Key: aws.String("from-mount-a")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(body) != "closed on the mount" || got.ServerSideEncryption != "aws:kms" {
		t.Fatalf("S3 GET: %q, encryption %q", body, got.ServerSideEncryption)
	}

	// S3 → mount, where the kernel cached a failed lookup.
	p := filepath.Join(b, "from-s3")
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("stat before the put: %v", err)
	}
	put("from-s3", "v1")
	if got, err := os.ReadFile(p); err != nil || string(got) != "v1" {
		t.Fatalf("after the S3 put: %q, %v", got, err)
	}
	// Cached pages and attributes: read twice (the second open keeps the
	// cache), then overwrite with a longer body.
	mustRead(t, p)
	old, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	put("from-s3", "version two")
	if got, err := os.ReadFile(p); err != nil || string(got) != "version two" {
		t.Fatalf("after the S3 overwrite: %q, %v", got, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Size != int64(len("version two")) {
		t.Fatalf("stat after the overwrite: size %d, %v", st.Size, err)
	}
	// A descriptor opened before keeps reading its version.
	if got, err := io.ReadAll(old); err != nil || string(got) != "v1" {
		t.Fatalf("descriptor opened before the overwrite reads %q, %v; want v1", got, err)
	}
	del("from-s3")
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("stat after the S3 delete: %v", err)
	}

	// Directories that exist through keys come and go with them.
	put("deep/er/obj", "nested")
	if got, err := os.ReadFile(filepath.Join(b, "deep/er/obj")); err != nil || string(got) != "nested" {
		t.Fatalf("nested object: %q, %v", got, err)
	}
	del("deep/er/obj")
	if _, err := os.Stat(filepath.Join(b, "deep")); !os.IsNotExist(err) {
		t.Fatalf("directory of a deleted key: %v, want ENOENT", err)
	}

	// Metadata changed over S3 (a copy onto itself replacing it).
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{
		Bucket: aws.String("shared"), Key: aws.String("from-mount-b"),
		CopySource:        aws.String("shared/from-mount-b"),
		MetadataDirective: "REPLACE",
		Metadata:          map[string]string{"mode": "33152", "note": "from s3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(b, "from-mount-b"), &st); err != nil || st.Mode != syscall.S_IFREG|0o600 {
		t.Fatalf("mode after an S3 metadata change: %o, %v", st.Mode, err)
	}

	// Buckets.
	if _, err := c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("made-over-s3")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.Path("made-over-s3")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket created over S3: %v", err)
	}
	if _, err := c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String("made-over-s3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path("made-over-s3")); !os.IsNotExist(err) {
		t.Fatalf("bucket deleted over S3: %v", err)
	}
}
