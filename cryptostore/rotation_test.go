package cryptostore

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/kms"
)

// TestKeyRotationSchedule: a key with a rotation period is rotated once its
// current version is older than the period, and not again until the new
// version is; without a period nothing rotates.
func TestKeyRotationSchedule(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	clocked, err := kms.OpenLocal(t.TempDir(), make([]byte, kms.RootKeySize), kms.LocalOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clocked.Close() })
	e := newEnv(t, func(c *Config) { c.KMS = clocked })
	e.bucket(t, "rotating", true)
	e.bucket(t, "still", true)
	e.put(t, "rotating", "a", []byte("a"))
	e.put(t, "still", "b", []byte("b"))
	rb, _ := e.store.GetBucket(ctx, "rotating")
	sb, _ := e.store.GetBucket(ctx, "still")
	if _, err := e.store.SetKeyRotation(ctx, rb.MasterKeyID, time.Hour); !errors.Is(err, ErrKMSInvalidArgument) {
		t.Fatalf("a one-hour period: %v, want ErrKMSInvalidArgument", err)
	}
	if _, err := e.store.SetKeyRotation(ctx, rb.MasterKeyID, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if p, err := e.store.KeyRotations(ctx); err != nil || p[rb.MasterKeyID] != 30*24*time.Hour || len(p) != 1 {
		t.Fatalf("KeyRotations: %v, %v", p, err)
	}
	if got, err := e.store.RotateDue(ctx, now()); err != nil || len(got) != 0 {
		t.Fatalf("rotated a fresh key: %v, %v", got, err)
	}
	offset.Store(int64(31 * 24 * time.Hour))
	if got, err := e.store.RotateDue(ctx, now()); err != nil || len(got) != 1 || got[0] != rb.MasterKeyID {
		t.Fatalf("RotateDue after 31 days: %v, %v", got, err)
	}
	if got, err := e.store.RotateDue(ctx, now()); err != nil || len(got) != 0 {
		t.Fatalf("rotated again at once: %v, %v", got, err)
	}
	if md, _ := e.store.DescribeKey(ctx, rb.MasterKeyID); md.CurrentVersion != 2 {
		t.Fatalf("rotating key at version %d", md.CurrentVersion)
	}
	if md, _ := e.store.DescribeKey(ctx, sb.MasterKeyID); md.CurrentVersion != 1 {
		t.Fatalf("a key without a period was rotated: version %d", md.CurrentVersion)
	}
	if got := e.mustGet(t, "rotating", "a"); string(got) != "a" {
		t.Fatal("object unreadable after rotation")
	}
	if _, err := e.store.SetKeyRotation(ctx, rb.MasterKeyID, 0); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.store.KeyRotations(ctx); len(p) != 0 {
		t.Fatalf("after turning it off: %v", p)
	}
}
