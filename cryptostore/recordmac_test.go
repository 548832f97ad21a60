package cryptostore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// These tests play someone who can write the data disk but holds neither
// the root key nor the KMS: they edit Badger's records directly, with the
// store closed, then open it again.

// rawObjectKey is meta's object key (meta/keys.go): o \0 bucket \0 key.
func rawObjectKey(bucket, key string) []byte { return []byte("o\x00" + bucket + "\x00" + key) }

func rawBucketKey(bucket string) []byte { return []byte("b\x00" + bucket) }

// withBadger runs fn on the store's Badger database, opened directly.
var withBadger = enginetest.WithBadger

func rawGet(t *testing.T, db *badger.DB, k []byte) []byte {
	t.Helper()
	var v []byte
	if err := db.View(func(tx *badger.Txn) error {
		item, err := tx.Get(k)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	}); err != nil {
		t.Fatalf("raw get %q: %v", k, err)
	}
	return v
}

func rawSet(t *testing.T, db *badger.DB, k, v []byte) {
	t.Helper()
	if err := db.Update(func(tx *badger.Txn) error { return tx.Set(k, v) }); err != nil {
		t.Fatal(err)
	}
}

// macOf splits a sealed record into its body and its MAC field (the last 34
// bytes: tag 127, length 32, the MAC).
func macOf(t *testing.T, v []byte) (body, macField []byte) {
	t.Helper()
	if len(v) < 34 || v[len(v)-34] != 127 || v[len(v)-33] != 32 {
		t.Fatalf("record does not end with a MAC field: % x", v)
	}
	return v[:len(v)-34], v[len(v)-34:]
}

// reopen closes e and opens the same data directory again.
func reopen(t *testing.T, e *testEnv) *testEnv {
	t.Helper()
	e.close()
	n := openEnv(t, e.dir, e.root, nil)
	t.Cleanup(n.close)
	return n
}

// offline closes e, runs fn on the raw database, and reopens.
func offline(t *testing.T, e *testEnv, fn func(db *badger.DB)) *testEnv {
	t.Helper()
	e.close()
	withBadger(t, e.dir, fn)
	n := openEnv(t, e.dir, e.root, nil)
	t.Cleanup(n.close)
	return n
}

// newEnvNoCleanup is newEnv whose close is left to the test (reopen and
// offline close it).
func newEnvNoCleanup(t *testing.T) *testEnv {
	t.Helper()
	root := make([]byte, 32)
	for i := range root {
		root[i] = byte(i * 7)
	}
	return openEnv(t, t.TempDir(), root, nil)
}

func wantTampered(t *testing.T, e *testEnv, bucket, key string) {
	t.Helper()
	if _, err := e.store.Head(ctx, bucket, key); !errors.Is(err, ErrRecordTampered) {
		t.Errorf("Head %s/%s: %v, want ErrRecordTampered", bucket, key, err)
	}
	if data, err := e.get(t, bucket, key); !errors.Is(err, ErrRecordTampered) {
		t.Errorf("Open %s/%s: %q, %v, want ErrRecordTampered", bucket, key, data, err)
	}
	if _, err := e.store.List(ctx, bucket, meta.ListOptions{}); !errors.Is(err, ErrRecordTampered) {
		t.Errorf("List %s: %v, want ErrRecordTampered", bucket, err)
	}
}

// Item 8 of issue 9: stripping Encryption from an encrypted object's record
// and pointing it at a planted plain blob must not serve the planted bytes
// as the genuine object.
func TestRecordStripEncryptionPlantPlain(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	for _, size := range []int{64, 100 << 10} { // inline and a blob file
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnvNoCleanup(t)
			e.bucket(t, "secret", true)
			e.bucket(t, "scratch", false)
			genuine := bytes.Repeat([]byte("G"), size)
			planted := bytes.Repeat([]byte("E"), size)
			e.put(t, "secret", "doc", genuine)
			e.put(t, "scratch", "evil", planted)
			e = offline(t, e, func(db *badger.DB) {
				_, mac := macOf(t, rawGet(t, db, rawObjectKey("secret", "doc")))
				evil, _ := macOf(t, rawGet(t, db, rawObjectKey("scratch", "evil")))
				// The plain record (no Encryption, the planted blob, its
				// object id, sizes and ETag) under the encrypted key, with
				// the genuine record's MAC kept.
				rawSet(t, db, rawObjectKey("secret", "doc"), append(bytes.Clone(evil), mac...))
			})
			wantTampered(t, e, "secret", "doc")
			// Without any MAC at all it fails the same way.
			e = offline(t, e, func(db *badger.DB) {
				evil, _ := macOf(t, rawGet(t, db, rawObjectKey("scratch", "evil")))
				rawSet(t, db, rawObjectKey("secret", "doc"), evil)
			})
			wantTampered(t, e, "secret", "doc")
			// Other buckets keep working.
			if got := e.mustGet(t, "scratch", "evil"); !bytes.Equal(got, planted) {
				t.Fatal("untouched object changed")
			}
			e.close()
		})
	}
}

