package cryptostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// gateway is one of two stores sharing metadata and a blob directory.
type gateway struct {
	store *Store
	mu    sync.Mutex
	seen  []ChangeEvent
}

func (g *gateway) onChange(ev ChangeEvent) {
	g.mu.Lock()
	g.seen = append(g.seen, ev)
	g.mu.Unlock()
}

func (g *gateway) events() []ChangeEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ChangeEvent(nil), g.seen...)
}

// twoGateways opens two stores (each its own Dir) over the metadata at
// urls[0] and urls[1] (the same store) and one shared blob directory, with
// a short grace. One KMS serves both (the keyring is shared in
// production too).
func twoGateways(t *testing.T, urls [2]string, forceShared bool) (a, b *gateway, blobDir string) {
	t.Helper()
	gs, blobDir := gateways(t, urls[:], forceShared)
	return gs[0], gs[1], blobDir
}

// gateways opens a store per URL (each its own Dir), as twoGateways does.
func gateways(t *testing.T, urls []string, forceShared bool) (gs []*gateway, blobDir string) {
	t.Helper()
	root := make([]byte, 32)
	rand.Read(root)
	base := t.TempDir()
	k, err := kms.OpenLocal(filepath.Join(base, "kms"), root, kms.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	blobDir = filepath.Join(base, "shared-blobs")
	gs = make([]*gateway, len(urls))
	var db *meta.DB
	for i := range gs {
		if i == 0 || !forceShared { // Badger: one DB, used by both
			var err error
			if db, err = meta.Open(urls[i], meta.Options{}); err != nil {
				t.Fatal(err)
			}
			d := db
			t.Cleanup(func() { d.Close() })
		}
		g := &gateway{}
		s, err := Open(context.Background(), Config{
			Dir: filepath.Join(base, "gw"+string(rune('a'+i))), BlobDir: blobDir,
			Meta: db, KMS: k, OnChange: g.onChange,
			SharedGrace: 400 * time.Millisecond, CollectInterval: -1,
			testShared: forceShared,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		g.store = s
		gs[i] = g
	}
	return gs, blobDir
}

// openSharedBadger opens one Badger store that both gateways use (one
// process), forced into the shared mode.
func sharedBadgerURLs(t *testing.T) [2]string {
	u := "badger://" + t.TempDir()
	return [2]string{u, u}
}

// sharedPostgresURLs returns a fresh PostgreSQL store's URL twice.
func sharedPostgresURLs(t *testing.T) [2]string {
	t.Helper()
	u := enginetest.ByName("postgres").URL(t)
	return [2]string{u, u}
}

func TestMain(m *testing.M) {
	code := m.Run()
	stopTestS3()
	enginetest.Stop()
	os.Exit(code)
}

// forEachSharedSetup runs fn over two gateways on one Badger store (one
// process, forced shared) and on PostgreSQL (two connections, the real
// change feed).
func forEachSharedSetup(t *testing.T, fn func(t *testing.T, a, b *gateway, blobDir string)) {
	t.Run("badger", func(t *testing.T) {
		a, b, dir := twoGateways(t, sharedBadgerURLs(t), true)
		fn(t, a, b, dir)
	})
	t.Run("postgres", func(t *testing.T) {
		a, b, dir := twoGateways(t, sharedPostgresURLs(t), false)
		fn(t, a, b, dir)
	})
}

// A blob replaced on gateway A while gateway B has the old version open
// stays until B lets go: B reads the old version whole, long after the
// grace period; once B closes it, the old blob goes.
func TestSharedReplacedBlobOutlivesOtherGatewaysReader(t *testing.T) {
	forEachSharedSetup(t, func(t *testing.T, a, b *gateway, blobDir string) {
		if err := a.store.CreateBucket(ctx, "bkt", ""); err != nil {
			t.Fatal(err)
		}
		if err := a.store.SetBucketEncryption(ctx, "bkt", true); err != nil {
			t.Fatal(err)
		}
		old, new := randBytes(1<<20), randBytes(1<<20)
		put := func(g *gateway, data []byte) {
			if _, err := g.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
		}
		put(a, old)
		h, err := b.store.Open(ctx, "bkt", "k")
		if err != nil {
			t.Fatal(err)
		}
		put(a, new) // replaces the blob B has open (not yet read)
		time.Sleep(5 * 400 * time.Millisecond)
		got, err := io.ReadAll(h.Reader(0, h.Size()))
		if err != nil {
			t.Fatalf("B reading the replaced version: %v", err)
		}
		if !bytes.Equal(got, old) {
			t.Fatal("B read something else than the version it opened")
		}
		h.Close()
		if got := getAll(t, b.store, "bkt", "k"); !bytes.Equal(got, new) {
			t.Fatal("B does not read the new version")
		}
		// The old blob goes once B's pin is dropped or expired.
		deadline := time.Now().Add(10 * time.Second)
		for n := countBlobs(t, blobDir); n != 1; n = countBlobs(t, blobDir) {
			if time.Now().After(deadline) {
				t.Fatalf("%d blobs left, want 1 (the replaced one was not removed)", n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func getAll(t *testing.T, s *Store, bucket, key string) []byte {
	t.Helper()
	h, err := s.Open(ctx, bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	b, err := io.ReadAll(h.Reader(0, h.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countBlobs(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".tmp" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.Size() > 0 { // not a file made ahead (blobpool.go)
				n++
			}
		}
		return nil
	})
	return n
}

// The orphan collector of one gateway leaves alone the blob another
// gateway has written and not committed yet (staged), and a doomed blob
// still in its grace period.
func TestSharedCollectorKeepsOtherGatewaysBlobs(t *testing.T) {
	a, b, blobDir := twoGateways(t, sharedBadgerURLs(t), true)
	if err := a.store.CreateBucket(ctx, "bkt", ""); err != nil {
		t.Fatal(err)
	}
	data := randBytes(256 << 10)
	st, err := a.store.Stage(ctx, &PutInput{Bucket: "bkt", Key: "staged", Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if n := countBlobs(t, blobDir); n != 1 {
		t.Fatalf("%d blobs after staging, want 1", n)
	}
	if _, err := b.store.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countBlobs(t, blobDir); n != 1 {
		t.Fatal("B's collector removed A's staged blob")
	}
	if _, err := st.Commit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := getAll(t, b.store, "bkt", "staged"); !bytes.Equal(got, data) {
		t.Fatal("B reads something else")
	}
}

// On PostgreSQL the change feed brings A's commits to B's OnChange, at
// once, and A's own commits are not echoed back to A.
func TestSharedChangeFeed(t *testing.T) {
	a, b, _ := twoGateways(t, sharedPostgresURLs(t), false)
	if !a.store.Shared() {
		t.Fatal("a store over PostgreSQL is not shared")
	}
	if err := a.store.CreateBucket(ctx, "bkt", ""); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data := []byte("hello")
	if _, err := a.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "d/k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	want := ChangeEvent{Kind: ChangePut, Bucket: "bkt", Key: "d/k"}
	for {
		if slicesContains(b.events(), want) {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("B's events after 1s: %v, want %v", b.events(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A's put reached B's OnChange after %v", time.Since(start))
	time.Sleep(300 * time.Millisecond) // room for an echo to arrive
	n := 0
	for _, ev := range a.events() {
		if ev == want {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("A saw its own put %d times, want once (no echo): %v", n, a.events())
	}
}

func slicesContains(evs []ChangeEvent, want ChangeEvent) bool {
	for _, ev := range evs {
		if ev == want {
			return true
		}
	}
	return false
}

// Parts of one upload arrive at different gateways and a third completes
// it, on each shared engine: the object is whole through every gateway, in
// an encrypting bucket, and the parts' blobs became the object's.
func TestSharedMultipartAcrossGateways(t *testing.T) {
	for _, name := range []string{"postgres", "etcd"} {
		t.Run(name, func(t *testing.T) {
			u := enginetest.ByName(name).URL(t)
			gs, blobDir := gateways(t, []string{u, u, u}, false)
			a, b, c := gs[0].store, gs[1].store, gs[2].store
			if err := a.CreateBucket(ctx, "bkt", ""); err != nil {
				t.Fatal(err)
			}
			if err := b.SetBucketEncryption(ctx, "bkt", true); err != nil {
				t.Fatal(err)
			}
			up, err := a.CreateMultipart(ctx, "bkt", "m", meta.ObjectMeta{}, "")
			if err != nil {
				t.Fatal(err)
			}
			var whole []byte
			var parts []CompletePart
			for i, s := range []*Store{a, b, a, b} {
				data := make([]byte, 5<<20+i)
				rand.Read(data)
				p, err := s.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: "m", UploadID: up.ID, Number: int32(i + 1), Body: bytes.NewReader(data), Size: int64(len(data))})
				if err != nil {
					t.Fatalf("part %d: %v", i+1, err)
				}
				whole = append(whole, data...)
				parts = append(parts, CompletePart{Number: int32(i + 1), ETag: p.ETag})
			}
			obj, err := c.CompleteMultipart(ctx, "bkt", "m", up.ID, parts, nil)
			if err != nil {
				t.Fatalf("Complete on a third gateway: %v", err)
			}
			if obj.Encryption == nil || len(obj.Blobs) != len(parts) {
				t.Fatalf("completed object: encrypted %v, %d blobs; want encrypted, the %d parts' blobs", obj.Encryption != nil, len(obj.Blobs), len(parts))
			}
			for i, s := range []*Store{a, b, c} {
				if got := getAll(t, s, "bkt", "m"); !bytes.Equal(got, whole) {
					t.Fatalf("gateway %d reads %d bytes, not the %d uploaded", i, len(got), len(whole))
				}
			}
			if n := countBlobs(t, blobDir); n != len(parts) {
				t.Fatalf("%d blob files, want the %d parts' (no copy)", n, len(parts))
			}
		})
	}
}
