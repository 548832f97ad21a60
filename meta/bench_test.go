package meta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkUpdateParallel runs small durable Updates from 16 goroutines,
// synced by the group commit (the default) and by Badger's own SyncWrites.
func BenchmarkUpdateParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{name: "group-commit", opts: Options{}},
		{name: "badger-sync-writes", opts: Options{syncWrites: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			db, err := Open(b.TempDir(), bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			createBucket(b, db, "bkt")
			const workers = 16
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
	}
}

// BenchmarkSyncedUpdateManyFiles runs small durable Updates one after
// another in a store whose directory holds few files, 110 more (a store
// of 60,000 small files held 111 tables) and 2,000 more: what each sync
// costs beyond the write-ahead log's fdatasync should not grow with the
// directory.
func BenchmarkSyncedUpdateManyFiles(b *testing.B) {
	for _, extra := range []int{0, 110, 2000} {
		b.Run(fmt.Sprintf("files=%d", extra), func(b *testing.B) {
			dir := b.TempDir()
			db, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for i := range extra {
				// Names Badger does not own, so it leaves them alone.
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("pad-%05d", i)), nil, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				err := db.Update(context.Background(), func(tx *Txn) error {
					return tx.PutConfig(fmt.Sprintf("k%09d", i), []byte("v"))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
