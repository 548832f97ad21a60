package meta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	return openAt(t, t.TempDir())
}

func openAt(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func update(t testing.TB, db *DB, fn func(tx *Txn) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t testing.TB, db *DB, fn func(tx *Txn) error) {
	t.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func createBucket(t testing.TB, db *DB, name string) {
	t.Helper()
	update(t, db, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: name}) })
}

func putObjects(t testing.TB, db *DB, bucket string, keys []string) {
	t.Helper()
	err := db.UpdateBulk(context.Background(), len(keys), func(tx *Txn, i int) error {
		return tx.PutObject(&Object{Bucket: bucket, Key: keys[i], ID: NewObjectID(), Size: int64(len(keys[i]))})
	})
	if err != nil {
		t.Fatalf("put objects: %v", err)
	}
}

func TestBucketCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		want := &Bucket{Name: "photos", Created: created, Region: "us-east-1"}
		update(t, db, func(tx *Txn) error { return tx.CreateBucket(want) })

		err := db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "photos"}) })
		if !errors.Is(err, ErrBucketExists) {
			t.Fatalf("second create: got %v, want ErrBucketExists", err)
		}
		err = db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "Bad_Name"}) })
		if !errors.Is(err, ErrInvalidBucketName) {
			t.Fatalf("create bad name: got %v, want ErrInvalidBucketName", err)
		}

		view(t, db, func(tx *Txn) error {
			got, err := tx.GetBucket("photos")
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GetBucket = %+v, want %+v", got, want)
			}
			if _, err := tx.GetBucket("nope"); !errors.Is(err, ErrNoSuchBucket) {
				t.Errorf("GetBucket(nope) = %v, want ErrNoSuchBucket", err)
			}
			return nil
		})

		changed := &Bucket{Name: "photos", Created: created, Region: "us-east-1", EncryptionOn: true,
			MasterKeyID: "mk-1", Replication: []byte("cfg")}
		update(t, db, func(tx *Txn) error { return tx.PutBucket(changed) })
		err = db.Update(ctx, func(tx *Txn) error { return tx.PutBucket(&Bucket{Name: "absent"}) })
		if !errors.Is(err, ErrNoSuchBucket) {
			t.Fatalf("PutBucket(absent) = %v, want ErrNoSuchBucket", err)
		}
		createBucket(t, db, "archive")
		createBucket(t, db, "zeta")

		view(t, db, func(tx *Txn) error {
			got, err := tx.GetBucket("photos")
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, changed) {
				t.Errorf("after PutBucket: %+v, want %+v", got, changed)
			}
			list, err := tx.ListBuckets()
			if err != nil {
				return err
			}
			var names []string
			for _, b := range list {
				names = append(names, b.Name)
			}
			if want := []string{"archive", "photos", "zeta"}; !slices.Equal(names, want) {
				t.Errorf("ListBuckets = %v, want %v", names, want)
			}
			return nil
		})

		putObjects(t, db, "photos", []string{"a.jpg"})
		err = db.Update(ctx, func(tx *Txn) error { return tx.DeleteBucket("photos") })
		if !errors.Is(err, ErrBucketNotEmpty) {
			t.Fatalf("DeleteBucket(non-empty) = %v, want ErrBucketNotEmpty", err)
		}
		update(t, db, func(tx *Txn) error { return tx.DeleteObject("photos", "a.jpg") })
		update(t, db, func(tx *Txn) error { return tx.DeleteBucket("photos") })
		err = db.Update(ctx, func(tx *Txn) error { return tx.DeleteBucket("photos") })
		if !errors.Is(err, ErrNoSuchBucket) {
			t.Fatalf("DeleteBucket(deleted) = %v, want ErrNoSuchBucket", err)
		}
		view(t, db, func(tx *Txn) error {
			if _, err := tx.GetBucket("photos"); !errors.Is(err, ErrNoSuchBucket) {
				t.Errorf("GetBucket after delete = %v, want ErrNoSuchBucket", err)
			}
			return nil
		})
	})
}

func TestObjectCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		createBucket(t, db, "bkt")
		want := fullObject()
		want.Bucket, want.Key = "bkt", "dir/é/file.txt"
		want.FormatVersion = 0 // PutObject sets it
		update(t, db, func(tx *Txn) error { return tx.PutObject(want) })
		if want.FormatVersion != FormatVersion {
			t.Fatalf("PutObject left FormatVersion %d", want.FormatVersion)
		}
		view(t, db, func(tx *Txn) error {
			got, err := tx.GetObject("bkt", "dir/é/file.txt")
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GetObject:\n got %+v\nwant %+v", got, want)
			}
			if _, err := tx.GetObject("bkt", "dir"); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("GetObject(dir) = %v, want ErrNoSuchKey", err)
			}
			if _, err := tx.GetObject("bkt", "a\x00b"); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("GetObject(NUL key) = %v, want ErrNoSuchKey", err)
			}
			if got, err := tx.GetObjectInBucket("bkt", "dir/é/file.txt"); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("GetObjectInBucket = %+v, %v; want %+v", got, err, want)
			}
			if _, err := tx.GetObjectInBucket("bkt", "dir"); !errors.Is(err, ErrNoSuchKey) || errors.Is(err, ErrNoSuchBucket) {
				t.Errorf("GetObjectInBucket(dir) = %v, want ErrNoSuchKey", err)
			}
			if _, err := tx.GetObjectInBucket("nobkt", "dir/é/file.txt"); !errors.Is(err, ErrNoSuchBucket) {
				t.Errorf("GetObjectInBucket(nobkt) = %v, want ErrNoSuchBucket", err)
			}
			for _, p := range []string{"", "dir/", "dir/é/file.txt"} {
				if has, err := tx.HasObjects("bkt", p); err != nil || !has {
					t.Errorf("HasObjects(%q) = %v, %v; want true", p, has, err)
				}
			}
			if has, err := tx.HasObjects("bkt", "dir/x"); err != nil || has {
				t.Errorf("HasObjects(dir/x) = %v, %v; want false", has, err)
			}
			n, size, err := tx.CountObjects("bkt")
			if err != nil || n != 1 || size != want.Size {
				t.Errorf("CountObjects = %d, %d, %v; want 1, %d", n, size, err, want.Size)
			}
			return nil
		})

		for _, key := range []string{"", "x\x00y", "bad\xff", strings.Repeat("k", MaxKeyLen+1)} {
			err := db.Update(ctx, func(tx *Txn) error { return tx.PutObject(&Object{Bucket: "bkt", Key: key}) })
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("PutObject(%q) = %v, want ErrInvalidKey", key, err)
			}
		}

		// Overwrite, then delete.
		update(t, db, func(tx *Txn) error {
			return tx.PutObject(&Object{Bucket: "bkt", Key: "dir/é/file.txt", Size: 3, ETag: `"x"`})
		})
		view(t, db, func(tx *Txn) error {
			got, err := tx.GetObject("bkt", "dir/é/file.txt")
			if err != nil {
				return err
			}
			if got.Size != 3 || got.ETag != `"x"` || got.Encryption != nil || got.Blobs != nil {
				t.Errorf("after overwrite: %+v", got)
			}
			return nil
		})
		update(t, db, func(tx *Txn) error { return tx.DeleteObject("bkt", "dir/é/file.txt") })
		err := db.Update(ctx, func(tx *Txn) error { return tx.DeleteObject("bkt", "dir/é/file.txt") })
		if !errors.Is(err, ErrNoSuchKey) {
			t.Fatalf("second DeleteObject = %v, want ErrNoSuchKey", err)
		}
		view(t, db, func(tx *Txn) error {
			if has, err := tx.HasObjects("bkt", ""); err != nil || has {
				t.Errorf("HasObjects after delete = %v, %v", has, err)
			}
			return nil
		})
	})
}

func TestInline(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		small, big := ObjectID{1}, ObjectID{2}
		smallData := []byte("tiny object")
		bigData := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB: lands in the value log
		update(t, db, func(tx *Txn) error {
			if err := tx.PutInline(small, smallData); err != nil {
				return err
			}
			return tx.PutInline(big, bigData)
		})
		var got []byte
		view(t, db, func(tx *Txn) error {
			var err error
			if got, err = tx.GetInline(small); err != nil {
				return err
			}
			if !bytes.Equal(got, smallData) {
				t.Errorf("GetInline(small) = %q", got)
			}
			b, err := tx.GetInline(big)
			if err != nil {
				return err
			}
			if !bytes.Equal(b, bigData) {
				t.Errorf("GetInline(big) differs")
			}
			_, err = tx.GetInline(ObjectID{3})
			if !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("GetInline(absent) = %v, want ErrNoSuchKey", err)
			}
			return nil
		})
		// The copy outlives the transaction.
		if !bytes.Equal(got, smallData) {
			t.Fatalf("inline copy changed after the transaction: %q", got)
		}
		update(t, db, func(tx *Txn) error { return tx.DeleteInline(small) })
		update(t, db, func(tx *Txn) error { return tx.DeleteInline(small) }) // absent: no error
		view(t, db, func(tx *Txn) error {
			if _, err := tx.GetInline(small); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("GetInline after delete = %v, want ErrNoSuchKey", err)
			}
			return nil
		})
	})
}

