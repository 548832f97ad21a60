package meta

// The representative subset of the engine matrix: it runs on every engine
// in every `make test` (forEachEngineCore). The write fences (keys.go),
// conflicts retried, scans in order with seek, keys-only scans, a
// transaction's own writes, read-only transactions, and sequences shared
// by two handles.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func TestUpdateRetriesConflict(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "ctr", Region: "0"}) })

		increment := func(tx *Txn) error {
			b, err := tx.GetBucket("ctr")
			if err != nil {
				return err
			}
			var n int
			fmt.Sscan(b.Region, &n)
			b.Region = fmt.Sprint(n + 1)
			return tx.PutBucket(b)
		}
		runs := make([]int, 2)
		errs := make([]error, 2)
		var bothRead, wg sync.WaitGroup
		bothRead.Add(2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.Update(ctx, func(tx *Txn) error {
					runs[i]++
					if err := increment(tx); err != nil {
						return err
					}
					if runs[i] == 1 {
						// Both read the old value before either commits.
						bothRead.Done()
						bothRead.Wait()
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("update %d: %v", i, err)
			}
		}
		if runs[0]+runs[1] != 3 {
			t.Fatalf("callbacks ran %v times; want one of them retried once", runs)
		}
		view(t, db, func(tx *Txn) error {
			b, err := tx.GetBucket("ctr")
			if err != nil {
				return err
			}
			if b.Region != "2" {
				t.Errorf("counter = %s, want 2", b.Region)
			}
			return nil
		})
	})
}

// A DeleteBucket whose emptiness check ran before a concurrent PutObject
// committed must not delete the bucket from under the new object: the
// bucket's write fence makes it conflict and retry.
func TestDeleteBucketSeesConcurrentPut(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		createBucket(t, db, "bkt")
		runs := 0
		err := db.Update(ctx, func(tx *Txn) error {
			runs++
			if err := tx.DeleteBucket("bkt"); err != nil {
				return err
			}
			if runs == 1 {
				// Another writer adds an object after our check, before our
				// commit, as cryptostore would: reading the bucket, then putting.
				update(t, db, func(tx *Txn) error {
					if _, err := tx.GetBucket("bkt"); err != nil {
						return err
					}
					return tx.PutObject(&Object{Bucket: "bkt", Key: "late"})
				})
			}
			return nil
		})
		if !errors.Is(err, ErrBucketNotEmpty) {
			t.Fatalf("DeleteBucket = %v after %d runs, want ErrBucketNotEmpty", err, runs)
		}
		view(t, db, func(tx *Txn) error {
			if _, err := tx.GetBucket("bkt"); err != nil {
				t.Errorf("bucket gone: %v", err)
			}
			if _, err := tx.GetObject("bkt", "late"); err != nil {
				t.Errorf("object gone: %v", err)
			}
			return nil
		})
	})
}

// Likewise a DeleteUpload must not leave behind a part added concurrently.
func TestDeleteUploadSeesConcurrentPart(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		u := &Upload{Bucket: "bkt", Key: "k", ID: NewUploadID()}
		update(t, db, func(tx *Txn) error { return tx.PutUpload(u) })
		runs := 0
		update(t, db, func(tx *Txn) error {
			runs++
			if err := tx.DeleteUpload("bkt", "k", u.ID); err != nil {
				return err
			}
			if runs == 1 {
				update(t, db, func(tx *Txn) error {
					if _, err := tx.GetUpload("bkt", "k", u.ID); err != nil {
						return err
					}
					return tx.PutPart(u.ID, &Part{Number: 7})
				})
			}
			return nil
		})
		if runs != 2 {
			t.Fatalf("DeleteUpload ran %d times, want 2", runs)
		}
		view(t, db, func(tx *Txn) error {
			if parts, _, err := tx.ListParts(u.ID, 0, 0); err != nil || len(parts) != 0 {
				t.Errorf("parts left behind: %d, %v", len(parts), err)
			}
			return nil
		})
	})
}

