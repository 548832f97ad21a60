package meta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testMAC is HMAC-SHA256 over the length-prefixed key and the record.
type testMAC []byte

func (m testMAC) AppendMAC(dst, key, record []byte) []byte {
	h := hmac.New(sha256.New, m)
	h.Write([]byte{byte(len(key) >> 8), byte(len(key))})
	h.Write(key)
	h.Write(record)
	return h.Sum(dst)
}

func (m testMAC) VerifyMAC(key, record, mac []byte) bool {
	return hmac.Equal(m.AppendMAC(nil, key, record), mac)
}

// rawGet and rawSet reach under the record layer, as someone who can write
// the data disk does.
func rawGet(t *testing.T, db *DB, k []byte) []byte {
	t.Helper()
	var v []byte
	if err := db.View(context.Background(), func(tx *Txn) error {
		b, ok, err := tx.kv.get(k)
		v = bytes.Clone(b)
		if err == nil && !ok {
			err = fmt.Errorf("%q: not found", k)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func rawSet(t *testing.T, db *DB, k, v []byte) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx *Txn) error { return tx.kv.set(k, v) }); err != nil {
		t.Fatal(err)
	}
}

func authObject(bucket, key string, enc bool) *Object {
	o := &Object{Bucket: bucket, Key: key, ID: NewObjectID(), Size: 5, ETag: "e", LastModified: time.Unix(1, 0),
		Blobs: []BlobRef{{ID: NewBlobID(), Size: 5}}, Meta: ObjectMeta{User: map[string]string{"a": "b"}}}
	if enc {
		o.Encryption = &Encryption{Algorithm: "aws:kms", KeyID: "k", KeyVersion: 1, WrappedKey: []byte{2, 1, 2, 3}}
	}
	return o
}

func TestRecordAuth(t *testing.T) {
	ctx := context.Background()
	forEachEngine(t, func(t *testing.T, db *DB) {
		db.SetRecordAuth(testMAC("key"), AuthRequired)
		update(t, db, func(tx *Txn) error {
			if err := tx.CreateBucket(&Bucket{Name: "bkt", EncryptionOn: true}); err != nil {
				return err
			}
			for _, k := range []string{"x", "y"} {
				if err := tx.PutObject(authObject("bkt", k, true)); err != nil {
					return err
				}
			}
			if err := tx.PutUpload(&Upload{Bucket: "bkt", Key: "m", ID: "up1", ObjectID: NewObjectID()}); err != nil {
				return err
			}
			return tx.PutPart("up1", &Part{Number: 1, ETag: "p", Size: 3})
		})
		get := func(key string) error {
			return db.View(ctx, func(tx *Txn) error { _, err := tx.GetObject("bkt", key); return err })
		}
		// list lists the bucket both ways: a failed check is List's error,
		// and the same error from the summary of the record in a RecordPage.
		list := func() error {
			err := db.View(ctx, func(tx *Txn) error { _, err := tx.List("bkt", ListOptions{}); return err })
			var page *RecordPage
			if err := db.View(ctx, func(tx *Txn) (err error) { page, err = tx.ListRecords("bkt", ListOptions{}); return err }); err != nil {
				t.Fatalf("ListRecords: %v", err)
			}
			defer page.Release()
			var recErr error
			var s ObjectSummary
			for i := range page.Len() {
				if recErr = page.Summary(i, &s); recErr != nil {
					break
				}
			}
			if (err == nil) != (recErr == nil) || err != nil && errors.Is(err, ErrRecordTampered) != errors.Is(recErr, ErrRecordTampered) {
				t.Fatalf("List: %v; RecordPage.Summary: %v", err, recErr)
			}
			return err
		}
		for _, k := range []string{"x", "y"} {
			if err := get(k); err != nil {
				t.Fatal(err)
			}
		}
		if err := list(); err != nil {
			t.Fatal(err)
		}
		if c, err := db.CensusRecords(ctx); err != nil || c.Records != 5 || c.Sealed != 5 {
			t.Fatalf("census = %+v, %v", c, err)
		}

		// Encryption stripped from a record (re-encoded without it, MAC kept).
		xk, yk := objectKey("bkt", "x"), objectKey("bkt", "y")
		xv, yv := rawGet(t, db, xk), rawGet(t, db, yk)
		body, mac, err := splitMAC(xv)
		if err != nil || mac == nil {
			t.Fatalf("splitMAC: %v", err)
		}
		var o Object
		if err := decodeObject(body, &o); err != nil {
			t.Fatal(err)
		}
		o.Encryption = nil
		stripped := encodeObject(nil, &o)
		stripped = append(append(stripped, recordMACTag, RecordMACSize), mac...)
		rawSet(t, db, xk, stripped)
		if err := get("x"); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("stripped Encryption: %v, want ErrRecordTampered", err)
		}
		if err := list(); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("list with a stripped record: %v, want ErrRecordTampered", err)
		}
		// The MAC removed altogether.
		rawSet(t, db, xk, body)
		if err := get("x"); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("record without MAC: %v, want ErrRecordTampered", err)
		}
		// Two records swapped: both fail.
		rawSet(t, db, xk, yv)
		rawSet(t, db, yk, xv)
		for _, k := range []string{"x", "y"} {
			if err := get(k); !errors.Is(err, ErrRecordTampered) {
				t.Fatalf("swapped record %s: %v, want ErrRecordTampered", k, err)
			}
		}
		rawSet(t, db, xk, xv)
		rawSet(t, db, yk, yv)
		// A field appended after the MAC.
		rawSet(t, db, xk, append(bytes.Clone(xv), objectInline, 1, 1))
		if err := get("x"); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("field after the MAC: %v, want ErrRecordTampered", err)
		}
		rawSet(t, db, xk, xv)

		// Bucket default encryption flipped off in the raw record.
		bk := bucketKey("bkt")
		bv := rawGet(t, db, bk)
		bbody, bmac, _ := splitMAC(bv)
		var b Bucket
		if err := decodeBucket(bbody, &b); err != nil || !b.EncryptionOn {
			t.Fatalf("bucket: %+v %v", b, err)
		}
		b.EncryptionOn = false
		rawSet(t, db, bk, append(append(encodeBucket(nil, &b), recordMACTag, RecordMACSize), bmac...))
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.GetBucket("bkt"); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("bucket encryption flipped: %v, want ErrRecordTampered", err)
		}
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.ListBuckets(); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("ListBuckets with a flipped bucket: %v, want ErrRecordTampered", err)
		}
		rawSet(t, db, bk, bv)

		// Parts and uploads are covered too.
		pk := partKey("up1", 1)
		pv := rawGet(t, db, pk)
		rawSet(t, db, pk, append(bytes.Clone(pv[:len(pv)-1]), pv[len(pv)-1]^1))
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.GetPart("up1", 1); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("part MAC flipped: %v, want ErrRecordTampered", err)
		}
		if err := db.View(ctx, func(tx *Txn) error { _, _, err := tx.ListParts("up1", 0, 0); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("ListParts: %v, want ErrRecordTampered", err)
		}
		// Another key does not verify.
		db.SetRecordAuth(testMAC("other key"), AuthRequired)
		if err := get("y"); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("other MAC key: %v, want ErrRecordTampered", err)
		}
	})
}

