package cryptostore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sealfs/sealfs/internal/banner"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	b, _ := banner.Wait(stdout, time.Minute)
	go func() { srv.exited <- cmd.Wait() }()
	srv.addr, srv.ca = b.S3Addr, b.CAFile
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

// ---- tests of the S3 backend

func newS3Env(t *testing.T, bk *testBackend, tweak func(*Config)) *testEnv {
	t.Helper()
	return newEnv(t, func(c *Config) {
		bk.config(t)(c)
		if tweak != nil {
			tweak(c)
		}
	})
}

// rawSizes lists the backend bucket with a plain client: key → size.
func (bk *testBackend) rawSizes(t testing.TB) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(bk.srv.client, &s3.ListObjectsV2Input{Bucket: aws.String(bk.bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return out
}

// TestS3BlobsCommitOrder: the record commits only after the backend has
// the whole blob (a multipart upload completed); a backend that refuses
// the upload leaves no record; a replaced blob goes only after the
// replacing commit.
func TestS3BlobsCommitOrder(t *testing.T) {
	bk := &testBackend{name: "s3", srv: s3Server(t)}
	var hookSeen map[string]int64
	var afterSeen map[string]int64
	e := newS3Env(t, bk, func(c *Config) {
		c.testHookBeforeCommit = func() { hookSeen = bk.rawSizes(t) }
		c.testHookAfterCommit = func() { afterSeen = bk.rawSizes(t) }
	})
	e.bucket(t, "bkt", true)

	// Refused uploads: no record, nothing in the bucket.
	bk.failPut.Store(true)
	for _, n := range []int{1 << 20, 20 << 20} {
		_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "refused", Body: bytes.NewReader(randBytes(n)), Size: int64(n)})
		if err == nil {
			t.Fatalf("put of %d bytes succeeded with the backend refusing uploads", n)
		}
		if _, err := e.store.Head(ctx, "bkt", "refused"); !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("a put whose upload failed left a record: %v", err)
		}
	}
	bk.failPut.Store(false)
	if got := bk.rawSizes(t); len(got) != 0 {
		t.Fatalf("failed uploads left objects: %v", got)
	}

	// A 20 MiB blob (a multipart upload): complete in the bucket before
	// the commit.
	hookSeen = nil
	writes := bk.counter.writes.Load()
	o := e.put(t, "bkt", "big", randBytes(20<<20))
	if w := bk.counter.writes.Load() - writes; w < 4 {
		t.Errorf("a 20 MiB blob went up in %d requests, want a multipart upload (create, parts, complete)", w)
	}
	key := "blobs/" + o.Blobs[0].ID.String()
	final := bk.rawSizes(t)[key]
	if final == 0 || hookSeen[key] != final {
		t.Fatalf("before the commit the bucket held %v, want %s complete (%d bytes)", hookSeen, key, final)
	}

	// Replaced: the old blob is there after the commit, gone after.
	afterSeen = nil
	o2 := e.put(t, "bkt", "big", randBytes(1<<20))
	if _, ok := afterSeen[key]; !ok {
		t.Fatalf("the replaced blob was removed before the replacing commit returned: %v", afterSeen)
	}
	if err := e.store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e.removeReplaced(t)
	got := bk.rawSizes(t)
	if _, ok := got[key]; ok || len(got) != 1 || got["blobs/"+o2.Blobs[0].ID.String()] == 0 {
		t.Fatalf("after the replacement the bucket holds %v, want only the new blob", got)
	}
}

// TestS3BlobsRangedReads: a read fetches the chunks it touches, no more;
// a sequential read fetches each byte once, in few requests.
func TestS3BlobsRangedReads(t *testing.T) {
	bk := &testBackend{name: "s3", srv: s3Server(t)}
	e := newS3Env(t, bk, nil)
	e.bucket(t, "bkt", true)
	const size = 20 << 20
	data := randBytes(size)
	e.put(t, "bkt", "big", data)
	chunk := int64(DefaultChunkSize + 16)

	bk.counter.got.Store(0)
	bk.counter.gets.Store(0)
	h, err := e.store.Open(ctx, "bkt", "big")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	off := int64(10<<20 + 5)
	if _, err := h.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[off:off+100]) {
		t.Fatal("ranged read differs")
	}
	// One more, across a chunk boundary: two chunks.
	off2 := int64(15<<20 - 50)
	if _, err := h.ReadAt(buf, off2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[off2:off2+100]) {
		t.Fatal("ranged read across chunks differs")
	}
	h.Close()
	served := bk.counter.got.Load()
	if limit := int64(HeaderSize) + 3*chunk; served > limit {
		t.Fatalf("reading 3 chunks fetched %d bytes from the backend, want at most %d", served, limit)
	}
	t.Logf("two ranged reads (3 chunks): %d bytes in %d GETs", served, bk.counter.gets.Load())

	bk.counter.got.Store(0)
	bk.counter.gets.Store(0)
	if got := e.mustGet(t, "bkt", "big"); !bytes.Equal(got, data) {
		t.Fatal("sequential read differs")
	}
	storedSize := int64(HeaderSize) + int64(size/DefaultChunkSize)*chunk
	served, gets := bk.counter.got.Load(), bk.counter.gets.Load()
	if served != storedSize {
		// A read that runs past what the last response holds takes the
		// part it holds from it and fetches the rest alone.
		t.Fatalf("a sequential read of %d stored bytes fetched %d", storedSize, served)
	}
	if gets > 40 {
		t.Fatalf("a sequential read of %d chunks took %d GETs: no read-ahead", size/DefaultChunkSize, gets)
	}
	t.Logf("sequential read: %d bytes in %d GETs", served, gets)
}