// A bucket deleted while objects are put into it, concurrently (all start
// together, so the deletion's emptiness check races the first puts): when
// the deletion wins, no object is left in a bucket that no longer exists;
// when it loses, every acknowledged put is there.
func TestEngineBucketDeletedWhileObjectPut(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		deleted := 0
		for round := range 20 {
			bkt := fmt.Sprintf("race%d", round)
			createBucket(t, db, bkt)
			start := make(chan struct{})
			var wg sync.WaitGroup
			var acked atomic.Int64
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := range 5 {
						err := db.Update(ctx, func(tx *Txn) error {
							if _, err := tx.GetBucket(bkt); err != nil {
								return err
							}
							return tx.PutObject(&Object{Bucket: bkt, Key: fmt.Sprintf("w%d/%d", w, i), ID: NewObjectID()})
						})
						if errors.Is(err, ErrNoSuchBucket) {
							return
						}
						if err != nil {
							t.Errorf("put: %v", err)
							return
						}
						acked.Add(1)
					}
				}()
			}
			close(start)
			delErr := db.Update(ctx, func(tx *Txn) error { return tx.DeleteBucket(bkt) })
			wg.Wait()
			if delErr != nil && !errors.Is(delErr, ErrBucketNotEmpty) {
				t.Fatalf("delete: %v", delErr)
			}
			if delErr == nil {
				deleted++
			}
			view(t, db, func(tx *Txn) error {
				_, berr := tx.GetBucket(bkt)
				n, _, err := tx.CountObjects(bkt)
				if err != nil {
					return err
				}
				if errors.Is(berr, ErrNoSuchBucket) && n > 0 {
					t.Errorf("round %d: bucket deleted with %d objects left in it (%d puts acknowledged)", round, n, acked.Load())
				}
				if berr == nil && int64(n) != acked.Load() {
					t.Errorf("round %d: %d objects, %d puts acknowledged", round, n, acked.Load())
				}
				return nil
			})
		}
		t.Logf("the deletion won %d of 20 rounds", deleted)
	})
}

// An upload completed while parts arrive: every part whose PutPart was
// acknowledged is in the part list the completion saw, and no part record
// is left behind.
func TestEngineUploadCompletedWhilePartArrives(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		createBucket(t, db, "bkt")
		for round := range 4 {
			u := &Upload{Bucket: "bkt", Key: fmt.Sprintf("k%d", round), ID: NewUploadID()}
			update(t, db, func(tx *Txn) error { return tx.PutUpload(u) })
			var mu sync.Mutex
			var ackedParts []int32
			var wg sync.WaitGroup
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 20 {
						n := int32(w*100 + i + 1)
						err := db.Update(ctx, func(tx *Txn) error {
							if _, err := tx.GetUpload(u.Bucket, u.Key, u.ID); err != nil {
								return err
							}
							return tx.PutPart(u.ID, &Part{Number: n, Size: int64(n)})
						})
						if errors.Is(err, ErrNoSuchUpload) {
							return
						}
						if err != nil {
							t.Errorf("put part: %v", err)
							return
						}
						mu.Lock()
						ackedParts = append(ackedParts, n)
						mu.Unlock()
					}
				}()
			}
			for {
				mu.Lock()
				n := len(ackedParts)
				mu.Unlock()
				if n > 0 {
					break
				}
			}
			// Complete, as cryptostore does: read the parts, replace the
			// upload with the object.
			var seen map[int32]bool
			update(t, db, func(tx *Txn) error {
				seen = map[int32]bool{}
				if _, err := tx.GetUpload(u.Bucket, u.Key, u.ID); err != nil {
					return err
				}
				for after := int32(0); ; {
					parts, more, err := tx.ListParts(u.ID, after, 0)
					if err != nil {
						return err
					}
					for _, p := range parts {
						seen[p.Number] = true
						after = p.Number
					}
					if !more {
						break
					}
				}
				if err := tx.DeleteUpload(u.Bucket, u.Key, u.ID); err != nil {
					return err
				}
				return tx.PutObject(&Object{Bucket: u.Bucket, Key: u.Key, ID: NewObjectID(), Size: int64(len(seen))})
			})
			wg.Wait()
			for _, n := range ackedParts {
				if !seen[n] {
					t.Errorf("round %d: part %d acknowledged but not in the completed upload (%d parts seen)", round, n, len(seen))
				}
			}
			view(t, db, func(tx *Txn) error {
				parts, _, err := tx.ListParts(u.ID, 0, 0)
				if err != nil || len(parts) != 0 {
					t.Errorf("round %d: %d part records left behind (%v)", round, len(parts), err)
				}
				return nil
			})
		}
	})
}

