package s3_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The quoted ETag forms of encrypted objects and of parts of encrypting
// uploads (cryptostore/sums.go).
var (
	encryptedETag  = regexp.MustCompile(`^"[0-9a-f]{32}-[1-9][0-9]*"$`)
	randomPartETag = regexp.MustCompile(`^"[0-9a-f]{32}"$`)
)

// TestEncryptedETags: an encrypted object's ETag is no MD5 of its data
// (the same data written twice gets two ETags), is the same on PUT, HEAD,
// GET and in listings, and serves conditional requests; a plain object's
// ETag is still its MD5.
func TestEncryptedETags(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("sealed", true)
	e.mkBucket("open", false)
	data := []byte("a guessable plaintext")
	a := aws.ToString(e.put("sealed", "a", data).ETag)
	b := aws.ToString(e.put("sealed", "b", data).ETag)
	if !encryptedETag.MatchString(a) || !strings.HasSuffix(a, `-1"`) || strings.Contains(a, md5hex(data)) || a == b {
		t.Fatalf("encrypted ETags %s and %s for the same data (MD5 %s)", a, b, md5hex(data))
	}
	if p := aws.ToString(e.put("open", "a", data).ETag); p != `"`+md5hex(data)+`"` {
		t.Fatalf("plain ETag %s, want the MD5 %s", p, md5hex(data))
	}
	h, err := e.client.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("sealed"), Key: aws.String("a")})
	if err != nil || aws.ToString(h.ETag) != a || h.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("head: %v ETag %s SSE %q", err, aws.ToString(h.ETag), h.ServerSideEncryption)
	}
	g, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("sealed"), Key: aws.String("a")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if aws.ToString(g.ETag) != a || !bytes.Equal(got, data) {
		t.Fatalf("get: ETag %s, %q", aws.ToString(g.ETag), got)
	}
	l, err := e.client.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("sealed")})
	if err != nil || len(l.Contents) != 2 || aws.ToString(l.Contents[0].ETag) != a {
		t.Fatalf("list: %v %+v", err, l)
	}
	// Conditional reads and writes.
	if resp := e.raw(http.MethodGet, e.https.URL, "/sealed/a", hdr("If-None-Match", a), nil); resp.StatusCode != http.StatusNotModified || resp.Header.Get("Etag") != a {
		t.Fatalf("If-None-Match with the ETag: %d %q", resp.StatusCode, resp.Header.Get("Etag"))
	}
	if resp := e.raw(http.MethodGet, e.https.URL, "/sealed/a", hdr("If-Match", b), nil); resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-Match another version's ETag: %d", resp.StatusCode)
	}
	if resp := e.raw(http.MethodGet, e.https.URL, "/sealed/a", hdr("If-Match", a), nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("If-Match the ETag: %d", resp.StatusCode)
	}
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("sealed"), Key: aws.String("a"), Body: bytes.NewReader(data), IfMatch: aws.String(b)})
	wantCode(t, err, "PreconditionFailed")
	if _, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("sealed"), Key: aws.String("a"), Body: bytes.NewReader(data), IfMatch: aws.String(a)}); err != nil {
		t.Fatalf("PutObject If-Match the current ETag: %v", err)
	}
}

// TestEncryptedWritesVerifyDigests: Content-MD5 and x-amz-checksum-*
// headers are still checked on writes into an encrypting bucket (whose
// ETags are no MD5), for PutObject and UploadPart, and a bad one stores
// nothing.
func TestEncryptedWritesVerifyDigests(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("sealed", true)
	data := pattern(200<<10, 4)
	sum := md5.Sum(data)
	good := base64.StdEncoding.EncodeToString(sum[:])
	bad := base64.StdEncoding.EncodeToString(make([]byte, 16))
	sha := sha256.Sum256(data)
	goodSHA := base64.StdEncoding.EncodeToString(sha[:])
	cr, err := e.client.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("sealed"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	partPath := "/sealed/mp?partNumber=1&uploadId=" + aws.ToString(cr.UploadId)
	for _, tc := range []struct {
		name, path string
		h          http.Header
		code       string // "" → accepted
	}{
		{name: "put good md5", path: "/sealed/k", h: hdr("Content-Md5", good)},
		{name: "put bad md5", path: "/sealed/bad1", h: hdr("Content-Md5", bad), code: "BadDigest"},
		{name: "put good sha256", path: "/sealed/k2", h: hdr("X-Amz-Checksum-Sha256", goodSHA)},
		{name: "put bad sha256", path: "/sealed/bad2", h: hdr("X-Amz-Checksum-Sha256", base64.StdEncoding.EncodeToString(make([]byte, 32))), code: "BadDigest"},
		{name: "part bad md5", path: partPath, h: hdr("Content-Md5", bad), code: "BadDigest"},
		{name: "part good md5", path: partPath, h: hdr("Content-Md5", good)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw(http.MethodPut, e.https.URL, tc.path, tc.h, data)
			if tc.code != "" {
				wantError(t, resp, 400, tc.code)
				return
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			etag := resp.Header.Get("Etag")
			if strings.Contains(etag, hex.EncodeToString(sum[:])) || !(encryptedETag.MatchString(etag) || randomPartETag.MatchString(etag)) {
				t.Fatalf("ETag %s (MD5 %x)", etag, sum)
			}
		})
	}
	for _, k := range []string{"bad1", "bad2"} {
		if _, err := e.store.Head(e.ctx(), "sealed", k); err == nil {
			t.Fatalf("a write with a bad digest stored %s", k)
		}
	}
	if got := e.get("sealed", "k"); !bytes.Equal(got, data) {
		t.Fatal("object reads wrong")
	}
}

// TestReservedBucketNamesS3: the names of the listener's own routes are
// refused as bucket names, with a message that says why.
func TestReservedBucketNamesS3(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"health", "sealfs-admin"} {
		doc := wantError(t, e.raw(http.MethodPut, e.https.URL, "/"+name, nil, nil), 400, "InvalidBucketName")
		mustContain(t, doc.Message, "reserved")
		if _, err := e.store.GetBucket(e.ctx(), name); err == nil {
			t.Fatalf("bucket %s was created", name)
		}
	}
	e.mkBucket("healthy", false)
}