// Swapping the records of two keys: both fail (each record is bound to the
// key it is stored under).
func TestRecordSwap(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	e := newEnvNoCleanup(t)
	e.bucket(t, "swap", true)
	e.put(t, "swap", "a", []byte("content of a"))
	e.put(t, "swap", "b", []byte("content of b"))
	e = offline(t, e, func(db *badger.DB) {
		a, b := rawGet(t, db, rawObjectKey("swap", "a")), rawGet(t, db, rawObjectKey("swap", "b"))
		rawSet(t, db, rawObjectKey("swap", "a"), b)
		rawSet(t, db, rawObjectKey("swap", "b"), a)
	})
	for _, k := range []string{"a", "b"} {
		if data, err := e.get(t, "swap", k); !errors.Is(err, ErrRecordTampered) {
			t.Errorf("swapped record %s: %q, %v; want ErrRecordTampered", k, data, err)
		}
		if _, err := e.store.Head(ctx, "swap", k); !errors.Is(err, ErrRecordTampered) {
			t.Errorf("Head of swapped record %s: %v, want ErrRecordTampered", k, err)
		}
	}
	e.close()
}

// A bucket's default encryption turned off in the raw record: the commit
// transaction reads the setting and refuses, so nothing is stored in plain.
func TestRecordBucketEncryptionFlipped(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	e := newEnvNoCleanup(t)
	e.bucket(t, "locked", true)
	e.bucket(t, "open", false)
	e = offline(t, e, func(db *badger.DB) {
		locked, mac := macOf(t, rawGet(t, db, rawBucketKey("locked")))
		open, _ := macOf(t, rawGet(t, db, rawBucketKey("open")))
		if bytes.Equal(locked, open) {
			t.Fatal("test setup: bucket records equal")
		}
		// Bucket record fields (meta/record.go): 3 EncryptionOn bool is
		// encoded as 03 01 01; drop it, keep the MAC.
		flipped := bytes.Replace(locked, []byte{3, 1, 1}, nil, 1)
		if bytes.Equal(flipped, locked) {
			t.Fatal("test setup: EncryptionOn field not found")
		}
		rawSet(t, db, rawBucketKey("locked"), append(flipped, mac...))
	})
	data := []byte("must never be stored in plain")
	_, err := e.store.Put(ctx, &PutInput{Bucket: "locked", Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if !errors.Is(err, ErrRecordTampered) {
		t.Fatalf("Put into a bucket whose encryption was flipped off: %v, want ErrRecordTampered", err)
	}
	if _, err := e.store.GetBucket(ctx, "locked"); !errors.Is(err, ErrRecordTampered) {
		t.Fatalf("GetBucket: %v, want ErrRecordTampered", err)
	}
	if found := scanFor(t, e.dir, data); len(found) > 0 {
		t.Fatalf("plaintext stored in %v", found)
	}
	e.put(t, "open", "k", data) // other buckets keep working
	e.close()
}

// A store with sealed records whose record-authentication key was deleted
// is refused, not given a new key.
func TestRecordAuthKeyDeleted(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	e := newEnvNoCleanup(t)
	e.bucket(t, "bkt", false)
	e.put(t, "bkt", "k", []byte("x"))
	e.close()
	db, err := meta.Open(filepath.Join(e.dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *meta.Txn) error { return tx.DeleteConfig(recordAuthConfig) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = meta.Open(filepath.Join(e.dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k, err := kms.OpenLocal(filepath.Join(e.dir, "kms"), e.root, kms.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := Open(ctx, Config{Dir: e.dir, Meta: db, KMS: k}); !errors.Is(err, ErrRecordAuthKeyMissing) {
		t.Fatalf("Open without the record-authentication key: %v, want ErrRecordAuthKeyMissing", err)
	}
}

// untar extracts a gzipped tar into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(os.PathSeparator)) && path != filepath.Clean(dir) {
			t.Fatalf("tar entry %q escapes", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, os.FileMode(h.Mode)&0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A store written by the first release (testdata/store-v1.tar.gz, see
// testdata/README.md) opens: its keyring is migrated, its records are sealed
// once, every object reads back, and from then on a record without a valid
// MAC is refused.
func TestUpgradeFirstReleaseStore(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	dir := t.TempDir()
	untar(t, "testdata/store-v1.tar.gz", dir)
	root := make([]byte, 32)
	for i := range root {
		root[i] = byte(i)
	}
	small := []byte("small golden object\n")
	large := bytes.Repeat([]byte("large golden object 0123456789\n"), 2500)
	check := func(e *testEnv) {
		t.Helper()
		for _, b := range []string{"enc", "plain"} {
			if got := e.mustGet(t, b, "small.txt"); !bytes.Equal(got, small) {
				t.Fatalf("%s/small.txt: %q", b, got)
			}
			if got := e.mustGet(t, b, "dir/large.bin"); !bytes.Equal(got, large) {
				t.Fatalf("%s/dir/large.bin: %d bytes, want %d", b, len(got), len(large))
			}
			o, err := e.store.Head(ctx, b, "small.txt")
			if err != nil || o.Meta.User["golden"] != "small.txt" || (o.Encryption != nil) != (b == "enc") {
				t.Fatalf("Head %s/small.txt: %+v, %v", b, o, err)
			}
			page, err := e.store.List(ctx, b, meta.ListOptions{})
			if err != nil || len(page.Objects) < 2 {
				t.Fatalf("List %s: %v", b, err)
			}
		}
		ups, err := e.store.ListUploads(ctx, "enc", meta.UploadListOptions{})
		if err != nil || len(ups.Uploads) != 1 {
			t.Fatalf("ListUploads: %+v, %v", ups, err)
		}
		parts, _, err := e.store.ListParts(ctx, "enc", "pending.bin", ups.Uploads[0].ID, 0, 0)
		if err != nil || len(parts) != 1 {
			t.Fatalf("ListParts: %v", err)
		}
	}
	e := openEnv(t, dir, root, nil)
	c, err := e.db.CensusRecords(ctx)
	if err != nil || c.Records == 0 || c.Sealed != c.Records {
		t.Fatalf("after the upgrade: census %+v, %v; want every record sealed", c, err)
	}
	check(e)
	e.put(t, "enc", "new.txt", []byte("written after the upgrade"))
	e = reopen(t, e)
	check(e)
	kr, err := os.ReadFile(filepath.Join(dir, "kms", "keyring"))
	if err != nil || !bytes.Contains(kr, []byte(`"format":2`)) {
		t.Fatalf("keyring not migrated: %v", err)
	}
	// Now a record stripped of its MAC is refused.
	e = offline(t, e, func(db *badger.DB) {
		body, _ := macOf(t, rawGet(t, db, rawObjectKey("enc", "small.txt")))
		rawSet(t, db, rawObjectKey("enc", "small.txt"), body)
	})
	if _, err := e.store.Head(ctx, "enc", "small.txt"); !errors.Is(err, ErrRecordTampered) {
		t.Fatalf("record stripped of its MAC after the upgrade: %v, want ErrRecordTampered", err)
	}
	e.close()
}

// A scrub reports a record that fails authentication as that object's
// damage and goes on with the others.
func TestScrubReportsTamperedRecord(t *testing.T) {
	badgerOnly(t, "tampers with the records in Badger's files, offline")
	e := newEnvNoCleanup(t)
	e.bucket(t, "bkt", true)
	for _, k := range []string{"a", "b", "c"} {
		e.put(t, "bkt", k, []byte("content of "+k))
	}
	e = offline(t, e, func(db *badger.DB) {
		body, _ := macOf(t, rawGet(t, db, rawObjectKey("bkt", "b")))
		rawSet(t, db, rawObjectKey("bkt", "b"), body)
	})
	rep, err := e.store.Scrub(ctx, ScrubOptions{})
	if err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	if rep.Objects != 3 || len(rep.Damaged) != 1 || rep.Damaged[0].Key != "b" || !strings.Contains(rep.Damaged[0].Err, "authentication") {
		t.Fatalf("scrub report: %+v", rep)
	}
	e.close()
}