// kvCommit runs fn in a raw engine transaction and commits it.
func kvCommit(t *testing.T, db *DB, fn func(tx kvTxn) error) error {
	t.Helper()
	tx, err := db.kv.begin(context.Background(), true)
	if err != nil {
		return err
	}
	defer tx.discard()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit()
}

// kvKeys returns the keys an iterator over prefix visits from seek, and
// the values (nil with keysOnly).
func kvKeys(t *testing.T, tx kvTxn, prefix, seek []byte, keysOnly bool) (keys, vals []string) {
	t.Helper()
	it := tx.iterate(prefix, keysOnly)
	defer it.close()
	for it.seek(seek); it.valid(); it.next() {
		keys = append(keys, string(it.key()))
		if !keysOnly {
			v, err := it.value()
			if err != nil {
				t.Fatal(err)
			}
			vals = append(vals, string(v))
		}
	}
	if err := it.err(); err != nil {
		t.Fatal(err)
	}
	return keys, vals
}

// Scans visit the keys under their prefix in byte order (NUL and 0xff
// bytes, keys that are prefixes of others), from where they seek, and a
// seek may go back; a keys-only scan visits the same keys; more keys than
// one batch of a server engine's scan are all visited once.
func TestEngineScanOrderSeekKeysOnly(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		prefix := []byte("c\x00r\x00scan/")
		var want []string
		add := func(suffix string) { want = append(want, string(prefix)+suffix) }
		for _, s := range []string{"", "\x00", "\x00\x00", "\x01", "a", "a\x00", "a\xff", "ab", "b", "\xff", "\xff\xff", "\xff\x00"} {
			add(s)
		}
		for i := range 2100 {
			add(fmt.Sprintf("n%05d", i))
		}
		outside := []string{"c\x00r\x00scan.", "c\x00r\x00scan", "c\x00r\x00scan0", "c\x00r\x00scao"}
		all := append(append([]string{}, outside...), want...)
		// Write in an order that is not the key order.
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
		err := db.UpdateBulk(context.Background(), len(all), func(tx *Txn, i int) error {
			return tx.kv.set([]byte(all[i]), []byte("v:"+all[i]))
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(want)
		tx, err := db.kv.begin(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.discard()
		keys, vals := kvKeys(t, tx, prefix, prefix, false)
		if !slices.Equal(keys, want) {
			t.Fatalf("scan: %d keys, want %d; first %q", len(keys), len(want), keys[:min(5, len(keys))])
		}
		for i, v := range vals {
			if v != "v:"+keys[i] {
				t.Fatalf("value of %q = %q", keys[i], v)
			}
		}
		ko, kv := kvKeys(t, tx, prefix, prefix, true)
		if !slices.Equal(ko, want) || kv != nil {
			t.Fatalf("keys-only scan: %d keys, want %d", len(ko), len(want))
		}
		// Seek to a present key, an absent one, below the prefix.
		for _, c := range []struct {
			seek string
			from int
		}{
			{seek: string(prefix) + "a\x00", from: indexOf(want, string(prefix)+"a\x00")},
			{seek: string(prefix) + "a\x01", from: indexOf(want, string(prefix)+"ab")},
			{seek: string(prefix) + "n01000x", from: indexOf(want, string(prefix)+"n01001")},
			{seek: "c\x00r\x00", from: 0},
			{seek: string(prefix) + "\xff\xff\xff", from: len(want)},
		} {
			got, _ := kvKeys(t, tx, prefix, []byte(c.seek), true)
			if !slices.Equal(got, want[c.from:]) {
				t.Errorf("seek %q: %d keys from %q, want %d from %q", c.seek, len(got), first(got), len(want)-c.from, first(want[c.from:]))
			}
		}
		// Seek forward past a run, then back.
		it := tx.iterate(prefix, true)
		defer it.close()
		it.seek(append(bytes.Clone(prefix), "n02000"...))
		if !it.valid() || string(it.key()) != string(prefix)+"n02000" {
			t.Fatalf("seek forward: %v", it.valid())
		}
		it.seek(append(bytes.Clone(prefix), 'a'))
		if !it.valid() || string(it.key()) != string(prefix)+"a" {
			t.Fatalf("seek back: %v", it.valid())
		}
		it.next()
		if !it.valid() || string(it.key()) != string(prefix)+"a\x00" {
			t.Fatalf("next after seek back: %q", it.key())
		}
	})
}

// A transaction sees its own writes, in get and in scans; a View refuses
// writes.
func TestEngineOwnWritesAndReadOnly(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		p := []byte("c\x00r\x00own/")
		k := func(s string) []byte { return append(bytes.Clone(p), s...) }
		if err := kvCommit(t, db, func(tx kvTxn) error { return tx.set(k("b"), []byte("old")) }); err != nil {
			t.Fatal(err)
		}
		err := kvCommit(t, db, func(tx kvTxn) error {
			if err := tx.set(k("a"), nil); err != nil {
				return err
			}
			if err := tx.set(k("c"), []byte("new")); err != nil {
				return err
			}
			if err := tx.delete(k("b")); err != nil {
				return err
			}
			if _, ok, err := tx.get(k("a")); !ok || err != nil {
				t.Errorf("own write a: %v %v", ok, err)
			}
			if _, ok, err := tx.get(k("b")); ok || err != nil {
				t.Errorf("own delete b: %v %v", ok, err)
			}
			keys, vals := kvKeys(t, tx, p, p, false)
			if !slices.Equal(keys, []string{string(k("a")), string(k("c"))}) || vals[0] != "" || vals[1] != "new" {
				t.Errorf("scan of own writes: %q %q", keys, vals)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.View(context.Background(), func(tx *Txn) error { return tx.kv.set(k("x"), []byte("y")) })
		if !errors.Is(err, ErrReadOnlyTxn) {
			t.Fatalf("write in View = %v, want ErrReadOnlyTxn", err)
		}
	})
}

// Conflicts on what was read: a lost update and a write skew are refused
// with ErrConflict (at a write or at the commit), on every engine.
func TestEngineConflicts(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		x, y := []byte("c\x00r\x00x"), []byte("c\x00r\x00y")
		if err := kvCommit(t, db, func(tx kvTxn) error {
			if err := tx.set(x, []byte("0")); err != nil {
				return err
			}
			return tx.set(y, []byte("0"))
		}); err != nil {
			t.Fatal(err)
		}
		finish := func(tx kvTxn, fn func() error) error {
			if err := fn(); err != nil {
				return err
			}
			return tx.commit()
		}
		// Lost update: t1 reads x; t2 writes x and commits; t1 writes x.
		t1, err := db.kv.begin(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := t1.get(x); err != nil {
			t.Fatal(err)
		}
		if err := kvCommit(t, db, func(tx kvTxn) error { return tx.set(x, []byte("t2")) }); err != nil {
			t.Fatal(err)
		}
		err = finish(t1, func() error { return t1.set(x, []byte("t1")) })
		t1.discard()
		if !errors.Is(err, ErrConflict) {
			t.Fatalf("lost update: %v, want ErrConflict", err)
		}
		// Write skew: each reads x and y (y by a scan), writes one; both
		// must not commit.
		a, err := db.kv.begin(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer a.discard()
		b, err := db.kv.begin(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer b.discard()
		for _, tx := range []kvTxn{a, b} {
			if _, _, err := tx.get(x); err != nil {
				t.Fatal(err)
			}
			kvKeys(t, tx, y, y, false)
		}
		errA := finish(a, func() error { return a.set(x, []byte("a")) })
		errB := finish(b, func() error { return b.set(y, []byte("b")) })
		if errA == nil && errB == nil {
			t.Fatal("write skew: both transactions committed")
		}
		for _, err := range []error{errA, errB} {
			if err != nil && !errors.Is(err, ErrConflict) {
				t.Fatalf("write skew: %v, want ErrConflict", err)
			}
		}
	})
}

// Two Sequences of one name (two gateways) never hand out the same number.
func TestEngineSequenceShared(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		s1, err := db.NewSequence("shared", 7)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := db.NewSequence("shared", 5)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		var last1, last2 uint64
		for i := range 60 {
			s, last := s1, &last1
			if i%3 == 0 {
				s, last = s2, &last2
			}
			n, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			if seen[n] || n <= *last {
				t.Fatalf("number %d handed out twice or out of order (last %d)", n, *last)
			}
			seen[n], *last = true, n
		}
		if err := s1.Release(); err != nil {
			t.Fatal(err)
		}
		if err := s2.Release(); err != nil {
			t.Fatal(err)
		}
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// deletePrefix removes every key under its prefix and nothing else, in one
// write however many keys: the transaction's own reads see them gone, a
// write queued under the prefix before it goes too, and a key inserted
// under the prefix by another transaction after the snapshot is never
// deleted unseen.
func TestEngineDeletePrefix(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		const n = 300 // above etcd's default --max-txn-ops (128)
		for i := 0; i < n; i += 100 {
			if err := kvCommit(t, db, func(tx kvTxn) error {
				for j := i; j < i+100; j++ {
					if err := tx.set([]byte(fmt.Sprintf("x/a/%04d", j)), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := kvCommit(t, db, func(tx kvTxn) error {
			for _, k := range []string{"x/a", "x/b/1", "x/0"} {
				if err := tx.set([]byte(k), []byte("keep")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := kvCommit(t, db, func(tx kvTxn) error {
			if err := tx.set([]byte("x/a/queued"), []byte("v")); err != nil {
				return err
			}
			if err := tx.deletePrefix([]byte("x/a/")); err != nil {
				return err
			}
			if _, ok, err := tx.get([]byte("x/a/0007")); err != nil || ok {
				t.Errorf("own read after deletePrefix: found %v, err %v", ok, err)
			}
			if _, ok, err := tx.get([]byte("x/a/queued")); err != nil || ok {
				t.Errorf("queued write after deletePrefix: found %v, err %v", ok, err)
			}
			if keys, _ := kvKeys(t, tx, []byte("x/"), nil, true); !slices.Equal(keys, []string{"x/0", "x/a", "x/b/1"}) {
				t.Errorf("own scan after deletePrefix: %q", keys)
			}
			return nil
		}); err != nil {
			t.Fatalf("deletePrefix of %d keys: %v", n, err)
		}
		tx, err := db.kv.begin(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		if keys, _ := kvKeys(t, tx, []byte("x/"), nil, true); !slices.Equal(keys, []string{"x/0", "x/a", "x/b/1"}) {
			t.Errorf("after the commit: %q", keys)
		}
		tx.discard()

		// A key inserted under the prefix after the snapshot is never
		// deleted unseen: either the deletion does not commit, or the key
		// survives it (the deletion serialized before the insertion).
		a, err := db.kv.begin(context.Background(), true)
		if err != nil {
			t.Fatal(err)
		}
		defer a.discard()
		if _, _, err := a.get([]byte("x/0")); err != nil { // pins the snapshot
			t.Fatal(err)
		}
		if err := kvCommit(t, db, func(tx kvTxn) error { return tx.set([]byte("x/b/2"), []byte("new")) }); err != nil {
			t.Fatal(err)
		}
		if err := a.deletePrefix([]byte("x/b/")); err != nil {
			t.Fatal(err)
		}
		err = a.commit()
		if err != nil && !errors.Is(err, ErrConflict) {
			t.Fatal(err)
		}
		tx, err = db.kv.begin(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.discard()
		if _, ok, gerr := tx.get([]byte("x/b/2")); gerr != nil || (err == nil && !ok) {
			t.Fatalf("a key inserted after the deletion's snapshot was deleted unseen (found %v, err %v)", ok, gerr)
		}
	})
}

// An upload of more parts than etcd lets one transaction write or compare
// (--max-txn-ops, 128 by default) is deleted whole by one DeleteUpload.
func TestEngineDeleteUploadOfManyParts(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		u := &Upload{Bucket: "bkt", Key: "k", ID: NewUploadID()}
		update(t, db, func(tx *Txn) error { return tx.PutUpload(u) })
		const n = 300
		for i := 1; i <= n; i += 50 {
			update(t, db, func(tx *Txn) error {
				for j := i; j < i+50; j++ {
					if err := tx.PutPart(u.ID, &Part{Number: int32(j), Size: 5 << 20, Blob: BlobRef{ID: NewBlobID(), Size: 5 << 20}}); err != nil {
						return err
					}
				}
				return nil
			})
		}
		update(t, db, func(tx *Txn) error { return tx.DeleteUpload("bkt", "k", u.ID) })
		view(t, db, func(tx *Txn) error {
			if parts, _, err := tx.ListParts(u.ID, 0, 0); err != nil || len(parts) != 0 {
				t.Errorf("parts left behind: %d, %v", len(parts), err)
			}
			if _, err := tx.GetUpload("bkt", "k", u.ID); !errors.Is(err, ErrNoSuchUpload) {
				t.Errorf("upload after DeleteUpload: %v", err)
			}
			return nil
		})
	})
}
