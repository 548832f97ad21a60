package cryptostore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/sealfs/sealfs/meta"
)

// path returns a blob's file in the file store (tests of the file store).
func (b *blobFiles) path(id meta.BlobID) string { return b.local.path(id) }

// ---- the blob backends the store's tests run over

// testBackend is one blob backend of the table the tests run over.
type testBackend struct {
	name string
	// s3 backends only: the server, and per env the bucket and the byte
	// counter of the last config made.
	srv     *testS3Server
	bucket  string
	counter *countingTransport
	failPut atomic.Bool // PUT and POST requests fail (commit-order tests)
	timeout time.Duration
}

// config points cfg at the backend: for S3, a new bucket on the test
// server.
func (bk *testBackend) config(t testing.TB) func(*Config) {
	if bk.srv == nil {
		return nil
	}
	return func(c *Config) {
		t.Helper()
		bk.bucket = fmt.Sprintf("t%s", hex.EncodeToString(randBytes(8)))
		if _, err := bk.srv.client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bk.bucket)}); err != nil {
			t.Fatalf("creating backend bucket: %v", err)
		}
		bk.counter = &countingTransport{fail: &bk.failPut}
		be, err := OpenS3Blobs(context.Background(), S3BlobConfig{
			Bucket: bk.bucket, Prefix: "blobs/", Endpoint: "https://" + bk.srv.addr,
			AccessKey: testS3Access, SecretKey: testS3Secret, CAFile: bk.srv.ca,
			Timeout: bk.timeout,
			Transport: func(rt http.RoundTripper) http.RoundTripper {
				bk.counter.next = rt
				return bk.counter
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Blobs = be
	}
}

// forEachBlobBackend runs fn over the file store and an S3 bucket on a
// sealfs daemon the test starts.
func forEachBlobBackend(t *testing.T, fn func(t *testing.T, bk *testBackend)) {
	t.Run("file", func(t *testing.T) { fn(t, &testBackend{name: "file"}) })
	t.Run("s3", func(t *testing.T) { fn(t, &testBackend{name: "s3", srv: s3Server(t)}) })
}

// rawObjects returns every object of the backend as stored, fetched with a
// plain S3 client (file store: every file under the data directory).
func (bk *testBackend) rawObjects(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if bk.srv == nil {
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, err := os.ReadFile(p); err == nil {
					out[p] = b
				}
			}
			return nil
		})
		return out
	}
	c := bk.srv.client
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bk.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			r, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bk.bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[aws.ToString(o.Key)] = b
		}
	}
	return out
}