// A store written without authentication is sealed by SealRecords, and only
// then are records without a MAC refused.
func TestSealRecords(t *testing.T) {
	ctx := context.Background()
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		// In as many transactions as the engine needs (etcd takes 128
		// writes per transaction).
		if err := db.UpdateBulk(ctx, 1500, func(tx *Txn, i int) error {
			return tx.PutObject(authObject("bkt", string(rune('a'+i%26))+string(rune('A'+i/26)), i%2 == 0))
		}); err != nil {
			t.Fatal(err)
		}
		c, err := db.CensusRecords(ctx)
		if err != nil || c.Records != 1501 || c.Sealed != 0 || c.NewWraps != 750 {
			t.Fatalf("census before = %+v, %v", c, err)
		}
		db.SetRecordAuth(testMAC("k"), AuthRequired)
		if err := db.View(ctx, func(tx *Txn) error { _, err := tx.GetBucket("bkt"); return err }); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("unsealed record in required mode: %v", err)
		}
		db.SetRecordAuth(testMAC("k"), AuthUpgrade)
		n, err := db.SealRecords(ctx)
		if err != nil || n != 1501 {
			t.Fatalf("SealRecords = %d, %v", n, err)
		}
		if n, err := db.SealRecords(ctx); err != nil || n != 0 {
			t.Fatalf("SealRecords again = %d, %v", n, err)
		}
		db.SetRecordAuth(testMAC("k"), AuthRequired)
		if c, err := db.CensusRecords(ctx); err != nil || c.Sealed != 1501 {
			t.Fatalf("census after = %+v, %v", c, err)
		}
		var total int
		after := ""
		for {
			var page *ListPage
			if err := db.View(ctx, func(tx *Txn) (err error) { page, err = tx.List("bkt", ListOptions{After: after}); return err }); err != nil {
				t.Fatal(err)
			}
			total += len(page.Objects)
			if !page.IsTruncated {
				break
			}
			after = page.NextAfter
		}
		if total != 1500 {
			t.Fatalf("listed %d objects after sealing, want 1500", total)
		}
		// A sealed record that was altered stops SealRecords.
		k := objectKey("bkt", "aA")
		v := rawGet(t, db, k)
		v[3] ^= 1
		rawSet(t, db, k, v)
		db.SetRecordAuth(testMAC("k"), AuthUpgrade)
		if _, err := db.SealRecords(ctx); !errors.Is(err, ErrRecordTampered) {
			t.Fatalf("SealRecords over an altered record: %v, want ErrRecordTampered", err)
		}
	})
}

func BenchmarkRecordMAC(b *testing.B) {
	a := &recordAuth{mac: testMAC("k"), mode: AuthRequired}
	k := objectKey("bucket", "some/key/of/usual/length.jpg")
	rec := a.seal(k, encodeObject(nil, authObject("bucket", "k", true)))
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		if _, err := a.open(k, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestObjectKeys(t *testing.T) {
	ctx := context.Background()
	forEachEngine(t, func(t *testing.T, db *DB) {
		db.SetRecordAuth(testMAC("k"), AuthRequired)
		createBucket(t, db, "bkt")
		createBucket(t, db, "bkt2")
		putObjects(t, db, "bkt", []string{"a", "a/b", "b", "c"})
		putObjects(t, db, "bkt2", []string{"z"})
		rawSet(t, db, objectKey("bkt", "b"), []byte{1, 2, 3}) // fails authentication
		var got []string
		after := ""
		for {
			var keys []string
			var more bool
			if err := db.View(ctx, func(tx *Txn) (err error) { keys, more, err = tx.ObjectKeys("bkt", after, 2); return err }); err != nil {
				t.Fatal(err)
			}
			got = append(got, keys...)
			if !more {
				break
			}
			after = keys[len(keys)-1]
		}
		if want := "a,a/b,b,c"; strings.Join(got, ",") != want {
			t.Fatalf("ObjectKeys = %v, want %s", got, want)
		}
	})
}
