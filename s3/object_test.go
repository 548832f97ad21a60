package s3_test

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/crc64nvme"
)

func TestPutGetHeadMetadata(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("meta", false)
	data := pattern(300<<10, 1) // not inline, several chunks
	out, err := e.client.PutObject(e.ctx(), &awss3.PutObjectInput{
		Bucket:             aws.String("meta"),
		Key:                aws.String("dir/obj.bin"),
		Body:               bytes.NewReader(data),
		ContentType:        aws.String("application/x-test"),
		ContentEncoding:    aws.String("identity"),
		ContentDisposition: aws.String(`attachment; filename="obj.bin"`),
		ContentLanguage:    aws.String("fr"),
		CacheControl:       aws.String("max-age=60"),
		Expires:            aws.Time(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)),
		Metadata:           map[string]string{"color": "blue", "Mixed-Case": "Value"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.ETag), `"`+md5hex(data)+`"`; got != want {
		t.Errorf("PutObject ETag %s, want %s", got, want)
	}
	if out.ServerSideEncryption != "" || out.SSEKMSKeyId != nil {
		t.Errorf("plain bucket answered SSE %q %v", out.ServerSideEncryption, out.SSEKMSKeyId)
	}
	crc := crc32.ChecksumIEEE(data)
	wantCRC := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc))
	if got := aws.ToString(out.ChecksumCRC32); got != wantCRC {
		t.Errorf("PutObject CRC32 %q, want %q (the SDK's trailer, echoed)", got, wantCRC)
	}

	for _, head := range []bool{false, true} {
		var ct, ce, cd, cl, cc, etag, crcGot string
		var exp *string
		var md map[string]string
		var length int64
		if head {
			h, err := e.client.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("meta"), Key: aws.String("dir/obj.bin"), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			ct, ce, cd, cl, cc, etag, exp, md, length = aws.ToString(h.ContentType), aws.ToString(h.ContentEncoding), aws.ToString(h.ContentDisposition),
				aws.ToString(h.ContentLanguage), aws.ToString(h.CacheControl), aws.ToString(h.ETag), h.ExpiresString, h.Metadata, aws.ToInt64(h.ContentLength)
			crcGot = aws.ToString(h.ChecksumCRC32)
		} else {
			g, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("meta"), Key: aws.String("dir/obj.bin"), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(g.Body)
			g.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, data) {
				t.Fatal("GetObject returned other bytes")
			}
			ct, ce, cd, cl, cc, etag, exp, md, length = aws.ToString(g.ContentType), aws.ToString(g.ContentEncoding), aws.ToString(g.ContentDisposition),
				aws.ToString(g.ContentLanguage), aws.ToString(g.CacheControl), aws.ToString(g.ETag), g.ExpiresString, g.Metadata, aws.ToInt64(g.ContentLength)
			crcGot = aws.ToString(g.ChecksumCRC32)
		}
		if ct != "application/x-test" || ce != "identity" || cd != `attachment; filename="obj.bin"` || cl != "fr" || cc != "max-age=60" {
			t.Errorf("head=%v: content headers %q %q %q %q %q", head, ct, ce, cd, cl, cc)
		}
		if exp == nil || !strings.Contains(*exp, "2030") {
			t.Errorf("head=%v: Expires %v", head, exp)
		}
		if md["color"] != "blue" || md["mixed-case"] != "Value" {
			t.Errorf("head=%v: metadata %v", head, md)
		}
		if etag != `"`+md5hex(data)+`"` || length != int64(len(data)) {
			t.Errorf("head=%v: ETag %s length %d", head, etag, length)
		}
		if crcGot != wantCRC {
			t.Errorf("head=%v: CRC32 with checksum mode %q, want %q", head, crcGot, wantCRC)
		}
	}

	// An object stored without a Content-Type is binary/octet-stream, and
	// response-* parameters override the stored headers.
	resp := e.raw(http.MethodPut, e.https.URL, "/meta/plain", nil, []byte("hello"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("raw PUT: %d", resp.StatusCode)
	}
	resp = e.raw(http.MethodGet, e.https.URL, "/meta/plain?response-content-type=text/plain&response-cache-control=no-cache&response-content-disposition=inline&response-content-language=de&response-content-encoding=gzip&response-expires=Thu,%2001%20Dec%202033%2016:00:00%20GMT", nil, nil)
	for k, want := range map[string]string{
		"Content-Type": "text/plain", "Cache-Control": "no-cache", "Content-Disposition": "inline",
		"Content-Language": "de", "Content-Encoding": "gzip", "Expires": "Thu, 01 Dec 2033 16:00:00 GMT",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("override %s: %q, want %q", k, got, want)
		}
	}
	resp = e.raw(http.MethodHead, e.https.URL, "/meta/plain", nil, nil)
	if got := resp.Header.Get("Content-Type"); got != "binary/octet-stream" {
		t.Errorf("default Content-Type %q", got)
	}
}

