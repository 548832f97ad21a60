package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/crc64nvme"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/sigv4"
)

const (
	e2eAccessKey = "SEALFSE2EACCESSKEY01"
	e2eSecret    = "sealfs-e2e/secret+key=abcdefghijklmnop"
	e2eRegion    = "us-east-1"
	e2eBucket    = "bucket"
)

// stored is what the test server decoded from one PUT.
type stored struct {
	data      []byte
	mode      sigv4.PayloadMode
	presigned bool
	checksums map[sigv4.ChecksumAlgorithm]string
	md5       []byte
	firstLine string // the first line of the raw body, for aws-chunked
	encoding  string // Content-Encoding
}

// objectServer is an httptest server whose handler authenticates every
// request with a Verifier, decodes PUT bodies with Auth.Body and keeps what
// it decoded in memory. Failures are answered with s3err.WriteXML.
type objectServer struct {
	*httptest.Server
	mu      sync.Mutex
	objects map[string]stored
}

func newObjectServer(t *testing.T, useTLS bool) *objectServer {
	t.Helper()
	s := &objectServer{objects: make(map[string]stored)}
	v := &sigv4.Verifier{
		Lookup: func(ak string) (string, bool) {
			if ak == e2eAccessKey {
				return e2eSecret, true
			}
			return "", false
		},
		Region: e2eRegion,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const reqID = "E2E0000000000001"
		auth, err := v.Verify(r)
		if err != nil {
			s3err.WriteXML(w, r, err, reqID)
			return
		}
		if r.Method != http.MethodPut {
			s3err.WriteXML(w, r, s3err.ErrMethodNotAllowed, reqID)
			return
		}
		peek := &firstLine{r: r.Body}
		r.Body = struct {
			io.Reader
			io.Closer
		}{peek, r.Body}
		p, err := auth.Body(r, sigv4.WithMD5())
		if err != nil {
			s3err.WriteXML(w, r, err, reqID)
			return
		}
		data, err := io.ReadAll(p)
		if err != nil {
			s3err.WriteXML(w, r, err, reqID)
			return
		}
		s.mu.Lock()
		s.objects[r.URL.Path] = stored{
			data: data, mode: p.Mode(), presigned: auth.Presigned,
			checksums: p.Checksums(), md5: p.MD5(), firstLine: peek.line(),
			encoding: r.Header.Get("Content-Encoding"),
		}
		s.mu.Unlock()
		w.Header().Set("ETag", `"`+hex.EncodeToString(p.MD5())+`"`)
		if alg, val := p.ClientChecksum(); alg != "" {
			w.Header().Set(alg.Header(), val)
		}
		w.WriteHeader(http.StatusOK)
	})
	s.Server = httptest.NewUnstartedServer(h)
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *objectServer) get(t *testing.T, key string) stored {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects["/"+e2eBucket+"/"+key]
	if !ok {
		t.Fatalf("server stored no object %q (has %d)", key, len(s.objects))
	}
	return o
}

// firstLine remembers the first line of what passes through it.
type firstLine struct {
	r   io.Reader
	buf []byte
}

func (f *firstLine) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if len(f.buf) < 64 {
		f.buf = append(f.buf, p[:min(n, 64-len(f.buf))]...)
	}
	return n, err
}

func (f *firstLine) line() string {
	s, _, _ := strings.Cut(string(f.buf), "\r\n")
	return s
}

// isolateEnv keeps the machine's AWS settings (AWS_CA_BUNDLE and friends,
// which override client CA options, and ~/.aws) out of the SDK clients.
func isolateEnv(t *testing.T) {
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION",
		"AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_REGION", e2eRegion)
	t.Setenv("AWS_ACCESS_KEY_ID", e2eAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e2eSecret)
}