// blobCount counts the blobs in the store's backend.
func (e *testEnv) blobCount(t testing.TB) int {
	t.Helper()
	n := 0
	if err := e.store.blobs.be.List(ctx, func(BlobInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// readBlob reads a blob as stored, through the backend.
func (e *testEnv) readBlob(t testing.TB, id meta.BlobID) []byte {
	t.Helper()
	o, err := e.store.blobs.be.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := o.ReadAt(buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeBlob replaces a blob's stored bytes (tampering), through the backend.
func (e *testEnv) writeBlob(t testing.TB, id meta.BlobID, b []byte) {
	t.Helper()
	w, err := e.store.blobs.be.Create(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// countingTransport counts the response body bytes of GETs and can fail
// uploads.
type countingTransport struct {
	next   http.RoundTripper
	fail   *atomic.Bool
	got    atomic.Int64 // GET response body bytes
	gets   atomic.Int64
	writes atomic.Int64 // PUT/POST requests
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		c.writes.Add(1)
		if c.fail != nil && c.fail.Load() {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, fmt.Errorf("test: upload refused")
		}
	}
	resp, err := c.next.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet {
		c.gets.Add(1)
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.got}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// ---- a real S3 server: a sealfs daemon serving plain buckets

const (
	testS3Access = "SEALFSBLOBTEST000001"
	testS3Secret = "sealfs-blob-test/secret+key=0123456789"
)

type testS3Server struct {
	addr   string // host:port
	ca     string // its certificate
	client *s3.Client
	cmd    *exec.Cmd
	exited chan error
	log    string
}

var testS3 struct {
	once sync.Once
	srv  *testS3Server
	err  error
	bin  sync.Once
	path string
	berr error
}

// sealfsBinary builds the sealfs binary once per test run ($SEALFS_BIN if
// set).
func sealfsBinary() (string, error) {
	testS3.bin.Do(func() {
		if p := os.Getenv("SEALFS_BIN"); p != "" {
			testS3.path = p
			return
		}
		dir, err := os.MkdirTemp("", "sealfs-bin-")
		if err != nil {
			testS3.berr = err
			return
		}
		testS3.path = filepath.Join(dir, "sealfs")
		out, err := exec.Command("go", "build", "-o", testS3.path, "github.com/sealfs/sealfs/cmd/sealfs").CombinedOutput()
		if err != nil {
			testS3.berr = fmt.Errorf("building sealfs: %v\n%s", err, out)
		}
	})
	return testS3.path, testS3.berr
}

// s3Server returns the S3 server shared by the tests of this run (stopped
// by TestMain).
func s3Server(t testing.TB) *testS3Server {
	t.Helper()
	testS3.once.Do(func() {
		dir, err := os.MkdirTemp("", "sealfs-s3backend-")
		if err != nil {
			testS3.err = err
			return
		}
		testS3.srv, testS3.err = startS3Server(dir)
	})
	if testS3.err != nil {
		t.Fatalf("starting the S3 backend server: %v", testS3.err)
	}
	return testS3.srv
}

// stopTestS3 stops the shared S3 server and removes what the run made.
func stopTestS3() {
	if testS3.srv != nil {
		testS3.srv.stop()
		os.RemoveAll(filepath.Dir(testS3.srv.log))
	}
	if os.Getenv("SEALFS_BIN") == "" && testS3.path != "" {
		os.RemoveAll(filepath.Dir(testS3.path))
	}
}

// startS3Server starts `sealfs serve` on a free loopback port with its
// data in dir.
func startS3Server(dir string) (*testS3Server, error) {
	bin, err := sealfsBinary()
	if err != nil {
		return nil, err
	}
	srv := &testS3Server{log: filepath.Join(dir, "daemon.log"), exited: make(chan error, 1)}
	logf, err := os.Create(srv.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--data", filepath.Join(dir, "data"), "--s3", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = append(os.Environ(), "SEALFS_ACCESS_KEY="+testS3Access, "SEALFS_SECRET_KEY="+testS3Secret, "SEALFS_BLOBS=", "SEALFS_META=")
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv.cmd = cmd
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		done := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "S3 endpoint: https://"); ok {
				srv.addr = v
			}
			if v, ok := strings.CutPrefix(line, "CA cert:"); ok {
				srv.ca = strings.TrimSpace(v)
			}
			if strings.HasPrefix(line, "credentials:") && !done {
				done = true
				close(banner)
			}
		}
		if !done {
			close(banner)
		}
	}()
	go func() { srv.exited <- cmd.Wait() }()
	select {
	case <-banner:
	case <-time.After(60 * time.Second):
	}
	if srv.addr == "" {
		srv.stop()
		b, _ := os.ReadFile(srv.log)
		return nil, fmt.Errorf("sealfs did not start:\n%s", b)
	}
	pem, err := os.ReadFile(srv.ca)
	if err != nil {
		srv.stop()
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	srv.client = s3.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(testS3Access, testS3Secret, ""),
		HTTPClient:  &http.Client{Transport: tr, Timeout: time.Minute},
		Logger:      logging.Nop{},

		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("https://" + srv.addr)
		o.UsePathStyle = true
	})
	return srv, nil
}

func (srv *testS3Server) stop() {
	if srv.cmd.ProcessState != nil {
		return
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		srv.cmd.Process.Kill()
		<-srv.exited
	}
}

// ---- tests of the backends

var _ = bytes.Equal