func TestRanges(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("ranges", true)
	data := pattern(200<<10+17, 2)
	e.put("ranges", "r", data)
	size := len(data)
	for _, tc := range []struct {
		name       string
		rng        string
		status     int
		start, end int // inclusive, for 206
	}{
		{name: "closed", rng: "bytes=10-99", status: 206, start: 10, end: 99},
		{name: "across chunks", rng: "bytes=65530-131080", status: 206, start: 65530, end: 131080},
		{name: "open", rng: "bytes=200000-", status: 206, start: 200000, end: size - 1},
		{name: "suffix", rng: "bytes=-100", status: 206, start: size - 100, end: size - 1},
		{name: "suffix past start", rng: "bytes=-999999", status: 206, start: 0, end: size - 1},
		{name: "end past size", rng: "bytes=5-999999999", status: 206, start: 5, end: size - 1},
		{name: "unsatisfiable", rng: "bytes=" + strconv.Itoa(size) + "-", status: 416},
		{name: "multiple ignored", rng: "bytes=0-1,5-9", status: 200},
		{name: "garbage ignored", rng: "bytes=abc", status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw(http.MethodGet, e.https.URL, "/ranges/r", hdr("Range", tc.rng), nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			body, _ := io.ReadAll(resp.Body)
			switch tc.status {
			case 206:
				if !bytes.Equal(body, data[tc.start:tc.end+1]) {
					t.Fatalf("range body differs (%d bytes)", len(body))
				}
				want := "bytes " + strconv.Itoa(tc.start) + "-" + strconv.Itoa(tc.end) + "/" + strconv.Itoa(size)
				if got := resp.Header.Get("Content-Range"); got != want {
					t.Errorf("Content-Range %q, want %q", got, want)
				}
				if resp.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" {
					t.Error("ranged GET of an encrypted object without SSE header")
				}
			case 200:
				if !bytes.Equal(body, data) {
					t.Fatal("whole-object body differs")
				}
			case 416:
				resp.Body = io.NopCloser(bytes.NewReader(body))
				wantError(t, resp, 416, "InvalidRange")
				if got := resp.Header.Get("Content-Range"); got != "bytes */"+strconv.Itoa(size) {
					t.Errorf("416 Content-Range %q", got)
				}
			}
		})
	}
	// The SDK's own range request.
	g, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("ranges"), Key: aws.String("r"), Range: aws.String("bytes=-7")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if !bytes.Equal(b, data[size-7:]) || aws.ToString(g.ContentRange) != "bytes "+strconv.Itoa(size-7)+"-"+strconv.Itoa(size-1)+"/"+strconv.Itoa(size) {
		t.Fatalf("SDK suffix range: %q %q", b, aws.ToString(g.ContentRange))
	}
}

