package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/s3"
)

const (
	testAccessKey = "SEALFSTESTACCESSKEY1"
	testSecret    = "sealfs-test/secret+key=0123456789abcdef"
	testRegion    = "us-east-1"
	testDomain    = "example.com"
	// testMinPart keeps multipart tests small; the S3 minimum (5 MiB) is
	// exercised by the integration tests against the daemon.
	testMinPart = 64 << 10
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the S3 handler over a real store (Badger and the local KMS in a
// temporary directory), served over HTTPS and plain HTTP by httptest.
type env struct {
	t      testing.TB
	dir    string // the data directory
	store  *cryptostore.Store
	kms    *kms.Local
	https  *httptest.Server
	http   *httptest.Server
	client *awss3.Client
	logs   *syncBuffer
	close  func() // stops the servers and closes the store (once)

	mu       sync.Mutex
	observed []observation // what Config.Observe was called with

	socketWrites atomic.Int64 // write calls on the HTTPS server's sockets
}

// countingListener counts the write calls on its connections.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// observation is one call of Config.Observe.
type observation struct {
	op          string
	status      int
	in, out     int64
	positiveDur bool
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := openEnv(t, t.TempDir())
	t.Cleanup(e.close)
	return e
}

// openEnv opens an env over the data directory dir, new or left by an env
// closed before; the caller closes it.
func openEnv(t testing.TB, dir string) *env {
	t.Helper()
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := bytes.Repeat([]byte{7}, 32)
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), root, kms.LocalOptions{Region: testRegion})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	st, err := cryptostore.Open(context.Background(), cryptostore.Config{
		Dir: dir, Meta: db, KMS: k, Region: testRegion, MinPartSize: testMinPart, CollectInterval: -1, Logger: logger,
	})
	if err != nil {
		k.Close()
		db.Close()
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, store: st, kms: k, logs: logs}
	h := s3.NewHandler(s3.Config{
		Store:       st,
		Credentials: s3.StaticCredentials(testAccessKey, testSecret),
		Region:      testRegion,
		Domain:      testDomain,
		Logger:      logger,
		Observe: func(op string, status int, in, out int64, d time.Duration) {
			e.mu.Lock()
			e.observed = append(e.observed, observation{op: op, status: status, in: in, out: out, positiveDur: d > 0})
			e.mu.Unlock()
		},
	})
	e.https = httptest.NewUnstartedServer(h)
	e.https.EnableHTTP2 = false
	// As the daemon serves: GET bodies gather their TLS records.
	e.https.Listener = s3.BatchListener(countingListener{e.https.Listener, &e.socketWrites})
	e.https.Config.ConnContext = s3.ConnContext
	e.https.StartTLS()
	e.http = httptest.NewServer(h)
	e.close = sync.OnceFunc(func() {
		e.https.Close()
		e.http.Close()
		st.Close()
		k.Close()
		db.Close()
	})
	e.client = e.newClient(e.https.URL)
	return e
}

// newClient returns an aws-sdk-go-v2 client in its default configuration
// (checksums: CRC32 trailers with aws-chunked over TLS) for endpoint.
func (e *env) newClient(endpoint string, opts ...func(*awss3.Options)) *awss3.Client {
	e.t.Helper()
	// The machine exports CA bundle variables that would override the
	// client's own trust; and no shared AWS configuration may leak in.
	for _, v := range []string{"AWS_CA_BUNDLE", "SSL_CERT_FILE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		e.t.Setenv(v, "")
	}
	e.t.Setenv("AWS_CONFIG_FILE", filepath.Join(e.t.TempDir(), "none"))
	e.t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(e.t.TempDir(), "none"))
	cfg, err := config.LoadDefaultConfig(e.ctx(),
		config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, "")),
		config.WithHTTPClient(e.https.Client()),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		e.t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, append([]func(*awss3.Options){func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, opts...)...)
}

func (e *env) ctx() context.Context { return context.Background() }

// mkBucket creates a bucket, with default encryption when encrypted.
func (e *env) mkBucket(name string, encrypted bool) {
	e.t.Helper()
	if _, err := e.client.CreateBucket(e.ctx(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		e.t.Fatalf("create bucket %s: %v", name, err)
	}
	if encrypted {
		if err := e.store.SetBucketEncryption(e.ctx(), name, true); err != nil {
			e.t.Fatal(err)
		}
	}
}

// put stores an object with the SDK's default PutObject.
func (e *env) put(bucket, key string, data []byte) *awss3.PutObjectOutput {
	e.t.Helper()
	out, err := e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		e.t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return out
}

// get returns an object's bytes.
func (e *env) get(bucket, key string) []byte {
	e.t.Helper()
	out, err := e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// raw sends a request signed with Signature Version 4 (payload hash
// UNSIGNED-PAYLOAD unless hdr sets X-Amz-Content-Sha256) to base+path.
func (e *env) raw(method, base, path string, hdr http.Header, body []byte) *http.Response {
	e.t.Helper()
	req := e.newRequest(method, base, path, hdr, body)
	e.sign(req)
	return e.do(req)
}

// anon sends a request with no authentication.
func (e *env) anon(method, base, path string, hdr http.Header, body []byte) *http.Response {
	e.t.Helper()
	return e.do(e.newRequest(method, base, path, hdr, body))
}

func (e *env) newRequest(method, base, path string, hdr http.Header, body []byte) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	// Go's client would otherwise ask for gzip and undo a
	// Content-Encoding: gzip the test set on purpose.
	req.Header.Set("Accept-Encoding", "identity")
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

func (e *env) sign(req *http.Request) { signRequest(e.t, req) }

// signRequest signs req with the test credentials.
func signRequest(t testing.TB, req *http.Request) {
	t.Helper()
	hash := req.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = "UNSIGNED-PAYLOAD"
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	// S3 signs the path as sent (the SDK's S3 client does the same).
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), creds, req, hash, "s3", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) do(req *http.Request) *http.Response {
	e.t.Helper()
	resp, err := e.https.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// s3Error is the S3 error document.
type s3Error struct {
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// wantError checks a response is the S3 error code with status, with an
// error document (unless HEAD) and request ids.
func wantError(t *testing.T, resp *http.Response, status int, code string) s3Error {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if resp.Header.Get("X-Amz-Request-Id") == "" || resp.Header.Get("X-Amz-Id-2") == "" {
		t.Errorf("error response without x-amz-request-id / x-amz-id-2: %v", resp.Header)
	}
	var doc s3Error
	if resp.Request != nil && resp.Request.Method == http.MethodHead {
		return doc
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if doc.Code != code {
		t.Fatalf("code %q (%s), want %q", doc.Code, doc.Message, code)
	}
	if doc.RequestID != resp.Header.Get("X-Amz-Request-Id") {
		t.Errorf("RequestId %q, header %q", doc.RequestID, resp.Header.Get("X-Amz-Request-Id"))
	}
	return doc
}

// apiCode returns the S3 error code of an SDK error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wantCode fails unless err is an S3 error with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := apiCode(err); got != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// pattern returns n bytes that differ from one object to the next.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>11)
	}
	return b
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
