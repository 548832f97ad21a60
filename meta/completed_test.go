package meta

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestCompletedUploads stores, reads and sweeps completed-upload records on
// every engine.
func TestCompletedUploads(t *testing.T) {
	forEachEngineCore(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Microsecond)
		recs := []*CompletedUpload{
			{ID: "old-1", Bucket: "bkt", Key: "a/b", ObjectID: ObjectID{1}, Completed: now.Add(-2 * time.Hour), Parts: []byte{1, 2}},
			{ID: "old-2", Bucket: "bkt", Key: "c", ObjectID: ObjectID{2}, Completed: now.Add(-3 * time.Hour), Parts: []byte{3}},
			{ID: "new", Bucket: "bkt", Key: "d", ObjectID: ObjectID{3}, Completed: now, Parts: []byte{4}},
		}
		if err := db.Update(ctx, func(tx *Txn) error {
			for _, c := range recs {
				if err := tx.PutCompletedUpload(c); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := db.Update(ctx, func(tx *Txn) error { return tx.PutCompletedUpload(&CompletedUpload{ID: "bad\x00id"}) }); !errors.Is(err, ErrNoSuchUpload) {
			t.Fatalf("an upload id with NUL: %v, want ErrNoSuchUpload", err)
		}
		if err := db.View(ctx, func(tx *Txn) error {
			c, err := tx.GetCompletedUpload("old-1")
			if err != nil {
				return err
			}
			if c.ID != "old-1" || c.Bucket != "bkt" || c.Key != "a/b" || c.ObjectID != (ObjectID{1}) || !c.Completed.Equal(recs[0].Completed) || !bytes.Equal(c.Parts, []byte{1, 2}) {
				t.Errorf("GetCompletedUpload = %+v, want %+v", c, recs[0])
			}
			if _, err := tx.GetCompletedUpload("none"); !errors.Is(err, ErrNoSuchUpload) {
				t.Errorf("GetCompletedUpload(none) = %v, want ErrNoSuchUpload", err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// Sweep what completed over an hour ago, one at a time.
		cutoff := now.Add(-time.Hour)
		var total int
		for i := 0; ; i++ {
			var n int
			var more bool
			if err := db.Update(ctx, func(tx *Txn) (err error) {
				n, more, err = tx.DeleteCompletedUploads(cutoff, 1)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			total += n
			if !more {
				break
			}
			if i > 3 {
				t.Fatal("the sweep does not end")
			}
		}
		if total != 2 {
			t.Fatalf("swept %d records, want 2", total)
		}
		if err := db.View(ctx, func(tx *Txn) error {
			if _, err := tx.GetCompletedUpload("old-2"); !errors.Is(err, ErrNoSuchUpload) {
				t.Errorf("an expired record survived the sweep: %v", err)
			}
			_, err := tx.GetCompletedUpload("new")
			return err
		}); err != nil {
			t.Fatalf("the recent record: %v", err)
		}
	})
}