// sdkClient returns an aws-sdk-go-v2 S3 client built by
// config.LoadDefaultConfig, so with the SDK's default settings (its default
// CRC32 trailing checksum among them), pointed at srv and trusting srv's
// certificate through srv.Client(). No shared config file is read.
func sdkClient(t *testing.T, srv *objectServer, secret string) *s3.Client {
	t.Helper()
	isolateEnv(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(e2eRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(e2eAccessKey, secret, "")),
		config.WithHTTPClient(srv.Client()),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenSupported {
		t.Fatalf("the SDK's default checksum setting is %v", cfg.RequestChecksumCalculation)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
}

func data(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 7
		x ^= x >> 9
		b[i] = byte(x >> 24)
	}
	return b
}

func sum(alg sigv4.ChecksumAlgorithm, b []byte) string {
	var h hash.Hash
	switch alg {
	case sigv4.CRC32:
		h = crc32.NewIEEE()
	case sigv4.CRC32C:
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case sigv4.CRC64NVME:
		var raw [8]byte
		binary.BigEndian.PutUint64(raw[:], crc64nvme.Checksum(b))
		return base64.StdEncoding.EncodeToString(raw[:])
	case sigv4.SHA1:
		h = sha1.New()
	case sigv4.SHA256:
		h = sha256.New()
	}
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func checkStored(t *testing.T, got stored, want []byte) {
	t.Helper()
	if !bytes.Equal(got.data, want) {
		t.Fatalf("server decoded %d bytes, client sent %d (equal=false)", len(got.data), len(want))
	}
	m := md5.Sum(want)
	if !bytes.Equal(got.md5, m[:]) {
		t.Fatalf("MD5 %x, want %x", got.md5, m)
	}
}

func TestSDKPutObjectDefaultConfig(t *testing.T) {
	srv := newObjectServer(t, true)
	client := sdkClient(t, srv, e2eSecret)
	for _, size := range []int{0, 1, 1 << 20, 64 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			body := data(size)
			key := "default/" + strconv.Itoa(size)
			out, err := client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(e2eBucket), Key: aws.String(key), Body: bytes.NewReader(body),
			})
			if err != nil {
				t.Fatal(err)
			}
			got := srv.get(t, key)
			checkStored(t, got, body)
			if got.checksums[sigv4.CRC32] != sum(sigv4.CRC32, body) {
				t.Fatalf("CRC32 %q, want %q (all: %v)", got.checksums[sigv4.CRC32], sum(sigv4.CRC32, body), got.checksums)
			}
			if aws.ToString(out.ETag) != `"`+hex.EncodeToString(got.md5)+`"` {
				t.Fatalf("ETag %s", aws.ToString(out.ETag))
			}
			t.Logf("%d bytes: mode %v, first line %q, Content-Encoding %q", size, got.mode, got.firstLine, got.encoding)
			if size > 0 {
				if got.mode != sigv4.PayloadStreamingUnsignedTrailer {
					t.Fatalf("mode %v, want the SDK's default trailing checksum", got.mode)
				}
				// The SDK sends the whole body as one chunk.
				if want := strconv.FormatInt(int64(size), 16); got.firstLine != want {
					t.Fatalf("first chunk header %q, want a single chunk of %s", got.firstLine, want)
				}
			}
		})
	}
}

func TestSDKPutObjectChecksumAlgorithms(t *testing.T) {
	srv := newObjectServer(t, true)
	client := sdkClient(t, srv, e2eSecret)
	body := data(300001)
	algs := []struct {
		sdk  types.ChecksumAlgorithm
		mine sigv4.ChecksumAlgorithm
	}{
		{sdk: types.ChecksumAlgorithmSha256, mine: sigv4.SHA256},
		{sdk: types.ChecksumAlgorithmCrc32c, mine: sigv4.CRC32C},
		{sdk: types.ChecksumAlgorithmCrc64nvme, mine: sigv4.CRC64NVME},
		{sdk: types.ChecksumAlgorithmSha1, mine: sigv4.SHA1},
		{sdk: types.ChecksumAlgorithmCrc32, mine: sigv4.CRC32},
	}
	for _, a := range algs {
		t.Run(string(a.mine), func(t *testing.T) {
			key := "alg/" + string(a.mine)
			_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(e2eBucket), Key: aws.String(key), Body: bytes.NewReader(body),
				ChecksumAlgorithm: a.sdk,
			})
			if err != nil {
				t.Fatal(err)
			}
			got := srv.get(t, key)
			checkStored(t, got, body)
			if got.checksums[a.mine] != sum(a.mine, body) {
				t.Fatalf("%s = %q, want %q", a.mine, got.checksums[a.mine], sum(a.mine, body))
			}
			if got.mode != sigv4.PayloadStreamingUnsignedTrailer {
				t.Fatalf("mode %v", got.mode)
			}
		})
	}
}