func TestUploadsAndParts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		createBucket(t, db, "bkt")

		// Three uploads of "b", one of "a", one of "a/b", one of "c".
		type uk struct{ key, id string }
		var made []uk
		for _, key := range []string{"b", "a", "b", "a/b", "c", "b"} {
			u := &Upload{Bucket: "bkt", Key: key, ID: NewUploadID(), ObjectID: NewObjectID(),
				Initiated: time.Now().UTC().Truncate(time.Second), ChecksumAlgorithm: "CRC32"}
			update(t, db, func(tx *Txn) error { return tx.PutUpload(u) })
			made = append(made, uk{key: key, id: u.ID})
		}
		slices.SortStableFunc(made, func(x, y uk) int {
			if c := strings.Compare(x.key, y.key); c != 0 {
				return c
			}
			return strings.Compare(x.id, y.id)
		})

		listAll := func(opts UploadListOptions) []uk {
			var out []uk
			for {
				var page *UploadPage
				view(t, db, func(tx *Txn) (err error) {
					page, err = tx.ListUploads("bkt", opts)
					return err
				})
				for _, u := range page.Uploads {
					out = append(out, uk{key: u.Key, id: u.ID})
				}
				if !page.IsTruncated {
					return out
				}
				opts.KeyMarker, opts.UploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
			}
		}
		if got := listAll(UploadListOptions{}); !reflect.DeepEqual(got, made) {
			t.Fatalf("ListUploads = %v, want %v", got, made)
		}
		if got := listAll(UploadListOptions{MaxUploads: 2}); !reflect.DeepEqual(got, made) {
			t.Fatalf("ListUploads by 2 = %v, want %v", got, made)
		}
		if got := listAll(UploadListOptions{Prefix: "a"}); !reflect.DeepEqual(got, made[:2]) {
			t.Fatalf("ListUploads(prefix a) = %v, want %v", got, made[:2])
		}
		if got := listAll(UploadListOptions{KeyMarker: "a/b"}); !reflect.DeepEqual(got, made[2:]) {
			t.Fatalf("ListUploads(after a/b) = %v, want %v", got, made[2:])
		}
		// made[2:5] are the uploads of "b": start after the first of them.
		if got := listAll(UploadListOptions{KeyMarker: "b", UploadIDMarker: made[2].id}); !reflect.DeepEqual(got, made[3:]) {
			t.Fatalf("ListUploads(after b/%s) = %v, want %v", made[2].id, got, made[3:])
		}

		up := made[2]
		for _, n := range []int32{3, 1, 2, 10} {
			p := &Part{Number: n, Blob: BlobRef{ID: NewBlobID(), Index: uint32(n), Size: 5 << 20},
				ETag: fmt.Sprintf(`"etag-%d"`, n), Size: 5 << 20, LastModified: time.Unix(1700000000, 0).UTC()}
			update(t, db, func(tx *Txn) error {
				if _, err := tx.GetUpload("bkt", up.key, up.id); err != nil {
					return err
				}
				return tx.PutPart(up.id, p)
			})
		}
		err := db.Update(ctx, func(tx *Txn) error { return tx.PutPart(up.id, &Part{Number: 0}) })
		if !errors.Is(err, ErrInvalidPartNumber) {
			t.Fatalf("PutPart(0) = %v, want ErrInvalidPartNumber", err)
		}
		// A part of another upload, which must survive.
		update(t, db, func(tx *Txn) error { return tx.PutPart(made[3].id, &Part{Number: 1, ETag: "other"}) })

		view(t, db, func(tx *Txn) error {
			p, err := tx.GetPart(up.id, 10)
			if err != nil {
				return err
			}
			if p.Number != 10 || p.ETag != `"etag-10"` || p.Blob.Index != 10 {
				t.Errorf("GetPart(10) = %+v", p)
			}
			if _, err := tx.GetPart(up.id, 4); !errors.Is(err, ErrNoSuchKey) {
				t.Errorf("GetPart(4) = %v, want ErrNoSuchKey", err)
			}
			nums := func(ps []*Part) (out []int32) {
				for _, p := range ps {
					out = append(out, p.Number)
				}
				return out
			}
			parts, trunc, err := tx.ListParts(up.id, 0, 0)
			if err != nil || trunc || !slices.Equal(nums(parts), []int32{1, 2, 3, 10}) {
				t.Errorf("ListParts(0,0) = %v, %v, %v", nums(parts), trunc, err)
			}
			parts, trunc, err = tx.ListParts(up.id, 1, 2)
			if err != nil || !trunc || !slices.Equal(nums(parts), []int32{2, 3}) {
				t.Errorf("ListParts(1,2) = %v, %v, %v", nums(parts), trunc, err)
			}
			parts, trunc, err = tx.ListParts(up.id, 3, 1)
			if err != nil || trunc || !slices.Equal(nums(parts), []int32{10}) {
				t.Errorf("ListParts(3,1) = %v, %v, %v", nums(parts), trunc, err)
			}
			got, err := tx.GetUpload("bkt", up.key, up.id)
			if err != nil {
				return err
			}
			if got.Key != up.key || got.ID != up.id || got.ChecksumAlgorithm != "CRC32" || got.ObjectID.IsZero() {
				t.Errorf("GetUpload = %+v", got)
			}
			if _, err := tx.GetUpload("bkt", up.key, "nope"); !errors.Is(err, ErrNoSuchUpload) {
				t.Errorf("GetUpload(nope) = %v, want ErrNoSuchUpload", err)
			}
			return nil
		})

		update(t, db, func(tx *Txn) error { return tx.DeleteUpload("bkt", up.key, up.id) })
		err = db.Update(ctx, func(tx *Txn) error { return tx.DeleteUpload("bkt", up.key, up.id) })
		if !errors.Is(err, ErrNoSuchUpload) {
			t.Fatalf("second DeleteUpload = %v, want ErrNoSuchUpload", err)
		}
		view(t, db, func(tx *Txn) error {
			parts, _, err := tx.ListParts(up.id, 0, 0)
			if err != nil || len(parts) != 0 {
				t.Errorf("parts after DeleteUpload: %d, %v", len(parts), err)
			}
			if parts, _, err := tx.ListParts(made[3].id, 0, 0); err != nil || len(parts) != 1 {
				t.Errorf("other upload's parts: %d, %v", len(parts), err)
			}
			return nil
		})
		if got := listAll(UploadListOptions{}); len(got) != len(made)-1 || slices.Contains(got, up) {
			t.Fatalf("uploads after DeleteUpload: %v", got)
		}
	})
}