func TestConditionalReads(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("cond", false)
	out := e.put("cond", "k", []byte("conditional"))
	etag := aws.ToString(out.ETag)
	h, err := e.client.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("cond"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	mod := aws.ToTime(h.LastModified)
	before := mod.Add(-time.Hour).Format(http.TimeFormat)
	after := mod.Add(time.Hour).Format(http.TimeFormat)
	for _, tc := range []struct {
		name   string
		h      http.Header
		status int
	}{
		{name: "if-match hit", h: hdr("If-Match", etag), status: 200},
		{name: "if-match star", h: hdr("If-Match", "*"), status: 200},
		{name: "if-match miss", h: hdr("If-Match", `"nope"`), status: 412},
		{name: "if-none-match hit", h: hdr("If-None-Match", etag), status: 304},
		{name: "if-none-match miss", h: hdr("If-None-Match", `"nope"`), status: 200},
		{name: "if-modified-since before", h: hdr("If-Modified-Since", before), status: 200},
		{name: "if-modified-since after", h: hdr("If-Modified-Since", after), status: 304},
		{name: "if-unmodified-since after", h: hdr("If-Unmodified-Since", after), status: 200},
		{name: "if-unmodified-since before", h: hdr("If-Unmodified-Since", before), status: 412},
		{name: "if-match wins over if-unmodified-since", h: hdr("If-Match", etag, "If-Unmodified-Since", before), status: 200},
		{name: "if-none-match wins over if-modified-since", h: hdr("If-None-Match", `"nope"`, "If-Modified-Since", after), status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				resp := e.raw(method, e.https.URL, "/cond/k", tc.h, nil)
				if resp.StatusCode != tc.status {
					t.Fatalf("%s: status %d, want %d", method, resp.StatusCode, tc.status)
				}
				switch tc.status {
				case 412:
					wantError(t, resp, 412, "PreconditionFailed")
				case 304:
					if resp.Header.Get("Etag") != etag {
						t.Errorf("304 without the ETag: %v", resp.Header)
					}
				}
			}
		})
	}
}

func TestConditionalPut(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("cput", false)
	_, err := e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("cput"), Key: aws.String("k"), Body: strings.NewReader("one"), IfNoneMatch: aws.String("*")})
	if err != nil {
		t.Fatalf("create-only PUT of a new key: %v", err)
	}
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("cput"), Key: aws.String("k"), Body: strings.NewReader("two"), IfNoneMatch: aws.String("*")})
	wantCode(t, err, "PreconditionFailed")
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("cput"), Key: aws.String("k"), Body: strings.NewReader("two"), IfMatch: aws.String(`"0123"`)})
	wantCode(t, err, "PreconditionFailed")
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("cput"), Key: aws.String("absent"), Body: strings.NewReader("two"), IfMatch: aws.String(`"0123"`)})
	wantCode(t, err, "NoSuchKey")
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("cput"), Key: aws.String("k"), Body: strings.NewReader("three"), IfMatch: aws.String(`"` + md5hex([]byte("one")) + `"`)})
	if err != nil {
		t.Fatalf("If-Match with the current ETag: %v", err)
	}
	if got := e.get("cput", "k"); string(got) != "three" {
		t.Fatalf("object is %q after the conditional writes", got)
	}
}

