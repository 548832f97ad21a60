package cryptostore

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/meta"
)

func TestSetReplicationStatus(t *testing.T) {
	var mu sync.Mutex
	var changes []ChangeEvent
	commits := 0
	e := newEnv(t, func(c *Config) {
		c.OnChange = func(ev ChangeEvent) {
			mu.Lock()
			changes = append(changes, ev)
			mu.Unlock()
		}
		c.OnCommit = func(q CommitQueue, ev *CommitEvent) error {
			commits++
			return nil
		}
	})
	e.bucket(t, "bkt", true)
	v1 := e.put(t, "bkt", "k", []byte("version one"))
	commitsBefore := commits
	mu.Lock()
	changes = nil
	mu.Unlock()

	set, err := e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "k", ID: v1.ID, Status: ReplicationCompleted})
	if err != nil || !set {
		t.Fatalf("set: %v, %v", set, err)
	}
	o, err := e.store.Head(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	if o.ReplicationStatus != ReplicationCompleted {
		t.Fatalf("status: got %q, want COMPLETED", o.ReplicationStatus)
	}
	// Metadata only: same version, same data, same encryption.
	if o.ID != v1.ID || o.ETag != v1.ETag || !bytes.Equal(o.Encryption.WrappedKey, v1.Encryption.WrappedKey) {
		t.Fatal("the status change touched the version")
	}
	if got := e.mustGet(t, "bkt", "k"); string(got) != "version one" {
		t.Fatalf("data after status change: %q", got)
	}
	if commits != commitsBefore {
		t.Fatal("a status change ran the commit hook")
	}
	mu.Lock()
	if len(changes) != 1 || changes[0] != (ChangeEvent{Kind: ChangeMeta, Bucket: "bkt", Key: "k"}) {
		t.Fatalf("changes: %+v, want one ChangeMeta", changes)
	}
	mu.Unlock()

	// Another version is there now: the status of v1 is not set on it.
	v2 := e.put(t, "bkt", "k", []byte("version two"))
	set, err = e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "k", ID: v1.ID, Status: ReplicationFailed})
	if err != nil || set {
		t.Fatalf("set on a replaced version: %v, %v; want false", set, err)
	}
	if o, _ := e.store.Head(ctx, "bkt", "k"); o.ReplicationStatus != "" {
		t.Fatalf("status of v2: %q", o.ReplicationStatus)
	}

	// InTxn runs in the transaction and can veto; its writes commit.
	sawCur := false
	set, err = e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "k", ID: v2.ID, Status: ReplicationCompleted,
		InTxn: func(tx QueueTxn, cur *Object) (bool, error) {
			sawCur = cur != nil && cur.ID == v2.ID
			_, err := tx.Enqueue(&QueueItem{Seq: 7, Bucket: "bkt", Key: "probe", Op: QueuePut})
			return false, err
		}})
	if err != nil || set || !sawCur {
		t.Fatalf("vetoed set: %v, %v (saw cur %v)", set, err, sawCur)
	}
	if err := e.db.View(ctx, func(tx *meta.Txn) error {
		_, err := tx.QueuedItem("bkt", "probe")
		return err
	}); err != nil {
		t.Fatalf("InTxn's write: %v", err)
	}
	// An InTxn error aborts everything.
	boom := errors.New("boom")
	_, err = e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "k", ID: v2.ID, Status: ReplicationCompleted,
		InTxn: func(tx QueueTxn, cur *Object) (bool, error) { return true, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("InTxn error: %v", err)
	}
	if o, _ := e.store.Head(ctx, "bkt", "k"); o.ReplicationStatus != "" {
		t.Fatalf("status after an aborted update: %q", o.ReplicationStatus)
	}

	// Missing objects, replicas and REPLICA itself are refused or skipped.
	if set, err := e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "none", ID: v2.ID, Status: ReplicationCompleted}); err != nil || set {
		t.Fatalf("missing object: %v, %v", set, err)
	}
	if _, err := e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "k", ID: v2.ID, Status: ReplicationReplica}); !errors.Is(err, ErrInvalidReplicationStatus) {
		t.Fatalf("REPLICA: want ErrInvalidReplicationStatus, have %v", err)
	}
	r, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "replica", Body: strings.NewReader("r"), Size: 1, ReplicationStatus: ReplicationReplica})
	if err != nil {
		t.Fatal(err)
	}
	if set, err := e.store.SetReplicationStatus(ctx, &StatusUpdate{Bucket: "bkt", Key: "replica", ID: r.ID, Status: ReplicationFailed}); err != nil || set {
		t.Fatalf("status on a replica: %v, %v", set, err)
	}
}

func TestPutReplicaSourceModified(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	src := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	o, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: strings.NewReader("x"), Size: 1,
		ReplicationStatus: ReplicationReplica, ReplicaSourceModified: src})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Head(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReplicaSourceModified.Equal(src) || got.ReplicationStatus != ReplicationReplica || !got.VersionTime().Equal(src) {
		t.Fatalf("stored replica: status %q source time %v (put returned %v)", got.ReplicationStatus, got.ReplicaSourceModified, o.ReplicaSourceModified)
	}
}

func TestDeleteReplica(t *testing.T) {
	e := newEnv(t, nil)
	e.bucket(t, "bkt", false)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	putReplica := func(key string, src time.Time, size int) *meta.Object {
		t.Helper()
		data := bytes.Repeat([]byte("r"), size)
		o, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: key, Body: bytes.NewReader(data), Size: int64(len(data)),
			ReplicationStatus: ReplicationReplica, ReplicaSourceModified: src})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	putReplica("old", t0, 10)
	big := putReplica("big", t0, 200<<10) // in a blob file
	putReplica("new", t0.Add(time.Hour), 10)

	tests := []struct {
		name    string
		key     string
		deleted time.Time
		want    bool
	}{
		{name: "delete newer than the replica", key: "old", deleted: t0.Add(time.Second), want: true},
		{name: "delete of a blob-backed replica", key: "big", deleted: t0.Add(time.Second), want: true},
		{name: "delete older than the replica", key: "new", deleted: t0.Add(time.Minute), want: false},
		{name: "delete at the same time", key: "new", deleted: t0.Add(time.Hour), want: false},
		{name: "nothing there", key: "none", deleted: t0.Add(time.Hour), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.store.DeleteReplica(ctx, "bkt", tc.key, tc.deleted)
			if err != nil || got != tc.want {
				t.Fatalf("DeleteReplica: got %v, %v; want %v", got, err, tc.want)
			}
			_, err = e.store.Head(ctx, "bkt", tc.key)
			if exists := err == nil; exists == tc.want && tc.key != "none" {
				t.Fatalf("after DeleteReplica(%v): object exists %v", tc.want, exists)
			}
		})
	}
	e.removeReplaced(t)
	if _, err := os.Stat(e.store.blobs.path(big.Blobs[0].ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blob of the deleted replica: %v", err)
	}
	if _, err := e.store.DeleteReplica(ctx, "nobucket", "k", t0); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}