func TestDeleteBucketRemovesUploads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "doomed")
		createBucket(t, db, "kept")
		var ids []string
		for _, b := range []string{"doomed", "doomed", "kept"} {
			u := &Upload{Bucket: b, Key: "big.iso", ID: NewUploadID()}
			update(t, db, func(tx *Txn) error {
				if err := tx.PutUpload(u); err != nil {
					return err
				}
				return tx.PutPart(u.ID, &Part{Number: 1, Blob: BlobRef{ID: NewBlobID()}})
			})
			ids = append(ids, u.ID)
		}
		update(t, db, func(tx *Txn) error { return tx.DeleteBucket("doomed") })
		createBucket(t, db, "doomed") // a new bucket of the same name starts empty
		view(t, db, func(tx *Txn) error {
			page, err := tx.ListUploads("doomed", UploadListOptions{})
			if err != nil || len(page.Uploads) != 0 {
				t.Errorf("uploads of deleted bucket: %v, %v", page, err)
			}
			for _, id := range ids[:2] {
				if parts, _, err := tx.ListParts(id, 0, 0); err != nil || len(parts) != 0 {
					t.Errorf("parts of deleted upload %s: %d, %v", id, len(parts), err)
				}
			}
			page, err = tx.ListUploads("kept", UploadListOptions{})
			if err != nil || len(page.Uploads) != 1 {
				t.Errorf("uploads of other bucket: %v, %v", page, err)
			}
			if parts, _, err := tx.ListParts(ids[2], 0, 0); err != nil || len(parts) != 1 {
				t.Errorf("parts of other bucket's upload: %d, %v", len(parts), err)
			}
			return nil
		})
	})
}