func TestSDKPutObjectPlainHTTP(t *testing.T) {
	// Without TLS the SDK signs the payload's SHA-256 and sends the CRC32
	// as a header.
	srv := newObjectServer(t, false)
	client := sdkClient(t, srv, e2eSecret)
	body := data(200000)
	if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e2eBucket), Key: aws.String("plain"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatal(err)
	}
	got := srv.get(t, "plain")
	checkStored(t, got, body)
	if got.mode != sigv4.PayloadSHA256 || got.checksums[sigv4.CRC32] != sum(sigv4.CRC32, body) {
		t.Fatalf("mode %v checksums %v", got.mode, got.checksums)
	}
}

func TestSDKKeysNeedingEncoding(t *testing.T) {
	srv := newObjectServer(t, true)
	client := sdkClient(t, srv, e2eSecret)
	for _, key := range []string{"a b/c+d=e&f", "ünïcødé/€uro", "odd!'()*~;:@$,.txt", "percent%20literal", "dir//double"} {
		body := []byte("key " + key)
		if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(e2eBucket), Key: aws.String(key), Body: bytes.NewReader(body),
		}); err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		checkStored(t, srv.get(t, key), body)
	}
}

func TestSDKPresignedPut(t *testing.T) {
	srv := newObjectServer(t, true)
	client := sdkClient(t, srv, e2eSecret)
	presign := s3.NewPresignClient(client)
	body := data(70000)
	req, err := presign.PresignPutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e2eBucket), Key: aws.String("presigned/obj"),
	}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(req.URL, "X-Amz-Expires=600") {
		t.Fatalf("presigned URL without expiry: %s", req.URL)
	}
	hr, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range req.SignedHeader {
		if strings.EqualFold(k, "Host") {
			continue
		}
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned PUT: %s %s", resp.Status, msg)
	}
	got := srv.get(t, "presigned/obj")
	checkStored(t, got, body)
	if !got.presigned || got.mode != sigv4.PayloadUnsigned {
		t.Fatalf("presigned %v mode %v", got.presigned, got.mode)
	}

	// The same URL with another body length still authenticates (the
	// payload is unsigned), but a tampered URL does not.
	bad := strings.Replace(req.URL, "presigned/obj", "presigned/other", 1)
	hr, _ = http.NewRequest(http.MethodPut, bad, bytes.NewReader(body))
	resp, err = srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(msg, []byte("<Code>SignatureDoesNotMatch</Code>")) {
		t.Fatalf("tampered presigned URL: %s %s", resp.Status, msg)
	}
}

func TestSDKWrongSecret(t *testing.T) {
	srv := newObjectServer(t, true)
	client := sdkClient(t, srv, "not-the-secret")
	_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e2eBucket), Key: aws.String("x"), Body: bytes.NewReader([]byte("x")),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "SignatureDoesNotMatch" {
		t.Fatalf("want SignatureDoesNotMatch, got %v", err)
	}
}

