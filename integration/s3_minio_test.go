package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/sse"
)

func wantMinioCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := minio.ToErrorResponse(err).Code; got != code {
		t.Fatalf("error %v (code %q), want S3 code %s", err, got, code)
	}
}

// TestS3MinioOperations drives the operations with minio-go v7: over HTTPS
// (unsigned payloads with checksums), and over plain HTTP, where it signs
// every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
func TestS3MinioOperations(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{PlainHTTP: true})
	c := d.minio(true)
	core := minio.Core{Client: c}
	ctx := context.Background()

	for _, name := range []string{"mc-plain", "mc-sealed"} {
		if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s3Region}); err != nil {
			t.Fatal(err)
		}
	}
	// us-east-1: re-creating an owned bucket is 200, as on AWS.
	if err := c.MakeBucket(ctx, "mc-plain", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("re-creating an owned bucket in us-east-1: %v", err)
	}
	if ok, err := c.BucketExists(ctx, "mc-plain"); !ok || err != nil {
		t.Fatalf("BucketExists: %v %v", ok, err)
	}
	if ok, err := c.BucketExists(ctx, "mc-none"); ok || err != nil {
		t.Fatalf("BucketExists of a missing bucket: %v %v", ok, err)
	}
	bs, err := c.ListBuckets(ctx)
	if err != nil || len(bs) != 2 {
		t.Fatalf("ListBuckets: %v %v", bs, err)
	}
	if loc, err := c.GetBucketLocation(ctx, "mc-plain"); err != nil || loc != s3Region {
		t.Fatalf("GetBucketLocation: %q %v", loc, err)
	}
	if v, err := c.GetBucketVersioning(ctx, "mc-plain"); err != nil || v.Enabled() {
		t.Fatalf("GetBucketVersioning: %+v %v", v, err)
	}
	if err := c.SetBucketEncryption(ctx, "mc-sealed", sse.NewConfigurationSSES3()); err == nil {
		t.Fatal("SSE-S3 default encryption accepted")
	}
	if err := c.SetBucketEncryption(ctx, "mc-sealed", sse.NewConfigurationSSEKMS("")); err != nil {
		t.Fatal(err)
	}
	if cfg, err := c.GetBucketEncryption(ctx, "mc-sealed"); err != nil || cfg.Rules[0].Apply.SSEAlgorithm != "aws:kms" {
		t.Fatalf("GetBucketEncryption: %+v %v", cfg, err)
	}

	// PutObject: small (one request) and 20 MiB (minio-go's multipart).
	small := []byte("small object from minio-go")
	big := fill(20<<20, 5)
	for _, bucket := range []string{"mc-plain", "mc-sealed"} {
		info, err := c.PutObject(ctx, bucket, "small", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{
			ContentType: "text/x-minio", UserMetadata: map[string]string{"who": "minio"}})
		if err != nil {
			t.Fatal(err)
		}
		if sealed := bucket == "mc-sealed"; (!sealed && info.ETag != md5Hex(small)) || (sealed && (!encryptedETagRE.MatchString(info.ETag) || strings.Contains(info.ETag, md5Hex(small)))) {
			t.Fatalf("%s small ETag %q", bucket, info.ETag)
		}
		if _, err := c.PutObject(ctx, bucket, "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 16 << 20}); err != nil {
			t.Fatal(err)
		}
		st, err := c.StatObject(ctx, bucket, "small", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sealed := st.Metadata.Get("X-Amz-Server-Side-Encryption") == "aws:kms"
		if sealed != (bucket == "mc-sealed") || st.ContentType != "text/x-minio" || st.UserMetadata["Who"] != "minio" {
			t.Fatalf("%s StatObject: SSE %v type %q meta %v", bucket, sealed, st.ContentType, st.UserMetadata)
		}
		obj, err := c.GetObject(ctx, bucket, "big", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("%s big: %d bytes, %v", bucket, len(got), err)
		}
		opts := minio.GetObjectOptions{}
		opts.SetRange(1000, 1999)
		obj, err = c.GetObject(ctx, bucket, "big", opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, big[1000:2000]) {
			t.Fatalf("%s ranged GET: %d bytes, %v", bucket, len(got), err)
		}
		opts = minio.GetObjectOptions{}
		opts.SetMatchETag("nope")
		obj, err = c.GetObject(ctx, bucket, "small", opts)
		if err == nil {
			_, err = obj.Stat()
		}
		wantMinioCode(t, err, "PreconditionFailed")
	}

	// CopyObject (REPLACE) and ComposeObject (UploadPartCopy).
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "mc-sealed", Object: "copied", ReplaceMetadata: true, UserMetadata: map[string]string{"fresh": "1"}},
		minio.CopySrcOptions{Bucket: "mc-plain", Object: "small", MatchETag: md5Hex(small)}); err != nil {
		t.Fatal(err)
	}
	st, err := c.StatObject(ctx, "mc-sealed", "copied", minio.StatObjectOptions{})
	if err != nil || st.UserMetadata["Fresh"] != "1" || st.Metadata.Get("X-Amz-Server-Side-Encryption") != "aws:kms" {
		t.Fatalf("copied: %+v %v", st, err)
	}
	_, err = c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "mc-plain", Object: "x"}, minio.CopySrcOptions{Bucket: "mc-plain", Object: "small", NoMatchETag: md5Hex(small)})
	wantMinioCode(t, err, "PreconditionFailed")
	if _, err := c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "mc-plain", Object: "composed"},
		minio.CopySrcOptions{Bucket: "mc-sealed", Object: "big", MatchRange: true, Start: 0, End: 6<<20 - 1},
		minio.CopySrcOptions{Bucket: "mc-plain", Object: "small"}); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, "mc-plain", "composed", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(obj)
	obj.Close()
	if !bytes.Equal(got, append(append([]byte{}, big[:6<<20]...), small...)) {
		t.Fatalf("composed object: %d bytes", len(got))
	}

	// Multipart by hand: create, part, list parts and uploads, abort,
	// complete.
	id, err := core.NewMultipartUpload(ctx, "mc-sealed", "manual", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := fill(5<<20, 6)
	p1, err := core.PutObjectPart(ctx, "mc-sealed", "manual", id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := core.PutObjectPart(ctx, "mc-sealed", "manual", id, 2, bytes.NewReader(small), int64(len(small)), minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := core.ListObjectParts(ctx, "mc-sealed", "manual", id, 0, 1000)
	if err != nil || len(lp.ObjectParts) != 2 {
		t.Fatalf("ListObjectParts: %+v %v", lp, err)
	}
	lu, err := core.ListMultipartUploads(ctx, "mc-sealed", "", "", "", "", 100)
	if err != nil || len(lu.Uploads) != 1 {
		t.Fatalf("ListMultipartUploads: %+v %v", lu, err)
	}
	abortID, err := core.NewMultipartUpload(ctx, "mc-sealed", "dropped", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.AbortMultipartUpload(ctx, "mc-sealed", "dropped", abortID); err != nil {
		t.Fatal(err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, "mc-sealed", "manual", id, []minio.CompletePart{{PartNumber: 1, ETag: p1.ETag}, {PartNumber: 2, ETag: p2.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err = c.StatObject(ctx, "mc-sealed", "manual", minio.StatObjectOptions{})
	if err != nil || st.Size != int64(len(part)+len(small)) || !strings.HasSuffix(st.ETag, "-2") {
		t.Fatalf("completed upload: %+v %v", st, err)
	}

	// Listings: V2, V1, versions.
	var keys, v1keys, versions []string
	for o := range c.ListObjectsIter(ctx, "mc-plain", minio.ListObjectsOptions{Recursive: true, MaxKeys: 2}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	for o := range c.ListObjectsIter(ctx, "mc-plain", minio.ListObjectsOptions{Recursive: true, UseV1: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		v1keys = append(v1keys, o.Key)
	}
	for o := range c.ListObjectsIter(ctx, "mc-plain", minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.VersionID != "null" || !o.IsLatest {
			t.Errorf("version of %s: %q latest %v", o.Key, o.VersionID, o.IsLatest)
		}
		versions = append(versions, o.Key)
	}
	want := []string{"big", "composed", "small"}
	if !slices.Equal(keys, want) || !slices.Equal(v1keys, want) || !slices.Equal(versions, want) {
		t.Fatalf("listings: v2 %q v1 %q versions %q", keys, v1keys, versions)
	}

	// Presigned GET and PUT.
	u, err := c.PresignedPutObject(ctx, "mc-sealed", "presigned", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, u.String(), strings.NewReader("presigned body"))
	resp, err := d.httpClient().Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" {
		t.Fatalf("presigned PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	u, err = c.PresignedGetObject(ctx, "mc-sealed", "presigned", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = d.httpClient().Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || string(b) != "presigned body" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, b)
	}

	// Over plain HTTP minio-go signs every chunk: fine for the plain
	// bucket, refused (rule 6) for the encrypting one.
	pc := d.minio(false)
	if _, err := pc.PutObject(ctx, "mc-plain", "over-http", bytes.NewReader(big[:3<<20]), 3<<20, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("signed-chunk PUT over plain HTTP: %v", err)
	}
	obj, err = pc.GetObject(ctx, "mc-plain", "over-http", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(obj)
	obj.Close()
	if !bytes.Equal(got, big[:3<<20]) {
		t.Fatal("plain-HTTP object reads back wrong")
	}
	_, err = pc.PutObject(ctx, "mc-sealed", "over-http", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
	wantMinioCode(t, err, "InvalidArgument")
	if !strings.Contains(err.Error(), "secure connection") {
		t.Fatalf("plain-HTTP PUT into an encrypting bucket: %v", err)
	}
	_, err = pc.StatObject(ctx, "mc-sealed", "small", minio.StatObjectOptions{})
	if err == nil {
		t.Fatal("HEAD of an encrypted object over plain HTTP succeeded")
	}

	// Removal.
	if err := c.RemoveObject(ctx, "mc-plain", "over-http", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := make(chan minio.ObjectInfo, 3)
	for _, k := range want {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	for e := range c.RemoveObjects(ctx, "mc-plain", ch, minio.RemoveObjectsOptions{}) {
		t.Fatalf("RemoveObjects: %v", e.Err)
	}
	if err := c.RemoveBucketEncryption(ctx, "mc-sealed"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveBucket(ctx, "mc-plain"); err != nil {
		t.Fatal(err)
	}
	wantMinioCode(t, c.RemoveBucket(ctx, "mc-sealed"), "BucketNotEmpty")
}