// TestS3BlobsCollect: the orphan collector works on the bucket listing and
// keeps blobs younger than the grace window.
func TestS3BlobsCollect(t *testing.T) {
	bk := &testBackend{name: "s3", srv: s3Server(t)}
	e := newS3Env(t, bk, func(c *Config) { c.CollectInterval = -1 })
	e.bucket(t, "bkt", true)
	kept := e.put(t, "bkt", "kept", randBytes(300<<10))
	orphan := meta.NewBlobID()
	for _, k := range []string{"blobs/" + orphan.String(), "blobs/not-a-blob"} {
		if _, err := bk.srv.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bk.bucket), Key: aws.String(k), Body: bytes.NewReader(randBytes(1000))}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.store.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orphans != 0 || st.Blobs != 2 {
		t.Fatalf("collect within the grace window: %+v, want 2 blobs seen, none removed", st)
	}
	time.Sleep(20 * time.Millisecond)
	if e.db.Shared() {
		time.Sleep(4 * testSharedGrace) // a shared store's orphans wait four grace periods
	}
	e.store.blobs.mu.Lock()
	e.store.blobs.grace = 10 * time.Millisecond
	e.store.blobs.mu.Unlock()
	st, err = e.store.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Orphans != 1 || st.Bytes != 1000 {
		t.Fatalf("collect after the grace window: %+v, want the orphan removed", st)
	}
	got := bk.rawSizes(t)
	if _, ok := got["blobs/"+orphan.String()]; ok {
		t.Fatal("the orphan is still in the bucket")
	}
	if _, ok := got["blobs/"+kept.Blobs[0].ID.String()]; !ok {
		t.Fatal("the collector removed a referenced blob")
	}
	if _, ok := got["blobs/not-a-blob"]; !ok {
		t.Fatal("the collector removed an object that is not a blob")
	}
	e.mustGet(t, "bkt", "kept")
}

// TestS3BlobsMultipartNoCopy: completing a multipart upload references the
// parts' blobs; nothing is uploaded again.
func TestS3BlobsMultipartNoCopy(t *testing.T) {
	bk := &testBackend{name: "s3", srv: s3Server(t)}
	e := newS3Env(t, bk, func(c *Config) { c.MinPartSize = 100 << 10 })
	e.bucket(t, "bkt", true)
	u, err := e.store.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{}, "")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	var parts []CompletePart
	for i, n := range []int{150 << 10, 100 << 10, 7} {
		data := randBytes(n)
		p, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: u.ID, Number: int32(i + 1), Body: bytes.NewReader(data), Size: int64(n)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
		parts = append(parts, CompletePart{Number: int32(i + 1), ETag: p.ETag})
	}
	before := bk.rawSizes(t)
	writes := bk.counter.writes.Load()
	o, err := e.store.CompleteMultipart(ctx, "bkt", "m", u.ID, parts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := bk.counter.writes.Load() - writes; w != 0 {
		t.Fatalf("complete uploaded %d times, want none", w)
	}
	if len(o.Blobs) != 3 || len(before) != 3 {
		t.Fatalf("object has %d blobs, bucket had %d; want the 3 parts'", len(o.Blobs), len(before))
	}
	for _, b := range o.Blobs {
		if _, ok := before["blobs/"+b.ID.String()]; !ok {
			t.Fatalf("blob %s is not a part's", b.ID)
		}
	}
	if got := e.mustGet(t, "bkt", "m"); !bytes.Equal(got, all) {
		t.Fatal("multipart object reads wrong")
	}
	checkRanges(t, e, "bkt", "m", all, mrand.New(mrand.NewPCG(5, 6)), 40)
}

// TestS3BlobsBackendDown: with the backend gone, reads and writes fail
// with an error in bounded time, and a failed write leaves no record.
func TestS3BlobsBackendDown(t *testing.T) {
	if _, err := sealfsBinary(); err != nil {
		t.Fatal(err)
	}
	srv, err := startS3Server(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	bk := &testBackend{name: "s3", srv: srv, timeout: 2 * time.Second}
	e := newS3Env(t, bk, nil)
	e.bucket(t, "bkt", true)
	e.put(t, "bkt", "there", randBytes(1<<20))
	srv.stop()

	bounded := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("%s succeeded with the backend down", what)
			}
			t.Logf("%s: %v after %v", what, err, time.Since(start).Round(time.Millisecond))
		case <-time.After(90 * time.Second):
			t.Fatalf("%s hangs with the backend down", what)
		}
	}
	bounded("get", func() error { _, err := e.get(t, "bkt", "there"); return err })
	bounded("put", func() error {
		_, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "new", Body: bytes.NewReader(randBytes(1 << 20)), Size: 1 << 20})
		return err
	})
	if _, err := e.store.Head(ctx, "bkt", "new"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("a put that failed left a record: %v", err)
	}
	// Inline objects do not need the backend.
	e.put(t, "bkt", "small", randBytes(100))
	// Opening a store over a backend that is down fails at once.
	bounded("open", func() error {
		_, err := OpenS3Blobs(ctx, S3BlobConfig{Bucket: bk.bucket, Endpoint: "https://" + srv.addr, AccessKey: testS3Access, SecretKey: testS3Secret, CAFile: srv.ca, Timeout: 2 * time.Second})
		return err
	})
	// A backend that accepts connections and never answers: the timeouts
	// end the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	bounded("open on a hung backend", func() error {
		_, err := OpenS3Blobs(ctx, S3BlobConfig{Bucket: "b", Endpoint: "https://" + ln.Addr().String(), AccessKey: testS3Access, SecretKey: testS3Secret, Timeout: time.Second})
		return err
	})
}