// minioClient returns a minio-go client for srv.
func minioClient(t *testing.T, srv *objectServer, trailing bool) *minio.Client {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:           miniocreds.NewStaticV4(e2eAccessKey, e2eSecret, ""),
		Secure:          u.Scheme == "https",
		Transport:       srv.Client().Transport,
		Region:          e2eRegion,
		BucketLookup:    minio.BucketLookupPath,
		TrailingHeaders: trailing,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMinioPutObject(t *testing.T) {
	cases := []struct {
		name     string
		tls      bool
		trailing bool
		checksum minio.ChecksumType
		mode     sigv4.PayloadMode // for the 1 MiB body; smaller ones may go with Content-MD5
		computed sigv4.ChecksumAlgorithm
	}{
		{name: "http", tls: false, mode: sigv4.PayloadStreamingSigned},
		{name: "http trailing crc32c", tls: false, trailing: true, checksum: minio.ChecksumCRC32C, mode: sigv4.PayloadStreamingSignedTrailer},
		{name: "https", tls: true, mode: sigv4.PayloadUnsigned},
		// With trailing headers but no checksum chosen, minio-go sends
		// UNSIGNED-PAYLOAD and x-amz-checksum-algorithm: CRC32C, asking
		// the server to compute it.
		{name: "https trailing", tls: true, trailing: true, mode: sigv4.PayloadUnsigned, computed: sigv4.CRC32C},
		{name: "https trailing sha256", tls: true, trailing: true, checksum: minio.ChecksumSHA256, mode: sigv4.PayloadStreamingUnsignedTrailer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newObjectServer(t, tc.tls)
			mc := minioClient(t, srv, tc.trailing)
			for _, size := range []int{0, 1, 65536, 1<<20 + 3} {
				body := data(size)
				key := fmt.Sprintf("minio/%d", size)
				info, err := mc.PutObject(context.Background(), e2eBucket, key, bytes.NewReader(body), int64(size),
					minio.PutObjectOptions{Checksum: tc.checksum})
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				got := srv.get(t, key)
				checkStored(t, got, body)
				t.Logf("size %d: mode %v checksums %v", size, got.mode, got.checksums)
				if size > 1<<20 && got.mode != tc.mode {
					t.Fatalf("size %d: mode %v, want %v", size, got.mode, tc.mode)
				}
				if info.ETag != hex.EncodeToString(got.md5) {
					t.Fatalf("ETag %q", info.ETag)
				}
				if tc.computed != "" && got.checksums[tc.computed] == "" {
					t.Fatalf("size %d: no %s computed (%v)", size, tc.computed, got.checksums)
				}
				for alg, v := range got.checksums {
					if v != sum(alg, body) {
						t.Fatalf("%s = %s, want %s", alg, v, sum(alg, body))
					}
				}
			}
		})
	}
}

// send does one request with the test server's client and returns the
// status and body.
func send(t *testing.T, srv *objectServer, r *http.Request) (int, string) {
	t.Helper()
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// minioSigned returns a PUT to srv signed by minio-go's streaming signer,
// with its encoded body in memory for tampering.
func minioSigned(t *testing.T, srv *objectServer, key string, body []byte, trailer http.Header) (*http.Request, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPut, srv.URL+"/"+e2eBucket+"/"+key, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Trailer = trailer
	r = signer.StreamingSignV4(r, e2eAccessKey, e2eSecret, "", e2eRegion, int64(len(body)), time.Now().UTC(), sha256Hasher{sha256.New()})
	enc, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, enc
}

func resend(r *http.Request, body []byte) *http.Request {
	c := r.Clone(context.Background())
	c.Body = io.NopCloser(bytes.NewReader(body))
	c.ContentLength = int64(len(body))
	return c
}

func TestStreamingErrorsOverHTTP(t *testing.T) {
	srv := newObjectServer(t, false)
	body := data(150000)

	t.Run("untampered", func(t *testing.T) {
		r, enc := minioSigned(t, srv, "ok", body, nil)
		if code, msg := send(t, srv, resend(r, enc)); code != http.StatusOK {
			t.Fatalf("%d %s", code, msg)
		}
		checkStored(t, srv.get(t, "ok"), body)
	})
	t.Run("tampered chunk signature", func(t *testing.T) {
		r, enc := minioSigned(t, srv, "badsig", body, nil)
		// Replace one hex digit of the signature by another hex digit (a
		// bit flip could make it a non-hex character: malformed, not wrong).
		i := bytes.Index(enc, []byte("chunk-signature=")) + len("chunk-signature=") + 7
		if enc[i] == '0' {
			enc[i] = '1'
		} else {
			enc[i] = '0'
		}
		code, msg := send(t, srv, resend(r, enc))
		if code != http.StatusForbidden || !strings.Contains(msg, "<Code>SignatureDoesNotMatch</Code>") {
			t.Fatalf("%d %s", code, msg)
		}
	})
	t.Run("wrong trailer checksum", func(t *testing.T) {
		r, enc := minioSigned(t, srv, "badsum", body, http.Header{"x-amz-checksum-crc32": {sum(sigv4.CRC32, body[1:])}})
		code, msg := send(t, srv, resend(r, enc))
		if code != http.StatusBadRequest || !strings.Contains(msg, "<Code>BadDigest</Code>") {
			t.Fatalf("%d %s", code, msg)
		}
	})
	t.Run("truncated chunked body", func(t *testing.T) {
		r, enc := minioSigned(t, srv, "short", body, nil)
		// Announce the full length, send 100000 bytes, then end the
		// stream: the server's body ends early.
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var head bytes.Buffer
		fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.URL.RequestURI(), r.Host, len(enc))
		for k, vs := range r.Header {
			for _, v := range vs {
				fmt.Fprintf(&head, "%s: %s\r\n", k, v)
			}
		}
		head.WriteString("\r\n")
		conn.Write(head.Bytes())
		conn.Write(enc[:100000])
		conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "<Code>IncompleteBody</Code>") {
			t.Fatalf("%s %s", resp.Status, msg)
		}
	})
}

