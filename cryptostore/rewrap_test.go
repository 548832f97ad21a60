package cryptostore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/sealfs/sealfs/kms"
)

// blobDigest is a digest of every blob file's name and bytes: what a
// rewrap must not change.
func blobDigest(t *testing.T, dir string) [32]byte {
	t.Helper()
	h := sha256.New()
	for _, p := range blobFilesIn(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
	}
	return [32]byte(h.Sum(nil))
}

func (e *testEnv) keyVersions(t *testing.T) map[string]map[uint32]int64 {
	t.Helper()
	use, err := e.store.KeyVersionUse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return use
}

// TestRewrap: objects wrapped by an old version are wrapped again by the
// current one, no blob is touched, every object reads back, plain objects
// and current ones are left alone, and a second run has nothing to do.
func TestRewrap(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "sealed", true)
	e.bucket(t, "plain", false)
	want := map[string][]byte{}
	for i := range 20 {
		key := fmt.Sprintf("k%03d", i)
		want[key] = randBytes(100 + i*3000) // inline and blob objects
		e.put(t, "sealed", key, want[key])
	}
	e.put(t, "plain", "p", []byte("plain"))
	b, _ := e.store.GetBucket(ctx, "sealed")
	if _, err := e.store.RotateKey(ctx, b.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	want["new"] = randBytes(5000)
	e.put(t, "sealed", "new", want["new"])
	if use := e.keyVersions(t)[b.MasterKeyID]; use[1] != 20 || use[2] != 1 {
		t.Fatalf("versions in use before: %v", use)
	}
	before := blobDigest(t, e.dir)
	var calls atomic.Int64
	rep, err := e.store.Rewrap(ctx, RewrapOptions{Progress: func(RewrapReport) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Objects != 22 || rep.Rewrapped != 20 || rep.Current != 1 || rep.Skipped != 1 || rep.Raced != 0 || len(rep.Failed) != 0 || !rep.Finished || calls.Load() != 22 {
		t.Fatalf("report %+v (progress calls %d)", rep, calls.Load())
	}
	if blobDigest(t, e.dir) != before {
		t.Fatal("rewrap changed a blob")
	}
	if use := e.keyVersions(t)[b.MasterKeyID]; use[1] != 0 || use[2] != 21 {
		t.Fatalf("versions in use after: %v", use)
	}
	for key, data := range want {
		if got := e.mustGet(t, "sealed", key); !bytes.Equal(got, data) {
			t.Fatalf("%s reads back wrong after rewrap", key)
		}
	}
	rep, err = e.store.Rewrap(ctx, RewrapOptions{Bucket: "sealed", KeyID: b.MasterKeyID})
	if err != nil || rep.Rewrapped != 0 || rep.Current != 21 || rep.ResumedAt != "" {
		t.Fatalf("second run: %+v, %v", rep, err)
	}
}

// TestRewrapResume: a rewrap stopped half way continues where it stopped;
// together the two runs re-wrap every object once.
func TestRewrapResume(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "aaa", true)
	e.bucket(t, "bbb", true)
	for _, bucket := range []string{"aaa", "bbb"} {
		for i := range 300 {
			e.put(t, bucket, fmt.Sprintf("k%04d", i), []byte(bucket+fmt.Sprint(i)))
		}
		bk, _ := e.store.GetBucket(ctx, bucket)
		if _, err := e.store.RotateKey(ctx, bk.MasterKeyID); err != nil {
			t.Fatal(err)
		}
	}
	stop, cancel := context.WithCancel(ctx)
	rep1, err := e.store.Rewrap(stop, RewrapOptions{Progress: func(r RewrapReport) {
		if r.Objects == 400 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || rep1.Finished {
		t.Fatalf("first run: %+v, %v", rep1, err)
	}
	rep2, err := e.store.Rewrap(ctx, RewrapOptions{})
	if err != nil || !rep2.Finished || rep2.ResumedAt != "bbb/k0099" {
		t.Fatalf("second run: %+v, %v", rep2, err)
	}
	if rep1.Rewrapped != 400 || rep2.Rewrapped != 200 || rep2.Current != 0 || rep2.Objects != 200 {
		t.Fatalf("runs re-wrapped %d + %d (second: %+v), want 400 + 200", rep1.Rewrapped, rep2.Rewrapped, rep2)
	}
	for k, use := range e.keyVersions(t) {
		if use[1] != 0 {
			t.Fatalf("key %s: %d objects still under version 1", k, use[1])
		}
	}
	// Finished: the next run starts afresh.
	rep3, err := e.store.Rewrap(ctx, RewrapOptions{})
	if err != nil || rep3.ResumedAt != "" || rep3.Current != 600 {
		t.Fatalf("third run: %+v, %v", rep3, err)
	}
}

// raceKMS overwrites an object (through the store) in the middle of its
// ReWrap: between the rewrap's read of the record and its compare-and-swap.
type raceKMS struct {
	kms.KMS
	hook func(req *kms.ReWrapRequest)
}

func (k *raceKMS) ReWrap(ctx context.Context, req *kms.ReWrapRequest) (*kms.ReWrapped, error) {
	if k.hook != nil {
		k.hook(req)
	}
	return k.KMS.ReWrap(ctx, req)
}

// TestRewrapConcurrentWriter: an object overwritten while its data key is
// being re-wrapped keeps the newer version; the rewrap counts it as raced.
func TestRewrapConcurrentWriter(t *testing.T) {
	rk := &raceKMS{}
	e := newEnv(t, func(c *Config) { rk.KMS = c.KMS; c.KMS = rk })
	e.bucket(t, "www", true)
	for i := range 10 {
		e.put(t, "www", fmt.Sprintf("k%d", i), []byte("old"))
	}
	bk, _ := e.store.GetBucket(ctx, "www")
	if _, err := e.store.RotateKey(ctx, bk.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	n := 0
	rk.hook = func(*kms.ReWrapRequest) {
		n++
		if n%3 == 0 {
			e.put(t, "www", fmt.Sprintf("k%d", n-1), []byte("newer"))
		}
	}
	rep, err := e.store.Rewrap(ctx, RewrapOptions{Bucket: "www"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Raced != 3 || rep.Rewrapped != 7 {
		t.Fatalf("report %+v, want 3 raced and 7 re-wrapped", rep)
	}
	for i := range 10 {
		want := "old"
		if (i+1)%3 == 0 {
			want = "newer"
		}
		if got := e.mustGet(t, "www", fmt.Sprintf("k%d", i)); string(got) != want {
			t.Fatalf("k%d = %q, want %q", i, got, want)
		}
	}
}

// TestRetireKeyVersion: a version still used by an object is not retired;
// once rewrap has moved every object on, it is, and every object still
// reads; the system key's versions are never retired.
func TestRetireKeyVersion(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "ret", true)
	e.put(t, "ret", "a", []byte("alpha"))
	b, _ := e.store.GetBucket(ctx, "ret")
	if _, err := e.store.RotateKey(ctx, b.MasterKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RetireKeyVersion(ctx, b.MasterKeyID, 1); !errors.Is(err, ErrKeyVersionInUse) {
		t.Fatalf("retiring a version in use: %v, want ErrKeyVersionInUse", err)
	}
	if _, err := e.store.Rewrap(ctx, RewrapOptions{KeyID: b.MasterKeyID}); err != nil {
		t.Fatal(err)
	}
	md, err := e.store.RetireKeyVersion(ctx, b.MasterKeyID, 1)
	if err != nil || len(md.RetiredVersions) != 1 {
		t.Fatalf("RetireKeyVersion: %+v, %v", md, err)
	}
	if got := e.mustGet(t, "ret", "a"); string(got) != "alpha" {
		t.Fatalf("read %q after retiring", got)
	}
	sys, err := e.store.SystemKeyID(ctx)
	if err != nil || sys == "" {
		t.Fatalf("system key %q, %v", sys, err)
	}
	if _, err := e.store.RetireKeyVersion(ctx, sys, 1); !errors.Is(err, ErrSystemKey) {
		t.Fatalf("retiring a system key version: %v, want ErrSystemKey", err)
	}
}
