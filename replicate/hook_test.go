package replicate

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/meta"
)

// hookRegion is a region whose manager has the store but runs no workers,
// with bucket "src" replicating keys under "r/" to eu-west-1/dst.
func hookRegion(t *testing.T, deletes bool) *region {
	t.Helper()
	r := newRegion(t, "us-east-1", nil)
	r.mgr.store.Store(r.store) // no Start: nothing is sent
	r.bucket(t, "src", false)
	if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: "https://127.0.0.1:1", AccessKey: "a", SecretKey: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst", Prefix: "r/", Deletes: deletes}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHookQueuesMatchingCommits(t *testing.T) {
	r := hookRegion(t, false)
	o := r.put(t, "src", "r/a", []byte("a"), meta.ObjectMeta{})
	r.put(t, "src", "other", []byte("b"), meta.ObjectMeta{})
	if got := statusOf(r, "src", "r/a"); got != cryptostore.ReplicationPending {
		t.Fatalf("status of a matching object: %q, want PENDING", got)
	}
	if got := statusOf(r, "src", "other"); got != "" {
		t.Fatalf("status of an object no rule matches: %q", got)
	}
	q := r.queue(t)
	if len(q) != 1 {
		t.Fatalf("queue: %d items, want 1", len(q))
	}
	it := q[0]
	if it.Bucket != "src" || it.Key != "r/a" || it.Op != meta.QueuePut || it.ObjectID != o.ID || it.Target != "eu-west-1" ||
		!it.VersionTime.Equal(o.LastModified) || it.Enqueued.IsZero() {
		t.Fatalf("queued item: %+v (object %s, modified %v)", it, o.ID, o.LastModified)
	}

	// Overwrites replace the key's item: one item, the newest version.
	r.put(t, "src", "r/a", []byte("a2"), meta.ObjectMeta{})
	o3 := r.put(t, "src", "r/a", []byte("a3"), meta.ObjectMeta{})
	q = r.queue(t)
	if len(q) != 1 || q[0].ObjectID != o3.ID || !q[0].Enqueued.Equal(it.Enqueued) {
		t.Fatalf("after overwrites: %+v, want one item for %s enqueued at %v", q, o3.ID, it.Enqueued)
	}

	// Metadata changes and multipart/copy go through the same commit.
	r.put(t, "src", "r/b", []byte("b"), meta.ObjectMeta{})
	if _, err := r.store.SetReplicationStatus(ctx, &cryptostore.StatusUpdate{Bucket: "src", Key: "r/b", ID: mustHead(t, r, "src", "r/b").ID, Status: cryptostore.ReplicationCompleted}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.UpdateMeta(ctx, "src", "r/b", func(m *meta.ObjectMeta) error {
		m.User = map[string]string{"mode": "33188"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(r, "src", "r/b"); got != cryptostore.ReplicationPending {
		t.Fatalf("status after a metadata change: %q, want PENDING", got)
	}
	if _, err := r.store.Copy(ctx, &cryptostore.CopyInput{SrcBucket: "src", SrcKey: "other", DstBucket: "src", DstKey: "r/copy"}); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(r, "src", "r/copy"); got != cryptostore.ReplicationPending {
		t.Fatalf("status of a copy: %q, want PENDING", got)
	}
	up, err := r.store.CreateMultipart(ctx, "src", "r/multi", meta.ObjectMeta{}, "")
	if err != nil {
		t.Fatal(err)
	}
	part, err := r.store.UploadPart(ctx, &cryptostore.PartInput{Bucket: "src", Key: "r/multi", UploadID: up.ID, Number: 1, Body: strings.NewReader("part"), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.CompleteMultipart(ctx, "src", "r/multi", up.ID, []cryptostore.CompletePart{{Number: 1, ETag: part.ETag}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := statusOf(r, "src", "r/multi"); got != cryptostore.ReplicationPending {
		t.Fatalf("status of a completed multipart upload: %q, want PENDING", got)
	}
	if got := len(r.queue(t)); got != 4 {
		t.Fatalf("queue: %d items, want 4 (r/a, r/b, r/copy, r/multi)", got)
	}
}

func mustHead(t *testing.T, r *region, bucket, key string) *meta.Object {
	t.Helper()
	o, err := r.head(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestHookSkipsReplicas(t *testing.T) {
	r := hookRegion(t, true)
	_, err := r.store.Put(ctx, &cryptostore.PutInput{Bucket: "src", Key: "r/replica", Body: strings.NewReader("x"), Size: 1,
		ReplicationStatus: cryptostore.ReplicationReplica})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusOf(r, "src", "r/replica"); got != cryptostore.ReplicationReplica {
		t.Fatalf("replica status: %q", got)
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("a replica was queued: %+v", q[0])
	}
	// Deleting a replica does not queue a delete either.
	if err := r.store.Delete(ctx, "src", "r/replica"); err != nil {
		t.Fatal(err)
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("the delete of a replica was queued: %+v", q[0])
	}
}

func TestHookDeletes(t *testing.T) {
	for _, deletes := range []bool{false, true} {
		r := hookRegion(t, deletes)
		r.put(t, "src", "r/a", []byte("a"), meta.ObjectMeta{})
		if err := r.store.Delete(ctx, "src", "r/a"); err != nil {
			t.Fatal(err)
		}
		q := r.queue(t)
		if !deletes {
			// The put stays queued; it will find the object gone.
			if len(q) != 1 || q[0].Op != meta.QueuePut {
				t.Fatalf("deletes off: queue %+v, want the put alone", q)
			}
			continue
		}
		if len(q) != 1 || q[0].Op != meta.QueueDelete || q[0].VersionTime.IsZero() {
			t.Fatalf("deletes on: queue %+v, want one delete with its time", q)
		}
		// A rename is a delete and a put.
		r.put(t, "src", "r/old", []byte("o"), meta.ObjectMeta{})
		if err := r.store.Rename(ctx, "src", "r/old", "r/new"); err != nil {
			t.Fatal(err)
		}
		ops := map[string]meta.QueueOp{}
		for _, it := range r.queue(t) {
			ops[it.Key] = it.Op
		}
		if ops["r/old"] != meta.QueueDelete || ops["r/new"] != meta.QueuePut {
			t.Fatalf("rename: queued %v", ops)
		}
		if got := statusOf(r, "src", "r/new"); got != cryptostore.ReplicationPending {
			t.Fatalf("renamed object's status: %q", got)
		}
	}
}

// TestHookSameTransaction: the item is written in the commit's own
// transaction, so a commit that fails after the hook leaves no item, and
// one that succeeds always has its item.
func TestHookSameTransaction(t *testing.T) {
	r := newRegion(t, "us-east-1", nil)
	r.mgr.store.Store(r.store)
	// A second store over the same database whose hook fails after
	// replication's has queued.
	boom := errors.New("refused after the hook")
	failing, err := cryptostore.Open(ctx, cryptostore.Config{Dir: r.dir, Meta: r.db, KMS: r.kms, Region: r.name, CollectInterval: -1,
		OnCommit: func(q cryptostore.CommitQueue, ev *cryptostore.CommitEvent) error {
			if err := r.mgr.OnCommit(q, ev); err != nil {
				return err
			}
			if len(r.queueIn(t, q.(cryptostore.QueueTxn))) == 0 {
				t.Error("the hook queued nothing inside the transaction")
			}
			return boom
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Close()
	r.bucket(t, "src", true)
	if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: "https://127.0.0.1:1", AccessKey: "a", SecretKey: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst"}); err != nil {
		t.Fatal(err)
	}
	_, err = failing.Put(ctx, &cryptostore.PutInput{Bucket: "src", Key: "k", Body: strings.NewReader("data"), Size: 4})
	if !errors.Is(err, boom) {
		t.Fatalf("put: %v", err)
	}
	if q := r.queue(t); len(q) != 0 {
		t.Fatalf("an aborted commit left a queue item: %+v", q[0])
	}
	if _, err := r.head("src", "k"); !errors.Is(err, cryptostore.ErrNoSuchKey) {
		t.Fatalf("an aborted commit left the object: %v", err)
	}
	r.put(t, "src", "k", []byte("data"), meta.ObjectMeta{})
	if q := r.queue(t); len(q) != 1 {
		t.Fatalf("queue after a commit: %d items", len(q))
	}
}

func (r *region) queueIn(t *testing.T, tx cryptostore.QueueTxn) []*meta.QueueItem {
	var out []*meta.QueueItem
	if err := tx.ScanQueue(0, func(it *meta.QueueItem) (bool, error) {
		out = append(out, it)
		return true, nil
	}); err != nil {
		t.Error(err)
	}
	return out
}