func TestAWSChunkedWithTransferEncodingChunked(t *testing.T) {
	// The aws CLI sends aws-chunked bodies with Transfer-Encoding: chunked
	// and no Content-Length.
	srv := newObjectServer(t, true)
	body := data(3<<20 + 17)
	var enc bytes.Buffer
	for off := 0; off < len(body); off += 1 << 20 {
		end := min(off+1<<20, len(body))
		fmt.Fprintf(&enc, "%x\r\n", end-off)
		enc.Write(body[off:end])
		enc.WriteString("\r\n")
	}
	fmt.Fprintf(&enc, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", sum(sigv4.CRC32, body))
	r, err := http.NewRequest(http.MethodPut, srv.URL+"/"+e2eBucket+"/cli", io.NopCloser(&enc))
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = -1
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(body)))
	r.Header.Set("X-Amz-Content-Sha256", sigv4.StreamingUnsignedPayloadTrailer)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: e2eAccessKey, SecretAccessKey: e2eSecret}
	if err := s.SignHTTP(context.Background(), creds, r, sigv4.StreamingUnsignedPayloadTrailer, "s3", e2eRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	if code, msg := send(t, srv, r); code != http.StatusOK {
		t.Fatalf("%d %s", code, msg)
	}
	got := srv.get(t, "cli")
	checkStored(t, got, body)
	if got.checksums[sigv4.CRC32] != sum(sigv4.CRC32, body) {
		t.Fatalf("checksums %v", got.checksums)
	}
}

func TestAnonymousAndV2OverHTTP(t *testing.T) {
	srv := newObjectServer(t, true)
	r, _ := http.NewRequest(http.MethodPut, srv.URL+"/"+e2eBucket+"/anon", strings.NewReader("x"))
	code, msg := send(t, srv, r)
	if code != http.StatusForbidden || !strings.Contains(msg, "<Code>AccessDenied</Code>") {
		t.Fatalf("anonymous: %d %s", code, msg)
	}
	r, _ = http.NewRequest(http.MethodPut, srv.URL+"/"+e2eBucket+"/v2", strings.NewReader("x"))
	r.Header.Set("Authorization", "AWS "+e2eAccessKey+":bm90LWEtcmVhbC1zaWduYXR1cmU=")
	code, msg = send(t, srv, r)
	if code != http.StatusBadRequest || !strings.Contains(msg, "Signature Version 4") {
		t.Fatalf("v2: %d %s", code, msg)
	}
}