// Two Updates that read and write the same key at the same time: the one
// that commits second conflicts, runs again on a snapshot that sees the
// first, and both increments land.
func TestUpdateStopsWhenContextEnds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		err := db.Update(ctx, func(tx *Txn) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Fatalf("Update with ended context = %v (ran %v), want context.Canceled", err, ran)
		}
	})
}

func TestUpdateBulkSplitsTooBigTransactions(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	createBucket(t, db, "bulk")
	const n = 50000
	value := bytes.Repeat([]byte{'v'}, 1024)
	tooBig := 0
	applied := make([]int, n)
	err := db.UpdateBulk(ctx, n, func(tx *Txn, i int) error {
		applied[i]++
		var id ObjectID
		id[0], id[1], id[2] = byte(i>>16), byte(i>>8), byte(i)
		err := tx.PutInline(id, value)
		if errors.Is(err, ErrTxnTooBig) {
			tooBig++
		}
		return err
	})
	if err != nil {
		t.Fatalf("UpdateBulk: %v", err)
	}
	if tooBig == 0 {
		t.Fatalf("no transaction grew too big; the test does not exercise the split")
	}
	for i, a := range applied {
		// Applied once, or twice when its transaction was replayed, or
		// three times when it was also the item that did not fit.
		if a < 1 || a > 3 {
			t.Fatalf("item %d applied %d times", i, a)
		}
	}
	view(t, db, func(tx *Txn) error {
		for i := range n {
			var id ObjectID
			id[0], id[1], id[2] = byte(i>>16), byte(i>>8), byte(i)
			got, err := tx.GetInline(id)
			if err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
			if !bytes.Equal(got, value) {
				return fmt.Errorf("item %d: wrong value", i)
			}
		}
		return nil
	})

	// One item too big for a transaction of its own.
	err = db.UpdateBulk(ctx, 1, func(tx *Txn, i int) error {
		for j := range 10000 {
			if err := tx.PutInline(ObjectID{0xff, byte(j >> 8), byte(j)}, value); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrTxnTooBig) {
		t.Fatalf("UpdateBulk of one huge item = %v, want ErrTxnTooBig", err)
	}
	view(t, db, func(tx *Txn) error {
		if _, err := tx.GetInline(ObjectID{0xff, 0, 0}); !errors.Is(err, ErrNoSuchKey) {
			t.Errorf("a part of the refused item landed: %v", err)
		}
		return nil
	})
}

func TestForEachBlobRef(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		createBucket(t, db, "bkt")
		objBlobs := []BlobID{NewBlobID(), NewBlobID(), NewBlobID()}
		partBlobs := []BlobID{NewBlobID(), NewBlobID()}
		u := &Upload{Bucket: "bkt", Key: "mp", ID: NewUploadID()}
		update(t, db, func(tx *Txn) error {
			if err := tx.PutObject(&Object{Bucket: "bkt", Key: "one", Blobs: []BlobRef{{ID: objBlobs[0]}}}); err != nil {
				return err
			}
			if err := tx.PutObject(&Object{Bucket: "bkt", Key: "two", Blobs: []BlobRef{
				{ID: objBlobs[1], Index: 1}, {ID: objBlobs[2], Index: 2}}}); err != nil {
				return err
			}
			if err := tx.PutObject(&Object{Bucket: "bkt", Key: "inline", Inline: true}); err != nil {
				return err
			}
			if err := tx.PutUpload(u); err != nil {
				return err
			}
			for i, b := range partBlobs {
				if err := tx.PutPart(u.ID, &Part{Number: int32(i + 1), Blob: BlobRef{ID: b, Index: uint32(i + 1)}}); err != nil {
					return err
				}
			}
			return nil
		})
		var got []BlobID
		if err := db.ForEachBlobRef(ctx, func(id BlobID) error { got = append(got, id); return nil }); err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(objBlobs), partBlobs...)
		cmp := func(a, b BlobID) int { return bytes.Compare(a[:], b[:]) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) {
			t.Fatalf("ForEachBlobRef = %v, want %v", got, want)
		}
		stop := errors.New("stop")
		if err := db.ForEachBlobRef(ctx, func(BlobID) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("ForEachBlobRef's callback error: got %v", err)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	putObjects(t, db, "bkt", []string{"a", "b/c"})
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	db = openAt(t, dir)
	view(t, db, func(tx *Txn) error {
		if _, err := tx.GetBucket("bkt"); err != nil {
			return err
		}
		page, err := tx.List("bkt", ListOptions{})
		if err != nil {
			return err
		}
		if len(page.Objects) != 2 || page.Objects[0].Key != "a" || page.Objects[1].Key != "b/c" {
			t.Errorf("after reopen: %+v", page.Objects)
		}
		return nil
	})
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	db, err := Open(t.TempDir(), Options{GCInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	time.Sleep(20 * time.Millisecond) // let the GC loop run a few rounds
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var after int
	for range 200 {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
}

// Many concurrent Updates all commit and are all there after a reopen.
func TestConcurrentUpdates(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	createBucket(t, db, "bkt")
	var wg sync.WaitGroup
	errs := make(chan error, 16*20)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				errs <- db.Update(context.Background(), func(tx *Txn) error {
					return tx.PutObject(&Object{Bucket: "bkt", Key: fmt.Sprintf("g%02d/%02d", g, i)})
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, dir)
	view(t, db, func(tx *Txn) error {
		n, _, err := tx.CountObjects("bkt")
		if err != nil || n != 16*20 {
			t.Errorf("CountObjects = %d, %v; want %d", n, err, 16*20)
		}
		return nil
	})
}

// A waiter needs a sync that started after it arrived: one already running
// does not count.
func TestSyncerWaitsForALaterSync(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan int, 4)
	var s syncer
	calls := 0
	s.fn = func() error {
		calls++
		entered <- calls
		if calls == 1 {
			<-release
		}
		return nil
	}
	first := make(chan error)
	go func() { first <- s.wait() }()
	if n := <-entered; n != 1 {
		t.Fatalf("first sync is call %d", n)
	}
	second := make(chan error)
	go func() { second <- s.wait() }()
	// The second waiter arrived while sync 1 runs; wait until it is queued.
	s.awaitWaiters(1)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != 2 {
		t.Fatalf("second waiter returned after %d syncs, want 2", s.done)
	}
}

// A commit that reaches the group commit after a leader has claimed the
// next sync, but before that sync starts, shares it: one sync for both.
func TestSyncerGathersBeforeItStarts(t *testing.T) {
	var s syncer
	calls := 0
	s.fn = func() error { calls++; return nil }
	second := make(chan error, 1)
	gathered := 0
	s.gather = func() {
		gathered++
		if gathered > 1 {
			return
		}
		// The leader has claimed the sync and not started it: a second
		// commit arrives now and queues.
		go func() { second <- s.wait() }()
		s.awaitWaiters(1)
	}
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if gathered == 0 {
		t.Fatal("the leader started its sync without gathering")
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if calls != 1 || gathered != 1 {
		t.Fatalf("two commits, the second arriving before the sync started: %d syncs (%d gathers), want 1", calls, gathered)
	}
}

// awaitWaiters returns once n waiters are queued on s.
func (s *syncer) awaitWaiters(n int) {
	for {
		s.mu.Lock()
		queued := s.waiting == n
		s.mu.Unlock()
		if queued {
			return
		}
		runtime.Gosched()
	}
}

// syncAll relies on the name Badger gives its memtable write-ahead logs.
func TestWALFileNames(t *testing.T) {
	dir := t.TempDir()
	db := openAt(t, dir)
	createBucket(t, db, "bkt")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), walSuffix) {
			return
		}
	}
	t.Fatalf("no *%s file in %s: Badger renamed its write-ahead logs; fix syncWALs", walSuffix, dir)
}

// TestWithoutSync: a deferred commit is visible at once, survives a clean
// close, and Sync runs a sync that started after it.
func TestWithoutSync(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	syncs := 0
	inner := badgerOf(t, db).syncer.fn
	badgerOf(t, db).syncer.fn = func() error { syncs++; return inner() }
	ctx := WithoutSync(context.Background())
	if err := db.Update(ctx, func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "deferred"}) }); err != nil {
		t.Fatal(err)
	}
	if syncs != 0 {
		t.Fatalf("a deferred commit waited for %d syncs", syncs)
	}
	if err := db.View(context.Background(), func(tx *Txn) error { _, err := tx.GetBucket("deferred"); return err }); err != nil {
		t.Fatalf("deferred commit not visible: %v", err)
	}
	if err := db.Sync(); err != nil || syncs != 1 {
		t.Fatalf("Sync: %v, %d syncs", err, syncs)
	}
	if err := db.Update(context.Background(), func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "synced"}) }); err != nil || syncs != 2 {
		t.Fatalf("a plain Update did not sync: %v, %d", err, syncs)
	}
	db.Close()
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(context.Background(), func(tx *Txn) error { _, err := tx.GetBucket("deferred"); return err }); err != nil {
		t.Fatalf("deferred commit lost across a clean close: %v", err)
	}
}

