package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/crc64nvme"

	"github.com/sealfs/sealfs/s3/s3err"
)

// checksumOf computes a checksum independently of checksum.go.
func checksumOf(alg ChecksumAlgorithm, data []byte) string {
	var raw []byte
	switch alg {
	case CRC32:
		raw = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	case CRC32C:
		raw = binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	case CRC64NVME:
		raw = binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data))
	case SHA1:
		s := sha1.Sum(data)
		raw = s[:]
	case SHA256:
		s := sha256.Sum256(data)
		raw = s[:]
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// readPayload verifies r and reads its whole body; it returns the payload
// (for its results) and the read error (nil on a verified read).
func readPayload(t *testing.T, r *http.Request, opts ...BodyOption) (*Payload, []byte, error) {
	t.Helper()
	a, err := newTestVerifier(testSignTime).Verify(r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	p, err := a.Body(r, opts...)
	if err != nil {
		return nil, nil, err
	}
	got, err := io.ReadAll(p)
	return p, got, err
}

func TestStreamingSignedFromMinio(t *testing.T) {
	for _, size := range []int{0, 1, 65535, 65536, 65537, 300000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			data := pattern(size)
			r, _ := minioStreamingRequest(t, data, nil, testSignTime)
			p, got, err := readPayload(t, r, WithMD5())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("decoded %d bytes, want %d, equal=%v", len(got), len(data), bytes.Equal(got, data))
			}
			if p.Mode() != PayloadStreamingSigned || !p.Verified() {
				t.Fatalf("mode %v verified %v", p.Mode(), p.Verified())
			}
			want := md5.Sum(data)
			if !bytes.Equal(p.MD5(), want[:]) {
				t.Fatal("MD5 of the decoded payload is wrong")
			}
		})
	}
}

func TestStreamingSignedTrailerFromMinio(t *testing.T) {
	data := pattern(200000)
	trailer := http.Header{"x-amz-checksum-crc32c": {checksumOf(CRC32C, data)}}
	r, _ := minioStreamingRequest(t, data, trailer, testSignTime)
	if r.Header.Get("X-Amz-Content-Sha256") != StreamingPayloadTrailer {
		t.Fatalf("minio-go did not use the signed trailer mode: %q", r.Header.Get("X-Amz-Content-Sha256"))
	}
	p, got, err := readPayload(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("decoded payload differs")
	}
	if alg, v := p.ClientChecksum(); alg != CRC32C || v != checksumOf(CRC32C, data) {
		t.Fatalf("client checksum %s %s", alg, v)
	}
	if cs := p.Checksums(); len(cs) != 1 || cs[CRC32C] != checksumOf(CRC32C, data) {
		t.Fatalf("checksums %v", cs)
	}
}

func TestIndependentEncoderMatchesMinio(t *testing.T) {
	// The test encoder must produce exactly what minio-go produces, so that
	// tests using it (the 64 MiB single chunk) rest on a real signer.
	data := pattern(150000)
	r, enc := minioStreamingRequest(t, data, nil, testSignTime)
	chunks := [][]byte{data[:65536], data[65536:131072], data[131072:]}
	mine := encodeSigned(testSignTime, seedOf(t, r), chunks, nil)
	if !bytes.Equal(mine, enc) {
		t.Fatalf("test encoder differs from minio-go:\n%q\n%q", mine[:120], enc[:120])
	}
	trailer := http.Header{"x-amz-checksum-sha256": {checksumOf(SHA256, data)}}
	r, enc = minioStreamingRequest(t, data, trailer, testSignTime)
	mine = encodeSigned(testSignTime, seedOf(t, r), chunks, []string{"x-amz-checksum-sha256:" + checksumOf(SHA256, data)})
	// minio-go ends trailer lines with LF and adds a blank line before the
	// signature; the signatures themselves must agree.
	sigLine := func(b []byte) string {
		i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
		return string(b[i : i+len("x-amz-trailer-signature:")+64])
	}
	if sigLine(mine) != sigLine(enc) {
		t.Fatalf("trailer signatures differ: %s vs %s", sigLine(mine), sigLine(enc))
	}
	// Both framings decode.
	for _, body := range [][]byte{enc, mine} {
		c := withBody(r, body)
		c.ContentLength = int64(len(body))
		if _, got, err := readPayload(t, c); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("framing %q...: %v", body[len(body)-140:], err)
		}
	}
}

