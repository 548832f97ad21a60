package replicate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3replica"
	"github.com/sealfs/sealfs/s3/sigv4"
)

var ctx = context.Background()

// region is one daemon's worth of real parts: Badger, the local KMS, the
// store, and a replication Manager wired as the daemon wires them.
type region struct {
	name  string
	dir   string
	db    *meta.DB
	kms   *kms.Local
	store *cryptostore.Store
	mgr   *Manager
}

func newRegion(t testing.TB, name string, tweak func(*Config)) *region {
	t.Helper()
	dir := t.TempDir()
	root := make([]byte, 32)
	rand.Read(root)
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), root, kms.LocalOptions{Region: name})
	if err != nil {
		t.Fatal(err)
	}
	q, err := cryptostore.NewReplicationQueue(db, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Queue: q, Region: name, Workers: 2, RetryBase: 10 * time.Millisecond, RetryMaxDelay: 100 * time.Millisecond, PollInterval: time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	mgr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cryptostore.Open(ctx, cryptostore.Config{
		Dir: dir, Meta: db, KMS: k, Region: name,
		OnCommit: mgr.OnCommit,
		OnChange: func(cryptostore.ChangeEvent) { mgr.Notify() },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &region{name: name, dir: dir, db: db, kms: k, store: store, mgr: mgr}
	t.Cleanup(func() {
		mgr.Close()
		store.Close()
		q.Close()
		k.Close()
		db.Close()
	})
	return r
}

func (r *region) bucket(t testing.TB, name string, encrypt bool) {
	t.Helper()
	if err := r.store.CreateBucket(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	if encrypt {
		if err := r.store.SetBucketEncryption(ctx, name, true); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *region) put(t testing.TB, bucket, key string, data []byte, m meta.ObjectMeta) *meta.Object {
	t.Helper()
	o, err := r.store.Put(ctx, &cryptostore.PutInput{Bucket: bucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), Meta: m})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	return o
}

func (r *region) read(t *testing.T, bucket, key string) ([]byte, *meta.Object) {
	t.Helper()
	h, err := r.store.Open(ctx, bucket, key)
	if err != nil {
		t.Fatalf("open %s/%s in %s: %v", bucket, key, r.name, err)
	}
	defer h.Close()
	data, err := io.ReadAll(h.Reader(0, h.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return data, h.Object()
}

func (r *region) head(bucket, key string) (*meta.Object, error) {
	return r.store.Head(ctx, bucket, key)
}

func (r *region) queue(t testing.TB) []*meta.QueueItem {
	t.Helper()
	var out []*meta.QueueItem
	if err := r.db.View(ctx, func(tx *meta.Txn) error {
		return tx.ScanQueue(0, func(it *meta.QueueItem) (bool, error) {
			out = append(out, it)
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// target serves a region's store over HTTPS the way a sealfs S3 endpoint
// takes replicas: SigV4-authenticated PutObject and DeleteObject with the
// replica headers, through the same functions package s3 calls.
type target struct {
	r        *region
	srv      *httptest.Server
	addr     string
	verifier *sigv4.Verifier
	ak, sk   string

	mu      sync.Mutex
	down    bool              // answer 503
	payload map[string]string // key → x-amz-content-sha256 of its last PUT
	puts    atomic.Int64
}

func newTarget(t testing.TB, r *region) *target {
	t.Helper()
	tg := &target{r: r, ak: "TARGETKEY", sk: "target-secret-" + r.name}
	tg.verifier = &sigv4.Verifier{Lookup: func(ak string) (string, bool) {
		if ak == tg.ak {
			return tg.sk, true
		}
		return "", false
	}}
	tg.srv = httptest.NewUnstartedServer(tg)
	tg.srv.StartTLS()
	tg.addr = tg.srv.Listener.Addr().String()
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) ca() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tg.srv.Certificate().Raw}))
}

func (tg *target) endpoint() string { return "https://" + tg.addr }

func (tg *target) setDown(down bool) {
	tg.mu.Lock()
	tg.down = down
	tg.mu.Unlock()
}

// stop closes the listener: connections are refused.
func (tg *target) stop() {
	tg.srv.Listener.Close()
	tg.srv.CloseClientConnections()
}

// restart listens again on the same address.
func (tg *target) restart(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", tg.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listening again on %s: %v", tg.addr, err)
	}
	go http.Serve(tlsListener(ln, tg.srv), tg)
	t.Cleanup(func() { ln.Close() })
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tg.mu.Lock()
	down := tg.down
	tg.mu.Unlock()
	if down {
		s3err.WriteXML(w, r, s3err.ErrServiceUnavailable, "test")
		return
	}
	auth, err := tg.verifier.Verify(r)
	if err != nil {
		s3err.WriteXML(w, r, err, "test")
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	rep, isReplica, err := s3replica.Parse(r.Header, auth.SignedHeaders)
	if err != nil {
		s3err.WriteXML(w, r, s3err.ErrAccessDenied.WithMessage(err.Error()), "test")
		return
	}
	switch r.Method {
	case http.MethodPut:
		tg.mu.Lock()
		if tg.payload == nil {
			tg.payload = make(map[string]string)
		}
		tg.payload[key] = r.Header.Get("X-Amz-Content-Sha256")
		tg.mu.Unlock()
		body, err := auth.Body(r)
		if err != nil {
			s3err.WriteXML(w, r, err, "test")
			return
		}
		m := meta.ObjectMeta{
			ContentType:        r.Header.Get("Content-Type"),
			ContentEncoding:    sigv4.StripAWSChunked(r.Header.Get("Content-Encoding")),
			ContentDisposition: r.Header.Get("Content-Disposition"),
			ContentLanguage:    r.Header.Get("Content-Language"),
			CacheControl:       r.Header.Get("Cache-Control"),
			Expires:            r.Header.Get("Expires"),
		}
		for name, v := range r.Header {
			if n, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-meta-"); ok {
				if m.User == nil {
					m.User = make(map[string]string)
				}
				m.User[n] = v[0]
			}
		}
		in := &cryptostore.PutInput{Bucket: bucket, Key: key, Body: body, Size: body.ExpectedSize(), Meta: m,
			Verify: func(*cryptostore.Sums) error {
				if !body.Verified() {
					return s3err.ErrIncompleteBody
				}
				return nil
			}}
		if isReplica {
			rep.Apply(in)
		}
		_, err = tg.r.store.Put(r.Context(), in)
		switch {
		case errors.Is(err, cryptostore.ErrStaleReplica):
			w.Header().Set(s3replica.HeaderSkipped, "stale")
		case errors.Is(err, cryptostore.ErrNoSuchBucket):
			s3err.WriteXML(w, r, s3err.ErrNoSuchBucket, "test")
			return
		case err != nil:
			s3err.WriteXML(w, r, err, "test")
			return
		}
		tg.puts.Add(1)
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if isReplica {
			_, err = tg.r.store.DeleteReplica(r.Context(), bucket, key, rep.SourceTime)
		} else {
			err = tg.r.store.Delete(r.Context(), bucket, key)
		}
		if err != nil && !errors.Is(err, cryptostore.ErrNoSuchKey) {
			if errors.Is(err, cryptostore.ErrNoSuchBucket) {
				err = s3err.ErrNoSuchBucket
			}
			s3err.WriteXML(w, r, err, "test")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		s3err.WriteXML(w, r, s3err.ErrMethodNotAllowed, "test")
	}
}

// connect registers tg as src's target.
func connect(t testing.TB, src *region, tg *target) {
	t.Helper()
	if _, err := src.mgr.AddTarget(ctx, &TargetInput{Region: tg.r.name, Endpoint: tg.endpoint(), AccessKey: tg.ak, SecretKey: tg.sk, CA: tg.ca()}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes (a test
// deadline, not a timed assertion: the condition is what is checked).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statusOf(r *region, bucket, key string) string {
	o, err := r.head(bucket, key)
	if err != nil {
		return "error: " + err.Error()
	}
	return o.ReplicationStatus
}

func tlsListener(ln net.Listener, srv *httptest.Server) net.Listener {
	return tls.NewListener(ln, srv.TLS)
}

func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}) }
