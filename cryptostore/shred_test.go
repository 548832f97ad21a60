package cryptostore

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/kms"
)

// TestShred: a key scheduled for deletion makes its objects unreadable at
// once and can be brought back until the deletion date; after it, its
// objects answer ErrKMSKeyNotFound and Scrub reports them as shredded, not
// as damaged; the system key cannot be scheduled for deletion.
func TestShred(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	root := make([]byte, kms.RootKeySize)
	clocked, err := kms.OpenLocal(t.TempDir(), root, kms.LocalOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clocked.Close() })
	e := newEnv(t, func(c *Config) { c.KMS = clocked })
	e.bucket(t, "doomed", true)
	e.bucket(t, "kept", true)
	e.put(t, "doomed", "a", []byte("alpha"))
	e.put(t, "kept", "b", []byte("beta"))
	b, _ := e.store.GetBucket(ctx, "doomed")

	md, err := e.store.ScheduleKeyDeletion(ctx, b.MasterKeyID, 7)
	if err != nil || md.State != KeyPendingDeletion {
		t.Fatalf("ScheduleKeyDeletion: %+v, %v", md, err)
	}
	if _, err := e.get(t, "doomed", "a"); !errors.Is(err, ErrKeyDisabled) || !errors.Is(err, ErrKMSKeyPendingDeletion) {
		t.Fatalf("read pending deletion: %v", err)
	}
	if md, err := e.store.CancelKeyDeletion(ctx, b.MasterKeyID); err != nil || md.State != KeyDisabled {
		t.Fatalf("CancelKeyDeletion: %+v, %v", md, err)
	}
	if err := e.store.EnableKey(ctx, b.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	if got := e.mustGet(t, "doomed", "a"); string(got) != "alpha" {
		t.Fatalf("after cancel: %q", got)
	}

	if _, err := e.store.ScheduleKeyDeletion(ctx, b.MasterKeyID, 7); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(7*24*time.Hour + time.Minute))
	if _, err := e.get(t, "doomed", "a"); !errors.Is(err, ErrKeyDisabled) || !errors.Is(err, ErrKMSKeyNotFound) {
		t.Fatalf("read after the deletion date: %v, want the key not found", err)
	}
	if _, err := e.store.CancelKeyDeletion(ctx, b.MasterKeyID); !errors.Is(err, ErrKMSKeyNotFound) {
		t.Fatalf("cancel after the deletion date: %v", err)
	}
	rep, err := e.store.Scrub(ctx, ScrubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Shredded) != 1 || rep.Shredded[0].Key != "a" || len(rep.Damaged) != 0 {
		t.Fatalf("scrub: shredded %v, damaged %v", rep.Shredded, rep.Damaged)
	}
	if got := e.mustGet(t, "kept", "b"); string(got) != "beta" {
		t.Fatalf("another bucket: %q", got)
	}
	sys, _ := e.store.SystemKeyID(ctx)
	if _, err := e.store.ScheduleKeyDeletion(ctx, sys, 7); !errors.Is(err, ErrSystemKey) {
		t.Fatalf("scheduling the system key's deletion: %v, want ErrSystemKey", err)
	}
}
