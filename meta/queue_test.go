package meta

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestQueueItemRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		item *QueueItem
	}{
		{name: "every field", item: &QueueItem{
			Bucket:       "photos",
			Key:          "2024/a b/ü.jpg",
			Op:           QueueDelete,
			ObjectID:     ObjectID{9, 8, 7},
			VersionTime:  time.Date(2024, 5, 6, 7, 8, 9, 123, time.UTC),
			Target:       "eu-west-1",
			Enqueued:     time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC),
			Attempts:     1<<32 - 1,
			NextAttempt:  time.Date(2024, 5, 6, 7, 9, 0, 999999999, time.UTC),
			FirstFailure: time.Date(2024, 5, 6, 7, 8, 11, 0, time.UTC),
			LastError:    "connection refused",
		}},
		{name: "zero", item: &QueueItem{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got QueueItem
			if err := decodeQueueItem(encodeQueueItem(nil, tc.item), &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(&got, tc.item) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", &got, tc.item)
			}
		})
	}
}

func TestQueueItemRecordCorrupt(t *testing.T) {
	good := encodeQueueItem(nil, &QueueItem{Bucket: "b", Key: "k", Op: QueuePut})
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "wrong version", data: append([]byte{9}, good[1:]...)},
		{name: "truncated", data: good[:len(good)-1]},
		{name: "op too large", data: appendUint([]byte{recordVersion}, queueOp, 300)},
		{name: "duplicate bucket", data: appendString(appendString([]byte{recordVersion}, queueBucket, "a"), queueBucket, "b")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var it QueueItem
			if err := decodeQueueItem(tc.data, &it); !errors.Is(err, ErrCorruptRecord) {
				t.Fatalf("decode: want ErrCorruptRecord, have %v", err)
			}
		})
	}
}

func TestObjectUnknownTagSkipped(t *testing.T) {
	// A later version may add tags: an object record with a tag this
	// version does not know still decodes, the field ignored.
	o := &Object{ID: ObjectID{1}, ReplicationStatus: "REPLICA", ReplicaSourceModified: time.Unix(1700000000, 5).UTC(), FormatVersion: FormatVersion}
	data := appendString(encodeObject(nil, o), 99, "from the future")
	var got Object
	if err := decodeObject(data, &got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(&got, o) {
		t.Fatalf("got %+v, want %+v", &got, o)
	}
	if !got.VersionTime().Equal(o.ReplicaSourceModified) {
		t.Fatalf("VersionTime of a replica: got %v, want the source's %v", got.VersionTime(), o.ReplicaSourceModified)
	}
	plain := &Object{LastModified: time.Unix(5, 0)}
	if !plain.VersionTime().Equal(plain.LastModified) {
		t.Fatalf("VersionTime of a non-replica: got %v, want LastModified", plain.VersionTime())
	}
}

// enqueue queues a put of bucket/key with the next number of seq.
func enqueue(t *testing.T, db *DB, seq *Sequence, bucket, key string, enqueued time.Time) uint64 {
	t.Helper()
	n, err := seq.Next()
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, func(tx *Txn) error {
		_, err := tx.Enqueue(&QueueItem{Seq: n, Bucket: bucket, Key: key, Op: QueuePut, Enqueued: enqueued})
		return err
	})
	return n
}

func queued(t *testing.T, db *DB) []*QueueItem {
	t.Helper()
	var out []*QueueItem
	view(t, db, func(tx *Txn) error {
		return tx.ScanQueue(0, func(it *QueueItem) (bool, error) {
			out = append(out, it)
			return true, nil
		})
	})
	return out
}

func queuedKeys(items []*QueueItem) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Bucket+"/"+it.Key)
	}
	return keys
}

