package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
)

const benchSize = 64 << 20

// benchRequest returns a verified Auth and its request for a body of the
// given encoded length.
func benchRequest(b *testing.B, mode string, hdr http.Header, encLen int) (*Auth, *http.Request) {
	b.Helper()
	r, err := http.NewRequest(http.MethodPut, "https://s3.example.test/b/k", http.NoBody)
	if err != nil {
		b.Fatal(err)
	}
	r.ContentLength = int64(encLen)
	for k, v := range hdr {
		r.Header[k] = v
	}
	signSDK(b, r, mode)
	a, err := newTestVerifier(testSignTime).Verify(r)
	if err != nil {
		b.Fatal(err)
	}
	return a, r
}

func benchDecode(b *testing.B, a *Auth, r *http.Request, body []byte, opts ...BodyOption) {
	buf := make([]byte, 256<<10)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Body = io.NopCloser(bytes.NewReader(body))
		p, err := a.Body(r, opts...)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{p}, buf)
		if err != nil || n != benchSize {
			b.Fatalf("%d %v", n, err)
		}
	}
}

// BenchmarkChunkedSigned64MiB decodes a 64 MiB body sent as one
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk: the chunk's SHA-256 and
// signature are the whole cost.
func BenchmarkChunkedSigned64MiB(b *testing.B) {
	data := pattern(benchSize)
	hdr := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {strconv.Itoa(benchSize)}}
	probe := encodeSigned(testSignTime, "0000000000000000000000000000000000000000000000000000000000000000", [][]byte{data}, nil)
	a, r := benchRequest(b, StreamingPayload, hdr, len(probe))
	body := encodeSigned(testSignTime, seedOf(b, r), [][]byte{data}, nil)
	benchDecode(b, a, r, body)
}

// BenchmarkChunkedSigned64MiBWithMD5 adds the MD5 an ETag needs.
func BenchmarkChunkedSigned64MiBWithMD5(b *testing.B) {
	data := pattern(benchSize)
	hdr := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {strconv.Itoa(benchSize)}}
	probe := encodeSigned(testSignTime, "0000000000000000000000000000000000000000000000000000000000000000", [][]byte{data}, nil)
	a, r := benchRequest(b, StreamingPayload, hdr, len(probe))
	body := encodeSigned(testSignTime, seedOf(b, r), [][]byte{data}, nil)
	benchDecode(b, a, r, body, WithMD5())
}

// BenchmarkChunkedUnsignedTrailerCRC32_64MiB decodes what aws-sdk-go-v2's
// default PutObject sends for 64 MiB: one unsigned chunk and a CRC32
// trailer.
func BenchmarkChunkedUnsignedTrailerCRC32_64MiB(b *testing.B) {
	data := pattern(benchSize)
	body := encodeUnsigned([][]byte{data}, []string{"x-amz-checksum-crc32:" + checksumOf(CRC32, data)})
	hdr := http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {strconv.Itoa(benchSize)},
		"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
	}
	a, r := benchRequest(b, StreamingUnsignedPayloadTrailer, hdr, len(body))
	benchDecode(b, a, r, body)
}

// BenchmarkVerifyHeader measures authenticating one header-signed request.
func BenchmarkVerifyHeader(b *testing.B) {
	r := sdkSign(b, http.MethodGet, "https://s3.example.test/bucket/some/key?versionId=3", nil, http.Header{"Range": {"bytes=0-99"}}, EmptySHA256, testSignTime)
	v := newTestVerifier(testSignTime)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
