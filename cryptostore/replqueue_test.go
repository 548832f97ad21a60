package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// TestReplicationQueueRecordsLeasesSecrets: the queue's records live under
// replicate/ and nowhere else, missing ones say ErrNoSuchRecord; a lease is
// held by one owner until released; a secret sealed under the system key
// (the store's record-authentication key's wrapper) opens only with its
// purpose and is not stored in clear.
func TestReplicationQueueRecordsLeasesSecrets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	q, err := NewReplicationQueue(e.db, e.kms, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	if _, err := q.Record(ctx, "target/eu-west-1"); !errors.Is(err, ErrNoSuchRecord) {
		t.Fatalf("missing record: %v", err)
	}
	if err := q.PutRecord(ctx, "target/eu-west-1", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := q.PutRecord(ctx, "other", []byte("two")); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := e.db.View(ctx, func(tx *meta.Txn) error {
		var err error
		raw, err = tx.GetConfig("replicate/target/eu-west-1")
		return err
	}); err != nil || string(raw) != "one" {
		t.Fatalf("stored name: %q, %v", raw, err)
	}
	var names []string
	if err := q.ScanRecords(ctx, "target/", func(name string, _ []byte) error {
		names = append(names, name)
		return nil
	}); err != nil || len(names) != 1 || names[0] != "target/eu-west-1" {
		t.Fatalf("ScanRecords: %v, %v", names, err)
	}
	if err := q.DeleteRecord(ctx, "target/eu-west-1"); err != nil {
		t.Fatal(err)
	}
	if err := q.DeleteRecord(ctx, "target/eu-west-1"); !errors.Is(err, ErrNoSuchRecord) {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, err := q.Record(ctx, "bad\x00name"); !errors.Is(err, ErrNoSuchRecord) {
		t.Fatalf("a name with a NUL: %v", err)
	}

	ok, err := q.TakeLease(ctx, "replicate/b\x00k", "gw-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("first take: %v, %v", ok, err)
	}
	if ok, err := q.TakeLease(ctx, "replicate/b\x00k", "gw-b", time.Minute); err != nil || ok {
		t.Fatalf("a held lease was taken by another: %v, %v", ok, err)
	}
	var held *Lease
	if err := q.View(ctx, func(tx QueueTxn) error {
		var err error
		held, err = tx.GetLease("replicate/b\x00k")
		return err
	}); err != nil || held == nil || held.Owner != "gw-a" {
		t.Fatalf("GetLease: %+v, %v", held, err)
	}
	if err := q.ReleaseLease(ctx, "replicate/b\x00k", "gw-a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.TakeLease(ctx, "replicate/b\x00k", "gw-b", time.Minute); err != nil || !ok {
		t.Fatalf("a released lease: %v, %v", ok, err)
	}

	secret := []byte("target-secret-in-clear")
	purpose := map[string]string{"sealfs": "replication-target-secret", "region": "eu-west-1"}
	keyID, sealed, err := q.SealSecret(ctx, purpose, secret)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := e.store.SystemKeyID(ctx)
	if err != nil || keyID != sys {
		t.Fatalf("sealed under %q, system key %q (%v)", keyID, sys, err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed secret holds the plaintext")
	}
	pt, err := q.OpenSecret(ctx, keyID, sealed, purpose)
	if err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("OpenSecret: %q, %v", pt, err)
	}
	wrong := map[string]string{"sealfs": "replication-target-secret", "region": "us-west-2"}
	if _, err := q.OpenSecret(ctx, keyID, sealed, wrong); err == nil {
		t.Fatal("a secret opened under another purpose")
	}
}

// TestReplicationQueueSequence: numbers increase across a reopen.
func TestReplicationQueueSequence(t *testing.T) {
	e := newEnv(t, nil)
	q, err := NewReplicationQueue(e.db, e.kms, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := q.NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q2, err := NewReplicationQueue(e.db, e.kms, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	b, err := q2.NextSeq()
	if err != nil || b <= a {
		t.Fatalf("after a reopen: %d then %d (%v)", a, b, err)
	}
}