// badgerOf returns db's Badger engine, for tests of Badger-only machinery.
func badgerOf(t testing.TB, db *DB) *badgerKV {
	t.Helper()
	kv, ok := db.kv.(*badgerKV)
	if !ok {
		t.Fatalf("not a Badger store: %T", db.kv)
	}
	return kv
}

// TestObserveCommit: every try of an Update or UpdateBulk reports its
// phases in order, each with the time it took; the sync phase is reported
// only for a commit that waits to be durable, and nothing past the body
// for a transaction whose function failed.
func TestObserveCommit(t *testing.T) {
	type seen struct {
		p CommitPhase
		d time.Duration
	}
	var mu sync.Mutex
	var got []seen
	db, err := Open(t.TempDir(), Options{ObserveCommit: func(p CommitPhase, d time.Duration) {
		mu.Lock()
		got = append(got, seen{p, d})
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Long enough that begin and commit, which have no pause of their own,
	// stay below it on a loaded machine.
	const pause = 150 * time.Millisecond
	inner := badgerOf(t, db).syncer.fn
	badgerOf(t, db).syncer.fn = func() error { time.Sleep(pause); return inner() }
	take := func() []seen {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	check := func(what string, want ...CommitPhase) []seen {
		t.Helper()
		s := take()
		var phases []CommitPhase
		for _, x := range s {
			phases = append(phases, x.p)
		}
		if !slices.Equal(phases, want) {
			t.Fatalf("%s: phases %v, want %v", what, phases, want)
		}
		return s
	}
	ctx := context.Background()

	err = db.Update(ctx, func(tx *Txn) error {
		time.Sleep(pause)
		return tx.CreateBucket(&Bucket{Name: "phase-a"})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := check("Update", PhaseBegin, PhaseBody, PhaseCommit, PhaseSync)
	if s[1].d < pause || s[3].d < pause {
		t.Errorf("Update: body %v and sync %v, want each at least %v", s[1].d, s[3].d, pause)
	}
	if s[0].d >= pause || s[2].d >= pause {
		t.Errorf("Update: begin %v and commit %v took the pauses of other phases", s[0].d, s[2].d)
	}

	if err := db.Update(WithoutSync(ctx), func(tx *Txn) error { return tx.CreateBucket(&Bucket{Name: "phase-b"}) }); err != nil {
		t.Fatal(err)
	}
	check("Update without sync", PhaseBegin, PhaseBody, PhaseCommit)

	failed := errors.New("refused")
	if err := db.Update(ctx, func(tx *Txn) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("failing Update: %v", err)
	}
	check("failing Update", PhaseBegin, PhaseBody)

	err = db.UpdateBulk(ctx, 3, func(tx *Txn, i int) error {
		return tx.CreateBucket(&Bucket{Name: fmt.Sprintf("bulk%d", i)})
	})
	if err != nil {
		t.Fatal(err)
	}
	check("UpdateBulk", PhaseBegin, PhaseBody, PhaseCommit, PhaseSync)

	if names := []string{PhaseBegin.String(), PhaseBody.String(), PhaseCommit.String(), PhaseSync.String()}; !slices.Equal(names, []string{"begin", "body", "commit", "sync"}) {
		t.Errorf("phase names %v", names)
	}
	if len(CommitPhases()) != int(numCommitPhases) {
		t.Errorf("CommitPhases lists %d of %d", len(CommitPhases()), numCommitPhases)
	}
}
