package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// This file holds test-only encoders of aws-chunked bodies. The signed one
// is written independently of chunked.go (plain string building, its own
// key derivation) so that the decoder is not checked against itself; it is
// itself checked against minio-go's encoder in TestIndependentEncoderMatchesMinio.

// minioHasher adapts a hash.Hash to the md5simd.Hasher minio-go's signer
// wants.
type minioHasher struct{ hash.Hash }

func (minioHasher) Close() {}

// minioStreamingRequest signs a PUT of data with minio-go's
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD signer (64 KiB chunks), with signed
// trailers when trailer is non-empty, and returns the request with its
// encoded body in memory.
func minioStreamingRequest(t testing.TB, data []byte, trailer http.Header, at time.Time) (*http.Request, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/obj%20ect", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(trailer) > 0 {
		r.Trailer = trailer
	}
	r = signer.StreamingSignV4(r, testAccessKey, testSecret, "", testRegion, int64(len(data)), at, minioHasher{sha256.New()})
	enc, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r.ContentLength == 0 {
		// minio-go announces 0 for an empty payload; with a body, Go's
		// client then sends it with Transfer-Encoding: chunked.
		r.ContentLength = -1
	} else if int64(len(enc)) != r.ContentLength {
		t.Fatalf("minio-go encoded %d bytes, announced %d", len(enc), r.ContentLength)
	}
	r.Body = io.NopCloser(bytes.NewReader(enc))
	return r, enc
}

// withBody returns a shallow copy of r reading body.
func withBody(r *http.Request, body []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	return c
}

func testHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, s)
	return m.Sum(nil)
}

// testSigningKey derives the signing key the long way.
func testSigningKey(date string) []byte {
	return testHMAC(testHMAC(testHMAC(testHMAC([]byte("AWS4"+testSecret), date), testRegion), "s3"), "aws4_request")
}

// seedOf extracts the seed signature of a header-signed request.
func seedOf(t testing.TB, r *http.Request) string {
	t.Helper()
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Signature=")
	if i < 0 {
		t.Fatalf("no signature in %q", h)
	}
	return h[i+len("Signature="):]
}

// testChunkSignature signs one chunk whose data hashes to dataSHA.
func testChunkSignature(at time.Time, prev, dataSHA string) string {
	date := at.Format("20060102")
	sts := strings.Join([]string{
		"AWS4-HMAC-SHA256-PAYLOAD",
		at.Format("20060102T150405Z"),
		date + "/" + testRegion + "/s3/aws4_request",
		prev,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		dataSHA,
	}, "\n")
	return hex.EncodeToString(testHMAC(testSigningKey(date), sts))
}

func testTrailerSignature(at time.Time, prev string, trailerLines string) string {
	date := at.Format("20060102")
	sum := sha256.Sum256([]byte(trailerLines))
	sts := strings.Join([]string{
		"AWS4-HMAC-SHA256-TRAILER",
		at.Format("20060102T150405Z"),
		date + "/" + testRegion + "/s3/aws4_request",
		prev,
		hex.EncodeToString(sum[:]),
	}, "\n")
	return hex.EncodeToString(testHMAC(testSigningKey(date), sts))
}

// encodeSigned encodes chunks as STREAMING-AWS4-HMAC-SHA256-PAYLOAD, with
// a signed trailer section when trailers (lines "name:value") are given.
func encodeSigned(at time.Time, seed string, chunks [][]byte, trailers []string) []byte {
	var b bytes.Buffer
	prev := seed
	for _, c := range chunks {
		if len(c) == 0 {
			continue
		}
		sig := testChunkSignature(at, prev, sha256Hex(c))
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(c), sig)
		b.Write(c)
		b.WriteString("\r\n")
		prev = sig
	}
	sig := testChunkSignature(at, prev, sha256Hex(nil))
	fmt.Fprintf(&b, "0;chunk-signature=%s\r\n", sig)
	if trailers == nil {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	var lines strings.Builder
	for _, l := range trailers {
		b.WriteString(l + "\r\n")
		lines.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "x-amz-trailer-signature:%s\r\n\r\n", testTrailerSignature(at, sig, lines.String()))
	return b.Bytes()
}

// encodeUnsigned encodes chunks as the AWS SDKs do for
// STREAMING-UNSIGNED-PAYLOAD-TRAILER.
func encodeUnsigned(chunks [][]byte, trailers []string) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		if len(c) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%x\r\n", len(c))
		b.Write(c)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n")
	for _, l := range trailers {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// streamedChunk is an io.Reader producing one signed aws-chunked chunk of
// size bytes (block repeated), the final chunk and the closing CRLF, without
// ever holding the body in memory.
type streamedChunk struct {
	parts []io.Reader
}

func newStreamedChunk(at time.Time, seed string, block []byte, size int64) *streamedChunk {
	h := sha256.New()
	for n := int64(0); n < size; n += int64(len(block)) {
		h.Write(block[:min(int64(len(block)), size-n)])
	}
	sig := testChunkSignature(at, seed, hex.EncodeToString(h.Sum(nil)))
	final := testChunkSignature(at, sig, sha256Hex(nil))
	return &streamedChunk{parts: []io.Reader{
		strings.NewReader(fmt.Sprintf("%x;chunk-signature=%s\r\n", size, sig)),
		io.LimitReader(&repeater{block: block}, size),
		strings.NewReader("\r\n0;chunk-signature=" + final + "\r\n\r\n"),
	}}
}

func (s *streamedChunk) Read(p []byte) (int, error) {
	for len(s.parts) > 0 {
		n, err := s.parts[0].Read(p)
		if err == io.EOF {
			s.parts = s.parts[1:]
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
	return 0, io.EOF
}

type repeater struct {
	block []byte
	off   int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.off:])
		n += c
		r.off = (r.off + c) % len(r.block)
	}
	return n, nil
}
