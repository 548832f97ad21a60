package meta

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// setRegion commits a new Region for bucket b (Region stands for any
// setting: encryption, replication).
func setRegion(t testing.TB, db *DB, b, region string) {
	t.Helper()
	update(t, db, func(tx *Txn) error {
		r, err := tx.GetBucket(b)
		if err != nil {
			return err
		}
		r.Region = region
		return tx.PutBucket(r)
	})
}

func getRegion(t testing.TB, db *DB, b string) string {
	t.Helper()
	r, err := db.GetBucket(context.Background(), b)
	if err != nil {
		t.Fatalf("GetBucket(%s): %v", b, err)
	}
	return r.Region
}

// DB.GetBucket answers what a read transaction would, after every kind of
// commit that writes a bucket record.
func TestGetBucketSeesEveryCommit(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.GetBucket(ctx, "bkt"); !errors.Is(err, ErrNoSuchBucket) {
			t.Fatalf("GetBucket before CreateBucket = %v, want ErrNoSuchBucket", err)
		}
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Region: "r0"}) })
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "other-bkt", Region: "o"}) })
		if got := getRegion(t, db, "bkt"); got != "r0" {
			t.Fatalf("after CreateBucket: Region %q, want r0", got)
		}
		for i := 1; i <= 5; i++ {
			want := fmt.Sprint("r", i)
			setRegion(t, db, "bkt", want)
			if got := getRegion(t, db, "bkt"); got != want {
				t.Fatalf("after PutBucket %d: Region %q, want %q", i, got, want)
			}
			if got := getRegion(t, db, "other-bkt"); got != "o" {
				t.Fatalf("the other bucket: Region %q, want o", got)
			}
		}

		// The caller owns what it gets: changing it changes nothing stored.
		r, err := db.GetBucket(ctx, "bkt")
		if err != nil {
			t.Fatal(err)
		}
		r.Region = "scribbled"
		r.Replication = append(r.Replication, 'x')
		if r2, _ := db.GetBucket(ctx, "bkt"); r2.Region != "r5" || len(r2.Replication) != 0 {
			t.Fatalf("after the caller changed its copy: %+v", r2)
		}

		update(t, db, func(tx *Txn) error { return tx.DeleteBucket("bkt") })
		if _, err := db.GetBucket(ctx, "bkt"); !errors.Is(err, ErrNoSuchBucket) {
			t.Fatalf("GetBucket after DeleteBucket = %v, want ErrNoSuchBucket", err)
		}
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Region: "again"}) })
		if got := getRegion(t, db, "bkt"); got != "again" {
			t.Fatalf("after CreateBucket again: Region %q, want again", got)
		}

		// A transaction that fails after writing a bucket record changes
		// nothing; GetBucket still answers the stored record.
		boom := errors.New("boom")
		err = db.Update(ctx, func(tx *Txn) error {
			if err := tx.PutBucket(&Bucket{Name: "bkt", Region: "never"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update = %v, want boom", err)
		}
		if got := getRegion(t, db, "bkt"); got != "again" {
			t.Fatalf("after a failed Update: Region %q, want again", got)
		}

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := db.GetBucket(cancelled, "bkt"); !errors.Is(err, context.Canceled) {
			t.Fatalf("GetBucket with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

// Whoever has seen a bucket's Update return reads that change or a later
// one, while other goroutines read and write concurrently.
func TestGetBucketAfterConcurrentCommits(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Region: "0"}) })
		const writes = 200
		var committed atomic.Int64 // the last Region whose Update returned
		var done atomic.Bool       // the writer has stopped
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done.Store(true)
			for i := 1; i <= writes; i++ {
				err := db.Update(context.Background(), func(tx *Txn) error {
					return tx.PutBucket(&Bucket{Name: "bkt", Region: fmt.Sprint(i)})
				})
				if err != nil {
					t.Errorf("Update %d: %v", i, err)
					return
				}
				committed.Store(int64(i))
			}
		}()
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !done.Load() {
					floor := committed.Load()
					r, err := db.GetBucket(context.Background(), "bkt")
					if err != nil {
						t.Error(err)
						return
					}
					var n int64
					fmt.Sscan(r.Region, &n)
					if n < floor {
						t.Errorf("GetBucket read Region %d after the Update of %d had returned", n, floor)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got := getRegion(t, db, "bkt"); got != fmt.Sprint(writes) {
			t.Fatalf("at the end: Region %q, want %d", got, writes)
		}
	})
}

// On Badger, which one process owns, the record is read once until a
// commit writes a bucket record; a commit of anything else keeps it.
func TestGetBucketReadsOnceOnBadger(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Region: "r"}) })
	reads := func() int64 { return db.buckets.reads.Load() }
	start := reads()
	for range 10 {
		if _, err := db.GetBucket(ctx, "bkt"); err != nil {
			t.Fatal(err)
		}
	}
	if n := reads() - start; n != 1 {
		t.Fatalf("10 GetBucket read the store %d times, want 1", n)
	}
	if err := db.Update(ctx, func(tx *Txn) error { return tx.PutObject(&Object{Bucket: "bkt", Key: "k", ID: NewObjectID()}) }); err != nil {
		t.Fatal(err)
	}
	getRegion(t, db, "bkt")
	if n := reads() - start; n != 1 {
		t.Fatalf("after an object commit: %d reads, want still 1", n)
	}
	setRegion(t, db, "bkt", "r2")
	getRegion(t, db, "bkt")
	getRegion(t, db, "bkt")
	if n := reads() - start; n != 2 {
		t.Fatalf("after a bucket commit: %d reads, want 2", n)
	}
}

// On a shared engine another gateway's change is seen at once: the
// record is read every time.
func TestGetBucketOtherGateway(t *testing.T) {
	sel := os.Getenv("SEALFS_TEST_ENGINES")
	for _, e := range testEngines {
		if !e.shared || (sel != "" && !engineSelected(e.name)) {
			continue
		}
		t.Run(e.name, func(t *testing.T) {
			url := e.url(t)
			a, err := Open(url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := Open(url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			update(t, a, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bkt", Region: "r0"}) })
			if got := getRegion(t, a, "bkt"); got != "r0" {
				t.Fatalf("gateway a: Region %q, want r0", got)
			}
			for i := 1; i <= 3; i++ {
				want := fmt.Sprint("r", i)
				setRegion(t, b, "bkt", want)
				if got := getRegion(t, a, "bkt"); got != want {
					t.Fatalf("gateway a after gateway b's commit %d: Region %q, want %q", i, got, want)
				}
			}
		})
	}
}