func TestQueueFIFOAndReplace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		seq, err := db.NewSequence("queue", 3) // small leases: cross a few
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		var seqs []uint64
		for i, k := range []string{"a", "b", "c", "d", "e"} {
			seqs = append(seqs, enqueue(t, db, seq, "bkt", k, t0.Add(time.Duration(i)*time.Second)))
		}
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Fatalf("sequence not increasing: %v", seqs)
			}
		}
		if got, want := queuedKeys(queued(t, db)), []string{"bkt/a", "bkt/b", "bkt/c", "bkt/d", "bkt/e"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("queue order: got %v, want %v", got, want)
		}

		// b changes again: its item moves to the back, keeping its first
		// enqueue time; the replaced item is returned.
		n, _ := seq.Next()
		update(t, db, func(tx *Txn) error {
			prev, err := tx.Enqueue(&QueueItem{Seq: n, Bucket: "bkt", Key: "b", Op: QueueDelete, Enqueued: t0.Add(time.Hour)})
			if err != nil {
				return err
			}
			if prev == nil || prev.Seq != seqs[1] {
				t.Errorf("replaced: got %+v, want item %d", prev, seqs[1])
			}
			return nil
		})
		items := queued(t, db)
		if got, want := queuedKeys(items), []string{"bkt/a", "bkt/c", "bkt/d", "bkt/e", "bkt/b"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("queue order after replace: got %v, want %v", got, want)
		}
		last := items[len(items)-1]
		if last.Op != QueueDelete || !last.Enqueued.Equal(t0.Add(time.Second)) {
			t.Fatalf("replacing item: got op %v enqueued %v, want delete enqueued %v", last.Op, last.Enqueued, t0.Add(time.Second))
		}

		// Dequeue of the replaced item finds nothing and leaves b's index.
		update(t, db, func(tx *Txn) error {
			ok, err := tx.Dequeue(seqs[1])
			if err != nil || ok {
				t.Errorf("dequeue replaced: got %v, %v; want false, nil", ok, err)
			}
			it, err := tx.QueuedItem("bkt", "b")
			if err != nil || it.Seq != n {
				t.Errorf("QueuedItem(b): got %+v, %v; want seq %d", it, err, n)
			}
			return nil
		})
		// Dequeue of the current one removes item and index.
		update(t, db, func(tx *Txn) error {
			ok, err := tx.Dequeue(n)
			if err != nil || !ok {
				t.Errorf("dequeue: got %v, %v; want true, nil", ok, err)
			}
			if _, err := tx.QueuedItem("bkt", "b"); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("QueuedItem(b) after dequeue: want ErrNoSuchKey, have %v", err)
			}
			return nil
		})

		// ScanQueue from a seq starts there.
		var from []string
		view(t, db, func(tx *Txn) error {
			return tx.ScanQueue(seqs[3], func(it *QueueItem) (bool, error) {
				from = append(from, it.Key)
				return true, nil
			})
		})
		if want := []string{"d", "e"}; !reflect.DeepEqual(from, want) {
			t.Fatalf("ScanQueue(%d): got %v, want %v", seqs[3], from, want)
		}
	})
}

func TestQueueUpdateItem(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		seq, err := db.NewSequence("queue", 0)
		if err != nil {
			t.Fatal(err)
		}
		n := enqueue(t, db, seq, "bkt", "k", time.Time{})
		next := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		update(t, db, func(tx *Txn) error {
			it, err := tx.QueueItem(n)
			if err != nil {
				return err
			}
			it.Attempts, it.NextAttempt, it.LastError = 3, next, "503 SlowDown"
			return tx.UpdateQueueItem(it)
		})
		view(t, db, func(tx *Txn) error {
			it, err := tx.QueuedItem("bkt", "k")
			if err != nil {
				return err
			}
			if it.Attempts != 3 || !it.NextAttempt.Equal(next) || it.LastError != "503 SlowDown" {
				t.Errorf("after update: %+v", it)
			}
			return nil
		})
		update(t, db, func(tx *Txn) error {
			_, err := tx.Dequeue(n)
			return err
		})
		err = db.Update(context.Background(), func(tx *Txn) error {
			return tx.UpdateQueueItem(&QueueItem{Seq: n, Bucket: "bkt", Key: "k"})
		})
		if !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("update of a dequeued item: want ErrNoSuchKey, have %v", err)
		}
	})
}

func TestQueueAbortedTransactionLeavesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		boom := errors.New("commit refused")
		err := db.Update(context.Background(), func(tx *Txn) error {
			if _, err := tx.Enqueue(&QueueItem{Seq: 7, Bucket: "bkt", Key: "k", Op: QueuePut}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("update: %v", err)
		}
		if items := queued(t, db); len(items) != 0 {
			t.Fatalf("queue after an aborted transaction: %v", queuedKeys(items))
		}
	})
}

func TestQueueEnqueueChecks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		tests := []struct {
			name string
			item QueueItem
			want error
		}{
			{name: "bad bucket", item: QueueItem{Seq: 1, Bucket: "A!", Key: "k"}, want: ErrInvalidBucketName},
			{name: "bad key", item: QueueItem{Seq: 1, Bucket: "bkt", Key: "a\x00b"}, want: ErrInvalidKey},
			{name: "no seq", item: QueueItem{Bucket: "bkt", Key: "k"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := db.Update(context.Background(), func(tx *Txn) error {
					_, err := tx.Enqueue(&tc.item)
					return err
				})
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("want %v, have %v", tc.want, err)
				}
			})
		}
	})
}

func TestQueuePersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := db.NewSequence("queue", 100)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, k := range []string{"x", "y", "z"} {
		last = enqueue(t, db, seq, "bkt", k, time.Time{})
	}
	// No Release: as after a crash, the rest of the lease is lost.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, dir)
	if got, want := queuedKeys(queued(t, db)), []string{"bkt/x", "bkt/y", "bkt/z"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("queue after reopen: got %v, want %v", got, want)
	}
	seq, err = db.NewSequence("queue", 100)
	if err != nil {
		t.Fatal(err)
	}
	n := enqueue(t, db, seq, "bkt", "x", time.Time{})
	if n <= last {
		t.Fatalf("sequence after reopen: got %d, want more than %d", n, last)
	}
	if got, want := queuedKeys(queued(t, db)), []string{"bkt/y", "bkt/z", "bkt/x"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("queue after re-enqueue: got %v, want %v", got, want)
	}
	if err := seq.Release(); err != nil {
		t.Fatal(err)
	}
}
