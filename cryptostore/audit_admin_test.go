package cryptostore

import (
	"strings"
	"sync"
	"testing"
)

// TestAuditKeyLifecycle: the key lifecycle's administrative operations
// reach the audit hook, with the key and the outcome: a deletion scheduled
// (by kms delete, and by bucket rm --shred naming the bucket) and
// cancelled, a version retired (and a refused retirement, as failed), and
// a rewrap job's start and end with its counts.
func TestAuditKeyLifecycle(t *testing.T) {
	var mu sync.Mutex
	var uses []KeyUse
	e := newEnv(t, func(c *Config) {
		c.Audit = func(u KeyUse) { mu.Lock(); uses = append(uses, u); mu.Unlock() }
	})
	e.bucket(t, "sealed", true)
	e.put(t, "sealed", "a", []byte("alpha"))
	b, _ := e.store.GetBucket(ctx, "sealed")
	key := b.MasterKeyID
	if _, err := e.store.RotateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RetireKeyVersion(ctx, key, 1); err == nil {
		t.Fatal("retiring a version in use succeeded")
	}
	if _, err := e.store.Rewrap(ctx, RewrapOptions{Bucket: "sealed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RetireKeyVersion(ctx, key, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ScheduleKeyDeletion(ctx, key, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CancelKeyDeletion(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ScheduleDeletion(ctx, KeyDeletion{KeyID: key, Days: 7, Bucket: "sealed"}); err != nil {
		t.Fatal(err)
	}

	type line struct{ action, bucket, detail, result string }
	var got []line
	mu.Lock()
	for _, u := range uses {
		if u.Object != "" || u.Action == "kms:CreateKey" || u.Action == "kms:RotateKey" {
			continue // data keys, and what TestKeyPermission checks
		}
		if u.Action == "kms:ReWrap" && u.KeyID == "" && u.KeyARN == "" {
			// a rewrap of every key in the bucket
		} else if u.KeyID != key || !strings.HasSuffix(u.KeyARN, key) || u.Time.IsZero() {
			t.Errorf("audit record %+v: want key %s", u, key)
		}
		r := "allowed"
		if u.Err != nil {
			r = "failed"
		}
		got = append(got, line{u.Action, u.Bucket, u.Detail, r})
	}
	mu.Unlock()
	want := []line{
		{"kms:RetireKeyVersion", "", "version 1", "failed"},
		{"kms:ReWrap", "sealed", "started", "allowed"},
		{"kms:ReWrap", "sealed", "finished: 1 objects, 1 rewrapped, 0 current, 0 skipped, 0 raced, 0 failed", "allowed"},
		{"kms:RetireKeyVersion", "", "version 1", "allowed"},
		{"kms:ScheduleKeyDeletion", "", "deletion date ", "allowed"},
		{"kms:CancelKeyDeletion", "", "", "allowed"},
		{"kms:ScheduleKeyDeletion", "sealed", "deletion date ", "allowed"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit lines:\n%+v\nwant:\n%+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.action != w.action || g.bucket != w.bucket || g.result != w.result || !strings.HasPrefix(g.detail, w.detail) {
			t.Errorf("audit line %d: %+v, want %+v", i, g, w)
		}
	}
	if d := got[len(got)-1].detail; !strings.HasSuffix(d, "bucket removed with --shred") {
		t.Errorf("bucket rm --shred's line: %q", d)
	}
}