func TestStreamingSignedTampering(t *testing.T) {
	data := pattern(140000)
	r, enc := minioStreamingRequest(t, data, http.Header{"x-amz-checksum-crc32": {checksumOf(CRC32, data)}}, testSignTime)
	flip := func(i int) []byte {
		b := bytes.Clone(enc)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] ^= 1
		}
		return b
	}
	firstSig := bytes.Index(enc, []byte("chunk-signature=")) + len("chunk-signature=")
	lastSig := bytes.LastIndex(enc, []byte("chunk-signature=")) + len("chunk-signature=")
	trailerSig := bytes.Index(enc, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
	trailerVal := bytes.Index(enc, []byte("x-amz-checksum-crc32:")) + len("x-amz-checksum-crc32:")
	cases := []struct {
		name string
		body []byte
		code string
	}{
		{name: "first chunk signature", body: flip(firstSig + 10), code: "SignatureDoesNotMatch"},
		{name: "data byte", body: flip(firstSig + 64 + 2 + 1000), code: "SignatureDoesNotMatch"},
		{name: "final chunk signature", body: flip(lastSig + 5), code: "SignatureDoesNotMatch"},
		{name: "trailer value", body: flip(trailerVal + 1), code: "SignatureDoesNotMatch"},
		{name: "trailer signature", body: flip(trailerSig + 3), code: "SignatureDoesNotMatch"},
		{name: "truncated in data", body: enc[:firstSig+64+2+5000], code: "IncompleteBody"},
		{name: "truncated in header", body: enc[:firstSig+20], code: "IncompleteBody"},
		{name: "truncated before final", body: enc[:lastSig-30], code: "IncompleteBody"},
		{name: "truncated before trailer signature", body: enc[:trailerSig-10], code: "IncompleteBody"},
		{name: "garbage after end", body: append(bytes.Clone(enc), "extra"...), code: "IncompleteBody"},
		{name: "bad size", body: append([]byte("zz"), enc[5:]...), code: "InvalidRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := withBody(r, tc.body)
			p, got, err := readPayload(t, c)
			wantCode(t, err, tc.code)
			if p != nil && p.Verified() {
				t.Fatal("tampered payload reported verified")
			}
			if len(got) > len(data) {
				t.Fatalf("decoded %d bytes of a %d-byte payload", len(got), len(data))
			}
		})
	}
}

func TestStreamingSignedWrongTrailerChecksum(t *testing.T) {
	data := pattern(70000)
	// minio-go signs whatever trailer value it is given: the signature is
	// right, the checksum is not.
	r, _ := minioStreamingRequest(t, data, http.Header{"x-amz-checksum-crc32c": {checksumOf(CRC32C, []byte("other"))}}, testSignTime)
	_, _, err := readPayload(t, r)
	wantCode(t, err, "BadDigest")
}

// unsignedTrailerRequest signs (with the SDK signer) a PUT whose body is
// STREAMING-UNSIGNED-PAYLOAD-TRAILER, as aws-sdk-go-v2 sends it.
func unsignedTrailerRequest(t *testing.T, body []byte, decodedLen int, trailerNames ...string) *http.Request {
	t.Helper()
	hdr := http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {strconv.Itoa(decodedLen)},
	}
	if len(trailerNames) > 0 {
		hdr["X-Amz-Trailer"] = trailerNames
	}
	return sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", body, hdr, StreamingUnsignedPayloadTrailer, testSignTime)
}

