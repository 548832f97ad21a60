package sigv4

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzChunkedReader feeds arbitrary bodies to the aws-chunked decoder in
// each mode. It must never panic, never return more bytes than it was given,
// and never report success for a signed body it could not have verified.
func FuzzChunkedReader(f *testing.F) {
	seed := strings.Repeat("0", 64)
	data := pattern(300)
	f.Add(encodeUnsigned([][]byte{data[:100], data[100:]}, []string{"x-amz-checksum-crc32:" + checksumOf(CRC32, data)}), uint8(0))
	f.Add(encodeSigned(testSignTime, seed, [][]byte{data[:200], data[200:]}, nil), uint8(1))
	f.Add(encodeSigned(testSignTime, seed, [][]byte{data}, []string{"x-amz-checksum-crc32c:" + checksumOf(CRC32C, data)}), uint8(2))
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\n\r\n\r\n"), uint8(0))
	f.Add([]byte("ffffffffffffffff\r\n"), uint8(0))
	f.Add([]byte("0\r\n\r\n"), uint8(0))
	f.Add([]byte(""), uint8(1))

	key := testSigningKey(testSignTime.Format("20060102"))
	var seedSig [32]byte
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		modes := []PayloadMode{PayloadStreamingUnsignedTrailer, PayloadStreamingSigned, PayloadStreamingSignedTrailer}
		mode := modes[int(sel)%len(modes)]
		var signer *chunkSigner
		if mode.chunkSigned() {
			signer = newChunkSigner(key, testSignTime.Format(AmzDateLayout), testSignTime.Format("20060102")+"/"+testRegion+"/s3/aws4_request", seedSig)
		}
		c := newChunkReader(bytes.NewReader(body), mode, signer, -1)
		buf := make([]byte, 1+int(sel)%97)
		total := 0
		var err error
		for i := 0; i <= len(body)+2; i++ {
			var n int
			n, err = c.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a %d-byte buffer", n, len(buf))
			}
			total += n
			if err != nil {
				break
			}
		}
		if err == nil {
			t.Fatal("decoder made no progress to an end")
		}
		if total > len(body) {
			t.Fatalf("decoded %d bytes from a %d-byte body", total, len(body))
		}
		if errors.Is(err, io.EOF) && signer != nil && !bytes.Contains(body, []byte("chunk-signature=")) {
			t.Fatal("a signed body without any chunk signature was accepted")
		}
		// The error sticks.
		if _, err2 := c.Read(buf); err2 != err {
			t.Fatalf("error changed from %v to %v", err, err2)
		}
	})
}

// FuzzParseAuthorization checks that the Authorization parser never
// panics, and that what it accepts is complete and consistent.
func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0a", 32)
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20250314/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Credential=AK/20250314/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=")
	f.Add("AWS AK:sig")
	f.Add("AWS4-HMAC-SHA256 ,,,")
	f.Add("AWS4-HMAC-SHA256 Credential=/20250314/r/s3/aws4_request, SignedHeaders=;, Signature=" + sig)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			wantCode(t, err, "AuthorizationHeaderMalformed")
			return
		}
		if a.cred.accessKey == "" || len(a.cred.date) != 8 || a.cred.region == "" {
			t.Fatalf("accepted an incomplete credential: %+v", a.cred)
		}
		host := false
		for _, n := range a.signedHeaders {
			if n == "" || strings.ToLower(n) != n {
				t.Fatalf("accepted signed header %q", n)
			}
			host = host || n == "host"
		}
		if !host {
			t.Fatal("accepted a signature that does not cover host")
		}
		if strings.Join(a.signedHeaders, ";") != a.signedHeadersRaw {
			t.Fatal("signed header list and its raw form disagree")
		}
	})
}
