package s3

import (
	"net/http"
	"testing"
)

// TestMetaValueEncoding follows AWS's rule for user metadata that is not
// US-ASCII: RFC 2047 words are decoded before storing, non-ASCII values
// are returned RFC 2047 encoded, ASCII values as they are.
func TestMetaValueEncoding(t *testing.T) {
	for _, c := range []struct{ in, stored, out string }{
		{in: "plain value", stored: "plain value", out: "plain value"},
		{in: "Hello World\u00e9", stored: "Hello World\u00e9", out: "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="},
		// Raw bytes that are not UTF-8 are ISO-8859-1, as HTTP has them.
		{in: "Hello World\xe9", stored: "Hello World\u00e9", out: "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="},
		{in: "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?=", stored: "Hello World\u00e9", out: "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="},
		{in: "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", stored: "Grüße", out: "=?UTF-8?B?R3LDvMOfZQ==?="},
		{in: "=?ISO-8859-1?Q?caf=E9?=", stored: "café", out: "=?UTF-8?B?Y2Fmw6k=?="},
		// Not an encoded word: kept as sent.
		{in: "=?not a word", stored: "=?not a word", out: "=?not a word"},
		{in: "=?x-unknown?B?AAAA?=", stored: "=?x-unknown?B?AAAA?=", out: "=?x-unknown?B?AAAA?="},
	} {
		stored := decodeMetaValue(c.in)
		if stored != c.stored {
			t.Errorf("decodeMetaValue(%q) = %q, want %q", c.in, stored, c.stored)
		}
		if out := encodeMetaValue(stored); out != c.out {
			t.Errorf("encodeMetaValue(%q) = %q, want %q", stored, out, c.out)
		}
	}
	m, err := objectMeta(http.Header{"X-Amz-Meta-Name": {"Hello World\u00e9"}, "Content-Encoding": {"deflate, gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.User["name"] != "Hello World\u00e9" || m.ContentEncoding != "deflate, gzip" {
		t.Fatalf("objectMeta = %+v", m)
	}
}

// TestCheckSSEHeaders: an SSE value that is no algorithm is refused on
// writes; SSE-KMS headers are refused on reads; everything else passes.
func TestCheckSSEHeaders(t *testing.T) {
	for _, c := range []struct {
		op   string
		hd   http.Header
		fail bool
	}{
		{op: "PutObject", hd: http.Header{hdrSSE: {"aws:kms"}}},
		{op: "PutObject", hd: http.Header{hdrSSE: {"AES256"}}},
		{op: "PutObject", hd: http.Header{hdrSSE: {"aws:kms:dsse"}}},
		{op: "PutObject", hd: http.Header{hdrSSE: {"aes:kms"}}, fail: true},
		{op: "CopyObject", hd: http.Header{hdrSSE: {""}}, fail: true},
		{op: "CreateMultipartUpload", hd: http.Header{hdrSSE: {"AWS:KMS"}}, fail: true},
		{op: "GetObject", hd: http.Header{hdrSSE: {"aws:kms"}}, fail: true},
		{op: "HeadObject", hd: http.Header{hdrSSEKMSKeyID: {"k"}}, fail: true},
		{op: "GetObject", hd: http.Header{}},
		{op: "UploadPart", hd: http.Header{hdrSSE: {"whatever"}}},
	} {
		err := checkSSEHeaders(c.op, c.hd)
		if (err != nil) != c.fail {
			t.Errorf("%s with %v: %v, want failure %v", c.op, c.hd, err, c.fail)
		}
	}
}