func TestStreamingUnsignedTrailer(t *testing.T) {
	data := pattern(100000)
	chunks := [][]byte{data[:65536], data[65536:]}
	for _, alg := range ChecksumAlgorithms() {
		t.Run(string(alg), func(t *testing.T) {
			body := encodeUnsigned(chunks, []string{alg.Header() + ":" + checksumOf(alg, data)})
			r := unsignedTrailerRequest(t, body, len(data), alg.Header())
			p, got, err := readPayload(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("decoded payload differs")
			}
			if p.Checksums()[alg] != checksumOf(alg, data) {
				t.Fatalf("checksums %v", p.Checksums())
			}
		})
		t.Run(string(alg)+" wrong", func(t *testing.T) {
			body := encodeUnsigned(chunks, []string{alg.Header() + ":" + checksumOf(alg, data[1:])})
			r := unsignedTrailerRequest(t, body, len(data), alg.Header())
			_, _, err := readPayload(t, r)
			wantCode(t, err, "BadDigest")
		})
	}
	t.Run("minio-go framing", func(t *testing.T) {
		// minio-go: LF-terminated trailer line and one CRLF too many.
		body := []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:" + checksumOf(CRC32C, []byte("hello")) + "\n\r\n\r\n")
		r := unsignedTrailerRequest(t, body, 5, "x-amz-checksum-crc32c")
		if _, got, err := readPayload(t, r); err != nil || string(got) != "hello" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("declared trailer missing", func(t *testing.T) {
		body := encodeUnsigned(chunks, nil)
		r := unsignedTrailerRequest(t, body, len(data), "x-amz-checksum-crc32")
		_, _, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
	})
	t.Run("undeclared trailer", func(t *testing.T) {
		body := encodeUnsigned(chunks, []string{"x-amz-checksum-crc32:" + checksumOf(CRC32, data)})
		r := unsignedTrailerRequest(t, body, len(data))
		_, _, err := readPayload(t, r)
		wantCode(t, err, "InvalidRequest")
	})
	t.Run("decoded length short", func(t *testing.T) {
		body := encodeUnsigned(chunks, nil)
		r := unsignedTrailerRequest(t, body, len(data)+1)
		_, _, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
	})
	t.Run("decoded length long", func(t *testing.T) {
		body := encodeUnsigned(chunks, nil)
		r := unsignedTrailerRequest(t, body, len(data)-1)
		_, got, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
		if len(got) > 65536 {
			t.Fatalf("read %d bytes past the declared length", len(got))
		}
	})
	t.Run("no decoded length", func(t *testing.T) {
		body := encodeUnsigned(chunks, nil)
		r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", body, http.Header{"Content-Encoding": {"aws-chunked"}}, StreamingUnsignedPayloadTrailer, testSignTime)
		p, got, err := readPayload(t, r)
		if err != nil || !bytes.Equal(got, data) || p.ExpectedSize() != -1 {
			t.Fatalf("%v %d", err, p.ExpectedSize())
		}
	})
}

func TestStreamingSignedSingleLargeChunkIndependentEncoder(t *testing.T) {
	data := pattern(3 << 20)
	hdr := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {strconv.Itoa(len(data))}}
	// Sign the headers with the SDK; the body has a placeholder of the
	// right length, since the seed covers Content-Length.
	probe := encodeSigned(testSignTime, strings.Repeat("0", 64), [][]byte{data}, nil)
	r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", probe, hdr, StreamingPayload, testSignTime)
	body := encodeSigned(testSignTime, seedOf(t, r), [][]byte{data}, nil)
	_, got, err := readPayload(t, withBody(r, body))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("single 3 MiB chunk: %v", err)
	}
}