func TestDeletes(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("del", false)
	for i := 0; i < 5; i++ {
		e.put("del", "k"+strconv.Itoa(i), []byte("x"))
	}
	// DeleteObject answers 204 whether or not the key exists.
	for _, k := range []string{"k0", "k0", "never"} {
		resp := e.raw(http.MethodDelete, e.https.URL, "/del/"+k, nil, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d", k, resp.StatusCode)
		}
	}
	out, err := e.client.DeleteObjects(e.ctx(), &awss3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("k1")}, {Key: aws.String("k2")}, {Key: aws.String("absent")}, {Key: aws.String("k3"), VersionId: aws.String("v9")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 3 || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Code) != "NoSuchVersion" {
		t.Fatalf("DeleteObjects: deleted %d, errors %+v", len(out.Deleted), out.Errors)
	}
	out, err = e.client.DeleteObjects(e.ctx(), &awss3.DeleteObjectsInput{Bucket: aws.String("del"), Delete: &types.Delete{
		Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("k3")}, {Key: aws.String("k4")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects listed %d deleted, %d errors", len(out.Deleted), len(out.Errors))
	}
	l, err := e.client.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("del")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Contents) != 0 {
		t.Fatalf("%d objects left", len(l.Contents))
	}
	// Malformed bodies.
	for _, body := range []string{"", "<Delete>", "<Delete></Delete>", "<Other/>", "not xml"} {
		resp := e.raw(http.MethodPost, e.https.URL, "/del?delete", nil, []byte(body))
		wantError(t, resp, 400, "MalformedXML")
	}
	resp := e.raw(http.MethodPost, e.https.URL, "/nosuch?delete", nil, []byte("<Delete><Object><Key>a</Key></Object></Delete>"))
	wantError(t, resp, 404, "NoSuchBucket")
}

func TestIntegrityChecks(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("integ", true)
	data := []byte("integrity checked payload")
	sum := md5.Sum(data)
	goodMD5 := base64.StdEncoding.EncodeToString(sum[:])
	badMD5 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	crc := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data)))
	for _, tc := range []struct {
		name   string
		h      http.Header
		status int
		code   string
	}{
		{name: "good content-md5", h: hdr("Content-Md5", goodMD5), status: 200},
		{name: "bad content-md5", h: hdr("Content-Md5", badMD5), status: 400, code: "BadDigest"},
		{name: "malformed content-md5", h: hdr("Content-Md5", "xyz"), status: 400, code: "InvalidDigest"},
		{name: "good crc32", h: hdr("X-Amz-Checksum-Crc32", crc), status: 200},
		{name: "bad crc32", h: hdr("X-Amz-Checksum-Crc32", "AAAAAA=="), status: 400, code: "BadDigest"},
		{name: "metadata too large", h: hdr("X-Amz-Meta-Big", strings.Repeat("v", 2100)), status: 400, code: "MetadataTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw(http.MethodPut, e.https.URL, "/integ/"+strings.ReplaceAll(tc.name, " ", "-"), tc.h, data)
			if tc.status != 200 {
				wantError(t, resp, tc.status, tc.code)
				if _, err := e.store.Head(e.ctx(), "integ", strings.ReplaceAll(tc.name, " ", "-")); err == nil {
					t.Fatal("a refused PUT left an object behind")
				}
				return
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
		})
	}
	// A checksum sent as a header is stored and returned.
	resp := e.raw(http.MethodHead, e.https.URL, "/integ/good-crc32", hdr("X-Amz-Checksum-Mode", "ENABLED"), nil)
	if got := resp.Header.Get("X-Amz-Checksum-Crc32"); got != crc || resp.Header.Get("X-Amz-Checksum-Crc64nvme") != "" {
		t.Errorf("stored CRC32 %q, want %q, and only it: %v", got, crc, resp.Header)
	}
	// Without a checksum of its own, an object reports the CRC64NVME every
	// object gets.
	resp = e.raw(http.MethodHead, e.https.URL, "/integ/good-content-md5", hdr("X-Amz-Checksum-Mode", "ENABLED"), nil)
	want64 := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data)))
	if got := resp.Header.Get("X-Amz-Checksum-Crc64nvme"); got != want64 || resp.Header.Get("X-Amz-Checksum-Type") != "FULL_OBJECT" {
		t.Errorf("default CRC64NVME %q, want %q (%v)", got, want64, resp.Header)
	}
	// Without checksum mode, no checksum header.
	resp = e.raw(http.MethodHead, e.https.URL, "/integ/good-content-md5", nil, nil)
	if resp.Header.Get("X-Amz-Checksum-Crc64nvme") != "" {
		t.Error("checksum sent without x-amz-checksum-mode")
	}
	// A signed payload hash that does not match.
	resp = e.raw(http.MethodPut, e.https.URL, "/integ/sha", hdr("X-Amz-Content-Sha256", strings.Repeat("ab", 32)), data)
	wantError(t, resp, 400, "XAmzContentSHA256Mismatch")
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("keys", false)
	for _, key := range []string{
		"with space", "unicode-é-漢字", "a//b", "../up", "./here", "trailing/", "plus+sign", "percent%20", "q?mark", "hash#", "semi;colon", "amp&er=sand", strings.Repeat("k", 1024),
	} {
		data := []byte("key " + key)
		e.put("keys", key, data)
		if got := e.get("keys", key); !bytes.Equal(got, data) {
			t.Fatalf("key %q: read back %q", key, got)
		}
	}
	_, err := e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("keys"), Key: aws.String(strings.Repeat("k", 1025)), Body: strings.NewReader("x")})
	wantCode(t, err, "KeyTooLongError")
	resp := e.raw(http.MethodGet, e.https.URL, "/keys/"+strings.Repeat("k", 1025), nil, nil)
	wantError(t, resp, 400, "KeyTooLongError")
}

