package meta

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/internal/etcdtest"
)

func sharedEtcd(t testing.TB) *etcdtest.Cluster { return enginetest.Etcd(t) }

// etcdTestURL returns the URL of a fresh, empty store on the shared
// cluster.
func etcdTestURL(t testing.TB) string { return enginetest.ByName("etcd").URL(t) }

// openEtcdTest opens a fresh store on the shared cluster, closed in
// t.Cleanup.
func openEtcdTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(etcdTestURL(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// etcdUpdate runs fn in one read-write engine transaction and commits it,
// without retries.
func etcdUpdate(db *DB, fn func(tx kvTxn) error) error {
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

// etcdKeys returns the keys (and values) under prefix from seek, as an
// iterator of tx sees them.
func etcdKeys(t testing.TB, tx kvTxn, prefix, seek string, keysOnly bool) []string {
	t.Helper()
	it := tx.iterate([]byte(prefix), keysOnly)
	defer it.close()
	var out []string
	for it.seek([]byte(seek)); it.valid(); it.next() {
		s := string(it.key())
		if !keysOnly {
			v, err := it.value()
			if err != nil {
				t.Fatal(err)
			}
			s += "=" + string(v)
		}
		out = append(out, s)
	}
	if err := it.err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEtcdParseURL(t *testing.T) {
	cfg, prefix, kv, err := parseEtcdURL("etcd://u:secret@h1:2379, h2:2380/stores/one/?timeout=3s&max-txn-ops=1024&max-request-bytes=10485760")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Endpoints, ",") != "h1:2379,h2:2380" || cfg.Username != "u" || cfg.Password != "secret" {
		t.Fatalf("endpoints %v user %q pass %q", cfg.Endpoints, cfg.Username, cfg.Password)
	}
	if prefix != "/stores/one/" || kv.timeout != 3*time.Second || kv.maxOps != 1024 || kv.maxWriteBytes != 10485760*3/4 {
		t.Fatalf("prefix %q timeout %v maxOps %d maxWriteBytes %d", prefix, kv.timeout, kv.maxOps, kv.maxWriteBytes)
	}
	if _, prefix, kv, _ := parseEtcdURL("etcd://h1:2379"); prefix != "/" || kv.maxOps != 128 {
		t.Fatalf("no path: prefix %q maxOps %d", prefix, kv.maxOps)
	}
	for _, bad := range []string{"etcd:///p", "etcd://h:1/p?what=1", "etcd://h:1/p?timeout=x", "etcd://h:1/p?max-txn-ops=2", "etcd://h:1/p?cacert=/nonexistent"} {
		if _, _, _, err := parseEtcdURL(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	_, _, _, err = parseEtcdURL("etcd://u:secret@/p")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v: want one without the password", err)
	}
}

// TestEtcdSnapshotAndOwnWrites checks that a transaction reads one
// snapshot (a commit made after its first read stays invisible to it) and
// sees its own writes through get and through iterators, over more keys
// than an iterator's first pages hold, with seeks forward and backward.
func TestEtcdSnapshotAndOwnWrites(t *testing.T) {
	db := openEtcdTest(t)
	const n = 300
	key := func(i int) string { return fmt.Sprintf("x\x00%04d", i) }
	err := etcdUpdate(db, func(tx kvTxn) error {
		for i := 0; i < n; i += 2 { // even keys
			if err := tx.set([]byte(key(i)), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrTxnTooBig) {
		// 150 writes: more than etcd's default max-txn-ops; write them
		// in two.
		for half := 0; half < 2; half++ {
			if err := etcdUpdate(db, func(tx kvTxn) error {
				for i := half * n / 2; i < (half+1)*n/2; i += 2 {
					if err := tx.set([]byte(key(i)), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	} else if err != nil {
		t.Fatal(err)
	}

	tx, err := db.kv.begin(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.discard()
	if _, ok, err := tx.get([]byte(key(0))); err != nil || !ok {
		t.Fatalf("get = %v, %v", ok, err)
	}
	// Another transaction commits after the snapshot was pinned.
	if err := etcdUpdate(db, func(tx kvTxn) error {
		if err := tx.delete([]byte(key(2))); err != nil {
			return err
		}
		return tx.set([]byte(key(3)), []byte("other"))
	}); err != nil {
		t.Fatal(err)
	}
	// Own writes: odd keys below 10, a deletion, an overwrite.
	for i := 1; i < 10; i += 2 {
		if err := tx.set([]byte(key(i)), []byte("own")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.delete([]byte(key(4))); err != nil {
		t.Fatal(err)
	}
	if err := tx.set([]byte(key(6)), []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := tx.get([]byte(key(6))); err != nil || !ok || string(got) != "new" {
		t.Fatalf("get own write = %v %q %v", ok, got, err)
	}
	if _, ok, err := tx.get([]byte(key(4))); err != nil || ok {
		t.Fatalf("get own deletion = %v %v", ok, err)
	}
	if _, ok, err := tx.get([]byte(key(2))); err != nil || !ok {
		t.Fatalf("key deleted after the snapshot: get = %v %v, want it still there", ok, err)
	}

	var want []string
	for i := 0; i < n; i++ {
		switch {
		case i == 4:
		case i == 6:
			want = append(want, key(i)+"=new")
		case i < 10 && i%2 == 1:
			want = append(want, key(i)+"=own")
		case i%2 == 0:
			want = append(want, key(i)+"=v")
		}
	}
	if got := etcdKeys(t, tx, "x\x00", "", false); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("scan:\n got %q\nwant %q", got, want)
	}
	if got := etcdKeys(t, tx, "x\x00", key(251), true); len(got) != 24 || got[0] != key(252) {
		t.Fatalf("keys-only scan from %q: %d keys from %q", key(251), len(got), got[0])
	}

	// Seek forward and back on one iterator.
	it := tx.iterate([]byte("x\x00"), true)
	defer it.close()
	for _, s := range []struct{ seek, want string }{
		{key(200), key(200)}, {key(5), key(5)}, {"a", key(0)}, {key(8), key(8)}, {key(150), key(150)},
		{key(299), ""}, {key(7), key(7)},
	} {
		it.seek([]byte(s.seek))
		have := ""
		if it.valid() {
			have = string(it.key())
		}
		if have != s.want {
			t.Fatalf("seek %q: at %q, want %q", s.seek, have, s.want)
		}
	}
	if err := it.err(); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdConflicts checks what a commit conflicts on: a key read that
// changed or went away, an absent key read that appeared, a key inserted
// into a range an iterator covered, a key an iterator visited that was
// deleted; and what it does not: writes outside what was read, blind
// writes of the same key (the write fences rely on that).
func TestEtcdConflicts(t *testing.T) {
	db := openEtcdTest(t)
	if err := etcdUpdate(db, func(tx kvTxn) error {
		for _, k := range []string{"a", "r\x00a", "r\x00c", "s\x00a"} {
			if err := tx.set([]byte(k), []byte("1")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		read     func(tx kvTxn) error
		other    func(tx kvTxn) error
		conflict bool
	}{
		{"read key updated", getKey("a"), setKey("a"), true},
		{"read key deleted", getKey("a"), delKey("a"), true},
		{"absent key created", getKey("b"), setKey("b"), true},
		{"other key written", getKey("a"), setKey("z"), false},
		{"blind writes", func(kvTxn) error { return nil }, setKey("w"), false},
		{"insert into scanned range", scanKeys("r\x00"), setKey("r\x00b"), true},
		{"update in scanned range", scanKeys("r\x00"), setKey("r\x00c"), true},
		{"delete of a scanned key", scanKeys("r\x00"), delKey("r\x00a"), true},
		{"insert beyond scanned prefix", scanKeys("r\x00"), setKey("s\x00b"), false},
		{"insert after where a scan stopped", scanFirst("r\x00"), setKey("r\x00d"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.kv.begin(context.Background(), true)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.discard()
			if err := c.read(tx); err != nil {
				t.Fatal(err)
			}
			if err := etcdUpdate(db, c.other); err != nil {
				t.Fatal(err)
			}
			if err := tx.set([]byte("w"), []byte("mine")); err != nil {
				t.Fatal(err)
			}
			err = tx.commit()
			if c.conflict && !errors.Is(err, ErrConflict) {
				t.Fatalf("commit = %v, want ErrConflict", err)
			}
			if !c.conflict && err != nil {
				t.Fatalf("commit = %v, want success", err)
			}
		})
	}
}

func getKey(k string) func(kvTxn) error {
	return func(tx kvTxn) error { _, _, err := tx.get([]byte(k)); return err }
}

func setKey(k string) func(kvTxn) error {
	return func(tx kvTxn) error { return tx.set([]byte(k), []byte(time.Now().String())) }
}

func delKey(k string) func(kvTxn) error {
	return func(tx kvTxn) error { return tx.delete([]byte(k)) }
}

func scanKeys(prefix string) func(kvTxn) error {
	return func(tx kvTxn) error {
		it := tx.iterate([]byte(prefix), true)
		defer it.close()
		for it.seek(nil); it.valid(); it.next() {
		}
		return it.err()
	}
}

// scanFirst looks at the first key under prefix only.
func scanFirst(prefix string) func(kvTxn) error {
	return func(tx kvTxn) error {
		it := tx.iterate([]byte(prefix), true)
		defer it.close()
		it.seek(nil)
		return it.err()
	}
}

// TestEtcdLimits checks that a transaction refuses its write beyond
// etcd's default --max-txn-ops (128) with ErrTxnTooBig, that a value near
// the request-size budget is refused the same way, and that UpdateBulk
// splits a large import into transactions that fit.
func TestEtcdLimits(t *testing.T) {
	db := openEtcdTest(t)
	err := etcdUpdate(db, func(tx kvTxn) error {
		for i := 0; i < etcdDefaultMaxTxnOps; i++ {
			if err := tx.set([]byte(fmt.Sprintf("k%d", i)), nil); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		return tx.set([]byte("one-more"), nil)
	})
	if !errors.Is(err, ErrTxnTooBig) {
		t.Fatalf("write %d = %v, want ErrTxnTooBig", etcdDefaultMaxTxnOps+1, err)
	}
	err = etcdUpdate(db, func(tx kvTxn) error {
		for i := 0; i < 20; i++ {
			if err := tx.set([]byte(fmt.Sprintf("big%d", i)), make([]byte, 64<<10)); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrTxnTooBig) {
		t.Fatalf("20 × 64 KiB = %v, want ErrTxnTooBig", err)
	}
	// 16 inline objects of 64 KiB fit in one commit.
	if err := etcdUpdate(db, func(tx kvTxn) error {
		for i := 0; i < 16; i++ {
			if err := tx.set([]byte(fmt.Sprintf("big%d", i)), make([]byte, 64<<10)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	const n = 1000
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "bulk"}) }); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateBulk(ctx, n, func(tx *Txn, i int) error {
		return tx.PutObject(&Object{Bucket: "bulk", Key: fmt.Sprintf("k%04d", i), ID: NewObjectID()})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.View(ctx, func(tx *Txn) error {
		count, _, err := tx.CountObjects("bulk")
		if err == nil && count != n {
			err = fmt.Errorf("%d objects, want %d", count, n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdPrefixesShareACluster checks that stores under different key
// prefixes of one cluster do not see each other.
func TestEtcdPrefixesShareACluster(t *testing.T) {
	a, b := openEtcdTest(t), openEtcdTest(t)
	ctx := context.Background()
	if err := a.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "only-in-a"}) }); err != nil {
		t.Fatal(err)
	}
	if err := b.View(ctx, func(tx *Txn) error {
		bs, err := tx.ListBuckets()
		if err == nil && len(bs) != 0 {
			err = fmt.Errorf("store b lists %d buckets of store a", len(bs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdMemberKilledUnderLoad SIGKILLs the leader of a 3-member cluster
// while writers commit objects, checks that the store keeps committing
// (the client moves to the other members, which elect a new leader),
// restarts the member, and checks that every acknowledged write is there,
// read through the restarted member alone.
func TestEtcdMemberKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if !etcdtest.Available() {
		missingEngine(t, "etcd: %s not installed", etcdtest.Bin)
	}
	c := etcdtest.Start(t, 3)
	db, err := Open(c.URL("load")+"?timeout=5s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "load"}) }); err != nil {
		t.Fatal(err)
	}

	// The leader, as the members see it.
	cli := db.kv.(*etcdKV).cli
	leader := -1
	for i, ep := range c.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			t.Fatal(err)
		}
		if st.Header.MemberId == st.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no member is the leader")
	}

	var (
		mu       sync.Mutex
		acked    []string
		failures []error
		seq      atomic.Int64
		killedAt atomic.Int64 // unix nanos; 0 before the kill
		afterOK  atomic.Int64 // acknowledged writes started after the kill
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("obj-%06d", seq.Add(1))
				started := time.Now().UnixNano()
				err := db.Update(ctx, func(tx *Txn) error {
					if _, err := tx.GetBucket("load"); err != nil {
						return err
					}
					return tx.PutObject(&Object{Bucket: "load", Key: key, ID: NewObjectID(), Size: 1})
				})
				mu.Lock()
				if err == nil {
					acked = append(acked, key)
					if k := killedAt.Load(); k != 0 && started > k {
						afterOK.Add(1)
					}
				} else {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	killedAt.Store(time.Now().UnixNano())
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	// Serving goes on: writes begun after the kill are acknowledged.
	deadline := time.Now().Add(20 * time.Second)
	for afterOK.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Restart(leader); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes acknowledged (%d begun after the kill), %d failed", len(acked), afterOK.Load(), len(failures))
	for i, err := range failures {
		if i == 5 {
			break
		}
		t.Logf("failed write: %v", err)
	}
	if afterOK.Load() < 50 {
		t.Fatalf("only %d writes acknowledged in 20 s after the leader was killed", afterOK.Load())
	}
	if len(failures) > len(acked)/4 {
		t.Errorf("%d writes failed, %d acknowledged", len(failures), len(acked))
	}

	// Every acknowledged write, read through the restarted member alone
	// (a linearizable read: it has caught up with the cluster).
	one, err := Open("etcd://"+c.Endpoints()[leader]+"/load", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if err := one.View(ctx, func(tx *Txn) error {
		for _, k := range acked {
			if _, err := tx.GetObject("load", k); err != nil {
				return fmt.Errorf("acknowledged write lost: %w", err)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// benchEngines runs fn as a sub-benchmark per engine that
// SEALFS_TEST_ENGINES selects (Badger alone by default, so that make bench
// stays as it was), on a fresh store. The comparison:
//
//	SEALFS_TEST_ENGINES=all go test -run '^$' -bench BenchmarkEngine ./meta
func benchEngines(b *testing.B, fn func(b *testing.B, db *DB)) {
	for _, e := range testEngines {
		if !engineSelected(e.name) {
			continue
		}
		b.Run(e.name, func(b *testing.B) {
			db, err := Open(e.url(b), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			fn(b, db)
		})
	}
}

// BenchmarkEngineUpdate commits small object records, each in a durable
// Update that reads the bucket first (as cryptostore's commits do), from 1
// and from 16 goroutines, on every engine.
func BenchmarkEngineUpdate(b *testing.B) {
	for _, workers := range []int{1, 16} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchEngines(b, func(b *testing.B, db *DB) {
				createBucket(b, db, "bkt")
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				b.ResetTimer()
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							err := db.Update(context.Background(), func(tx *Txn) error {
								if _, err := tx.GetBucket("bkt"); err != nil {
									return err
								}
								return tx.PutObject(&Object{Bucket: "bkt", Key: fmt.Sprintf("w%02d/%09d", w, i), Size: i, ETag: `"0123456789abcdef0123456789abcdef"`})
							})
							if err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
			})
		})
	}
}

// BenchmarkEngineList1000 lists a page of 1000 object records out of
// 5000, on every engine: flat, and with a delimiter that rolls 5000 keys
// up into 1000 common prefixes of 5 (each skipped by a seek).
func BenchmarkEngineList1000(b *testing.B) {
	for _, delim := range []string{"", "/"} {
		name := "flat"
		if delim != "" {
			name = "delimiter"
		}
		b.Run(name, func(b *testing.B) {
			benchEngines(b, func(b *testing.B, db *DB) {
				createBucket(b, db, "bkt")
				const n = 5000
				if err := db.UpdateBulk(context.Background(), n, func(tx *Txn, i int) error {
					return tx.PutObject(&Object{Bucket: "bkt", Key: fmt.Sprintf("d%04d/%d", i/5, i%5), ID: NewObjectID(), Size: int64(i), ETag: `"0123456789abcdef0123456789abcdef"`})
				}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					err := db.View(context.Background(), func(tx *Txn) error {
						page, err := tx.List("bkt", ListOptions{Delimiter: delim, MaxKeys: 1000})
						if err == nil && len(page.Objects)+len(page.CommonPrefixes) != 1000 {
							err = fmt.Errorf("page of %d", len(page.Objects)+len(page.CommonPrefixes))
						}
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pages/s")
			})
		})
	}
}

// completeUpload does what cryptostore's CompleteMultipart commits: read
// the upload and every part, delete the upload with its parts, put the
// object.
func completeUpload(ctx context.Context, db *DB, u *Upload, parts int) error {
	return db.Update(ctx, func(tx *Txn) error {
		if _, err := tx.GetUpload(u.Bucket, u.Key, u.ID); err != nil {
			return err
		}
		for n := int32(1); n <= int32(parts); n++ {
			if _, err := tx.GetPart(u.ID, n); err != nil {
				return err
			}
		}
		if err := tx.DeleteUpload(u.Bucket, u.Key, u.ID); err != nil {
			return err
		}
		return tx.PutObject(&Object{Bucket: u.Bucket, Key: u.Key, ID: NewObjectID()})
	})
}

// TestEtcdLargeUploadNeedsMaxTxnOps shows the limit etcd's default
// --max-txn-ops (128) puts on one transaction: completing an upload of 200
// parts (200 keys read, 200 deleted) is refused with ErrTxnTooBig, cleanly
// (nothing of it applied). On a cluster started with a larger
// --max-txn-ops, named in the URL (?max-txn-ops=), it commits.
func TestEtcdLargeUploadNeedsMaxTxnOps(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	const parts = 200
	prepare := func(t *testing.T, db *DB) *Upload {
		createBucket(t, db, "bkt")
		u := &Upload{Bucket: "bkt", Key: "big", ID: NewUploadID()}
		update(t, db, func(tx *Txn) error { return tx.PutUpload(u) })
		if err := db.UpdateBulk(ctx, parts, func(tx *Txn, i int) error {
			return tx.PutPart(u.ID, &Part{Number: int32(i + 1), Size: 5 << 20})
		}); err != nil {
			t.Fatal(err)
		}
		return u
	}
	t.Run("default limits", func(t *testing.T) {
		db := openEtcdTest(t)
		u := prepare(t, db)
		if err := completeUpload(ctx, db, u, parts); !errors.Is(err, ErrTxnTooBig) {
			t.Fatalf("complete of %d parts = %v, want ErrTxnTooBig", parts, err)
		}
		view(t, db, func(tx *Txn) error {
			if _, err := tx.GetUpload(u.Bucket, u.Key, u.ID); err != nil {
				t.Errorf("upload after the refused completion: %v", err)
			}
			if _, err := tx.GetObject(u.Bucket, u.Key); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("object after the refused completion: %v", err)
			}
			return nil
		})
	})
	t.Run("max-txn-ops=1024", func(t *testing.T) {
		if !etcdtest.Available() {
			missingEngine(t, "etcd: %s not installed", etcdtest.Bin)
		}
		c := etcdtest.Start(t, 3, "--max-txn-ops=1024")
		db, err := Open(c.URL("big")+"?max-txn-ops=1024", Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		u := prepare(t, db)
		if err := completeUpload(ctx, db, u, parts); err != nil {
			t.Fatalf("complete of %d parts: %v", parts, err)
		}
		view(t, db, func(tx *Txn) error {
			if _, err := tx.GetObject(u.Bucket, u.Key); err != nil {
				t.Errorf("object: %v", err)
			}
			if ps, _, err := tx.ListParts(u.ID, 0, 0); err != nil || len(ps) != 0 {
				t.Errorf("%d parts left (%v)", len(ps), err)
			}
			return nil
		})
	})
}

// TestEtcdCompactedSnapshotConflicts checks that a transaction whose
// snapshot revision the cluster compacted away fails with ErrConflict (so
// Update runs it again on a fresh snapshot), not with a hard error.
func TestEtcdCompactedSnapshotConflicts(t *testing.T) {
	db := openEtcdTest(t)
	if err := etcdUpdate(db, setKey("a")); err != nil {
		t.Fatal(err)
	}
	tx, err := db.kv.begin(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.discard()
	if _, _, err := tx.get([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := etcdUpdate(db, setKey("a")); err != nil {
		t.Fatal(err)
	}
	e := db.kv.(*etcdKV)
	resp, err := e.cli.Get(context.Background(), e.prefix+"a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tx.get([]byte("b")); !errors.Is(err, ErrConflict) {
		t.Fatalf("read at a compacted revision = %v, want ErrConflict", err)
	}
	// Update retries it on a fresh snapshot.
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "after-compaction"}) }); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdTwoGateways opens one store twice, each handle talking to a
// different member only (two gateways): a commit acknowledged on one is
// seen by the very next transaction on the other (the first read of a
// transaction is linearizable), and concurrent read-modify-write updates
// from both lose nothing.
func TestEtcdTwoGateways(t *testing.T) {
	c := sharedEtcd(t)
	store := fmt.Sprintf("sealfs-test/two-gateways-%d", time.Now().UnixNano())
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open("etcd://"+c.Endpoints()[i]+"/"+store, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dbs[i] = db
	}
	checkTwoGateways(t, dbs)
}