func TestUnsignedAndHeaderChecksums(t *testing.T) {
	data := []byte("sealfs payload with a header checksum")
	md := md5.Sum(data)
	goodMD5 := base64.StdEncoding.EncodeToString(md[:])
	cases := []struct {
		name string
		hdr  http.Header
		body []byte
		code string // "" for success; checked at Body() when atBody
		at   string
	}{
		{name: "plain", hdr: nil, body: data},
		{name: "content-md5", hdr: http.Header{"Content-Md5": {goodMD5}}, body: data},
		{name: "content-md5 wrong", hdr: http.Header{"Content-Md5": {goodMD5}}, body: []byte("sealfs payload with a header checksun"), code: "BadDigest"},
		{name: "content-md5 malformed", hdr: http.Header{"Content-Md5": {"not base64!"}}, body: data, code: "InvalidDigest", at: "body"},
		{name: "content-md5 short", hdr: http.Header{"Content-Md5": {"AAAA"}}, body: data, code: "InvalidDigest", at: "body"},
		{name: "sha256 header", hdr: http.Header{"X-Amz-Checksum-Sha256": {checksumOf(SHA256, data)}}, body: data},
		{name: "crc64nvme header", hdr: http.Header{"X-Amz-Checksum-Crc64nvme": {checksumOf(CRC64NVME, data)}}, body: data},
		{name: "crc32 header wrong", hdr: http.Header{"X-Amz-Checksum-Crc32": {checksumOf(CRC32, data[2:])}}, body: data, code: "BadDigest"},
		{name: "checksum header malformed", hdr: http.Header{"X-Amz-Checksum-Crc32": {"AAAAAAAA"}}, body: data, code: "InvalidRequest", at: "body"},
		{name: "two checksum headers", hdr: http.Header{"X-Amz-Checksum-Crc32": {checksumOf(CRC32, data)}, "X-Amz-Checksum-Sha1": {checksumOf(SHA1, data)}}, body: data, code: "InvalidRequest", at: "body"},
		// AWS documents BadDigest for a value header whose algorithm is not the one x-amz-sdk-checksum-algorithm names.
		{name: "sdk algorithm mismatch", hdr: http.Header{"X-Amz-Checksum-Crc32": {checksumOf(CRC32, data)}, "X-Amz-Sdk-Checksum-Algorithm": {"SHA1"}}, body: data, code: "BadDigest", at: "body"},
		{name: "trailer without trailer mode", hdr: http.Header{"X-Amz-Trailer": {"x-amz-checksum-crc32"}}, body: data, code: "InvalidRequest", at: "body"},
		{name: "all at once", hdr: http.Header{"Content-Md5": {goodMD5}, "X-Amz-Checksum-Crc32c": {checksumOf(CRC32C, data)}, "X-Amz-Sdk-Checksum-Algorithm": {"crc32c"}}, body: data},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, tc.hdr, UnsignedPayload, testSignTime)
			r = withBody(r, tc.body)
			a, err := newTestVerifier(testSignTime).Verify(r)
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.Body(r)
			if tc.at == "body" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(p)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%q %v", got, err)
			}
			for alg, v := range p.Checksums() {
				if v != checksumOf(alg, data) {
					t.Fatalf("%s = %s, want %s", alg, v, checksumOf(alg, data))
				}
			}
		})
	}
}

func TestRequestedChecksumsAndMD5(t *testing.T) {
	data := pattern(123457)
	r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, "", testSignTime)
	p, _, err := readPayload(t, r, WithMD5(), WithChecksums(CRC64NVME, SHA256, CRC32C))
	if err != nil {
		t.Fatal(err)
	}
	md := md5.Sum(data)
	if !bytes.Equal(p.MD5(), md[:]) {
		t.Fatal("MD5 wrong")
	}
	cs := p.Checksums()
	if len(cs) != 3 {
		t.Fatalf("checksums %v, want exactly the three asked for", cs)
	}
	for _, alg := range []ChecksumAlgorithm{CRC64NVME, SHA256, CRC32C} {
		if cs[alg] != checksumOf(alg, data) {
			t.Fatalf("%s = %s, want %s", alg, cs[alg], checksumOf(alg, data))
		}
	}

	// Without WithMD5 and Content-MD5 no MD5 is computed.
	r = sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, "", testSignTime)
	p, _, err = readPayload(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.MD5() != nil || len(p.Checksums()) != 0 {
		t.Fatalf("unrequested results: md5=%x checksums=%v", p.MD5(), p.Checksums())
	}
	if p.md5 != nil {
		t.Fatal("an MD5 hasher runs though nobody asked for it")
	}
}