// TestDamagedData corrupts stored ciphertext: a GET whose first piece fails
// verification is a 500 InternalError (with a log line naming the object);
// one that fails later, after the status was sent, cuts the connection so
// the client sees a short body rather than a silent end.
func TestDamagedData(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("damage", true)
	data := pattern(1<<20, 4)
	for _, key := range []string{"early", "late"} {
		e.put("damage", key, data)
		obj, err := e.store.Head(e.ctx(), "damage", key)
		if err != nil {
			t.Fatal(err)
		}
		id := obj.Blobs[0].ID.String()
		path := filepath.Join(e.dir, "blobs", id[:2], id)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		at := int64(1000)
		if key == "late" {
			at = 700 << 10
		}
		b := make([]byte, 1)
		f.ReadAt(b, at)
		b[0] ^= 0x40
		f.WriteAt(b, at)
		f.Close()
	}
	wantError(t, e.raw(http.MethodGet, e.https.URL, "/damage/early", nil, nil), 500, "InternalError")
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"s3 request failed","id":`) || !strings.Contains(logs, `"bucket":"damage","key":"early","err":"corrupt blob`) {
		t.Fatalf("no log line naming the damaged object:\n%s", logs)
	}
	// The first piece verifies, so the status goes out; the body must
	// then come up short.
	out, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("damage"), Key: aws.String("late")})
	if err != nil {
		t.Fatalf("GET of an object damaged past its first piece: %v", err)
	}
	got, rerr := io.ReadAll(out.Body)
	out.Body.Close()
	if rerr == nil || bytes.Equal(got, data) {
		t.Fatalf("damaged object read to the end: %d bytes, %v", len(got), rerr)
	}
	if len(got) > 700<<10 {
		t.Fatalf("bytes past the damage were sent: %d", len(got))
	}
	if logs := e.logs.String(); !strings.Contains(logs, "read failed mid-body") {
		t.Fatalf("no log line for the cut response:\n%s", logs)
	}
}

// TestGetGathersTLSRecords: a large GET body reaches the socket in a few
// writes of many TLS records each, not one write per 16 KiB record, and
// arrives whole, from an encrypting bucket and a plain one, whole or as a
// range.
func TestGetGathersTLSRecords(t *testing.T) {
	e := newEnv(t)
	body := make([]byte, 1<<20+12345)
	rand.Read(body)
	for _, encrypted := range []bool{true, false} {
		bucket := "plain"
		if encrypted {
			bucket = "sealed"
		}
		e.mkBucket(bucket, encrypted)
		e.put(bucket, "big", body)

		before := e.socketWrites.Load()
		got := e.get(bucket, "big")
		writes := e.socketWrites.Load() - before
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: GET returned %d bytes, not the %d put", bucket, len(got), len(body))
		}
		// 1 MiB is 65 records of 16 KiB: one write each without
		// gathering. Gathered: the headers, then a write per 256 KiB
		// piece.
		if writes > 12 {
			t.Errorf("%s: the GET took %d socket writes for a %d-byte body", bucket, writes, len(body))
		}

		out, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("big"), Range: aws.String("bytes=1000-700000")})
		if err != nil {
			t.Fatal(err)
		}
		got, err = io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, body[1000:700001]) {
			t.Fatalf("%s: ranged GET: %d bytes, %v", bucket, len(got), err)
		}
	}
}
