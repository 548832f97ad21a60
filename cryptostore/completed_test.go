package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// TestCompletedMultipart: a completion is remembered, answered again for
// the same parts while its object is there, and swept after
// CompletedUploadTTL.
func TestCompletedMultipart(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "bkt", ""); err != nil {
		t.Fatal(err)
	}
	complete := func(key string) (string, []CompletePart, *meta.Object) {
		t.Helper()
		u, err := e.store.CreateMultipart(ctx, "bkt", key, meta.ObjectMeta{}, "")
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("one part")
		p, err := e.store.UploadPart(ctx, &PartInput{Bucket: "bkt", Key: key, UploadID: u.ID, Number: 1, Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		parts := []CompletePart{{Number: 1, ETag: `"` + p.ETag + `"`}}
		o, err := e.store.CompleteMultipart(ctx, "bkt", key, u.ID, parts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID, parts, o
	}
	id, parts, first := complete("m")
	// The repeat: the first completion's object (quotes or not).
	again, err := e.store.CompletedMultipart(ctx, "bkt", "m", id, []CompletePart{{Number: 1, ETag: normalizeETag(parts[0].ETag)}})
	if err != nil || again.ETag != first.ETag || again.ID != first.ID {
		t.Fatalf("CompletedMultipart = %+v, %v; want the object %s", again, err, first.ETag)
	}
	if _, err := e.store.CompleteMultipart(ctx, "bkt", "m", id, parts, nil); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("completing again: %v, want ErrNoSuchUpload (the handler then asks CompletedMultipart)", err)
	}
	for name, c := range map[string]struct {
		bucket, key string
		parts       []CompletePart
	}{
		"other parts": {"bkt", "m", []CompletePart{{Number: 2, ETag: parts[0].ETag}}},
		"other key":   {"bkt", "n", parts},
	} {
		if _, err := e.store.CompletedMultipart(ctx, c.bucket, c.key, id, c.parts); !errors.Is(err, ErrNoSuchUpload) {
			t.Errorf("%s: %v, want ErrNoSuchUpload", name, err)
		}
	}
	// Replaced: the completion's result is gone.
	if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "m", Body: bytes.NewReader([]byte("x")), Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CompletedMultipart(ctx, "bkt", "m", id, parts); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("after a replacing PUT: %v, want ErrNoSuchUpload", err)
	}
	// The sweep keeps what is recent and drops what is older than the TTL.
	id2, parts2, _ := complete("k2")
	if n, err := e.store.sweepCompleted(ctx); err != nil || n != 0 {
		t.Fatalf("sweep of recent records: %d, %v", n, err)
	}
	if err := e.store.meta.Update(ctx, func(tx *meta.Txn) error {
		c, err := tx.GetCompletedUpload(id2)
		if err != nil {
			return err
		}
		c.Completed = time.Now().Add(-CompletedUploadTTL - time.Minute)
		return tx.PutCompletedUpload(c)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CompletedMultipart(ctx, "bkt", "k2", id2, parts2); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("a completion older than the TTL: %v, want ErrNoSuchUpload", err)
	}
	if n, err := e.store.sweepCompleted(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1 (the expired record)", n, err)
	}
}
