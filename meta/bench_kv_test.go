package meta

import (
	"context"
	"fmt"
	"testing"
)

// The transaction hot path without the disk: a View reading one object,
// and an Update writing one without waiting for the sync (the CPU cost of
// a commit). Compare them across changes of the engine layer.

func BenchmarkGetObject(b *testing.B) {
	db := openTest(b)
	createBucket(b, db, "bkt")
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("dir/file%05d", i)
	}
	putObjects(b, db, "bkt", keys)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		i++
		err := db.View(ctx, func(tx *Txn) error {
			_, err := tx.GetObject("bkt", k)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutObjectWithoutSync(b *testing.B) {
	db := openTest(b)
	createBucket(b, db, "bkt")
	ctx := WithoutSync(context.Background())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		err := db.Update(ctx, func(tx *Txn) error {
			return tx.PutObject(&Object{Bucket: "bkt", Key: fmt.Sprintf("k%09d", i), Size: int64(i), ETag: `"0123456789abcdef0123456789abcdef"`})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