func TestPlainBodyLengthChecks(t *testing.T) {
	data := []byte("0123456789")
	t.Run("short body", func(t *testing.T) {
		r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, UnsignedPayload, testSignTime)
		r = withBody(r, data[:7])
		_, _, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
	})
	t.Run("long body", func(t *testing.T) {
		r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, UnsignedPayload, testSignTime)
		r = withBody(r, append(bytes.Clone(data), "more"...))
		_, _, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
	})
	t.Run("unexpected EOF", func(t *testing.T) {
		r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, UnsignedPayload, testSignTime)
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(data[:3]), errReader{io.ErrUnexpectedEOF}))
		_, _, err := readPayload(t, r)
		wantCode(t, err, "IncompleteBody")
	})
	t.Run("max bytes", func(t *testing.T) {
		r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, UnsignedPayload, testSignTime)
		r.Body = http.MaxBytesReader(nil, r.Body, 4)
		_, _, err := readPayload(t, r)
		wantCode(t, err, "EntityTooLarge")
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestErrorBeforeEOF reads a bad payload one byte at a time and checks that
// no call returns io.EOF: the verdict comes first and sticks.
func TestErrorBeforeEOF(t *testing.T) {
	data := []byte("abcdefgh")
	r := sdkSign(t, http.MethodPut, "https://s3.example.test/b/k", data, nil, "", testSignTime)
	r = withBody(r, []byte("abcdefgX"))
	a, err := newTestVerifier(testSignTime).Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Body(r)
	if err != nil {
		t.Fatal(err)
	}
	var buf [1]byte
	var final error
	for i := 0; i < 20; i++ {
		_, err := p.Read(buf[:])
		if errors.Is(err, io.EOF) {
			t.Fatal("io.EOF returned for a payload that does not match its hash")
		}
		if err != nil {
			final = err
			break
		}
	}
	wantCode(t, final, "XAmzContentSHA256Mismatch")
	if _, err := p.Read(buf[:]); !errors.Is(err, s3err.ErrXAmzContentSHA256Mismatch) {
		t.Fatalf("error did not stick: %v", err)
	}
}

func TestAnonymousBody(t *testing.T) {
	data := []byte("anonymous")
	r, _ := http.NewRequest(http.MethodPut, "https://s3.example.test/b/k", bytes.NewReader(data))
	r.Header.Set("Content-Md5", func() string { s := md5.Sum(data); return base64.StdEncoding.EncodeToString(s[:]) }())
	var a *Auth
	p, err := a.Body(r)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(p); err != nil || !bytes.Equal(got, data) {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Content-Sha256", StreamingPayload)
	if _, err := a.Body(r); err == nil {
		t.Fatal("signed streaming accepted without an Auth")
	}
}

func TestStripAWSChunked(t *testing.T) {
	cases := []struct{ in, want string }{
		{in: "aws-chunked", want: ""},
		{in: "aws-chunked,gzip", want: "gzip"},
		{in: "gzip, aws-chunked", want: "gzip"},
		{in: "gzip", want: "gzip"},
		{in: "", want: ""},
		// S3 returns Content-Encoding byte-exact: no spaces dropped.
		{in: "deflate, gzip", want: "deflate, gzip"},
		{in: "aws-chunked, deflate, gzip", want: "deflate, gzip"},
		{in: "deflate,  gzip", want: "deflate,  gzip"},
	}
	for _, tc := range cases {
		if got := StripAWSChunked(tc.in); got != tc.want {
			t.Errorf("StripAWSChunked(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSingleChunk64MiBSmallMemory streams a 64 MiB body sent as one signed
// chunk (the way aws-sdk-go-v2 sends a 64 MiB PutObject, here signed) through
// the decoder without ever holding it, and checks that decoding allocates a
// tiny fraction of the payload.
func TestSingleChunk64MiBSmallMemory(t *testing.T) {
	const size = 64 << 20
	block := pattern(1 << 20)
	hdr := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {strconv.Itoa(size)}}
	encLen := int64(len(strconv.FormatInt(size, 16))+len(";chunk-signature=")+64+2) + size + 2 + int64(len("0;chunk-signature=")+64+4)
	r, err := http.NewRequest(http.MethodPut, "https://s3.example.test/b/k", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = encLen
	for k, v := range hdr {
		r.Header[k] = v
	}
	signSDK(t, r, StreamingPayload)
	seed := seedOf(t, r)
	a, err := newTestVerifier(testSignTime).Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r.Body = io.NopCloser(newStreamedChunk(testSignTime, seed, block, size))
	p, err := a.Body(r, WithChecksums(CRC32))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{p}, buf)
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("decoded %d bytes: %v", n, err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("decoding a 64 MiB single-chunk body allocated %d bytes in %d objects", alloc, after.Mallocs-before.Mallocs)
	if alloc > 1<<20 {
		t.Fatalf("decoding a 64 MiB single chunk allocated %d bytes; it must stream", alloc)
	}
}
