package replicate

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/meta"
)

// BenchmarkCommitHook compares a 4 KiB PutObject commit in a bucket
// without a replication rule and in one whose rule queues every write (the
// hook's work: a sequence number, the queue index read, two records
// written in the same transaction). Nothing is sent: no workers run.
func BenchmarkCommitHook(b *testing.B) {
	for _, rule := range []bool{false, true} {
		name := "no-rule"
		if rule {
			name = "rule"
		}
		b.Run(name, func(b *testing.B) {
			r := newRegion(b, "us-east-1", nil)
			r.mgr.store.Store(r.store) // no Start: nothing is sent
			if err := r.store.CreateBucket(ctx, "src", ""); err != nil {
				b.Fatal(err)
			}
			if rule {
				if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: "https://127.0.0.1:1", AccessKey: "a", SecretKey: "s"}); err != nil {
					b.Fatal(err)
				}
				if _, err := r.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst"}); err != nil {
					b.Fatal(err)
				}
			}
			data := bytes.Repeat([]byte("x"), 4<<10)
			b.SetBytes(int64(len(data)))
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("k/%x", randBytes(8))
					if _, err := r.store.Put(ctx, &cryptostore.PutInput{Bucket: "src", Key: key, Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReplicate4KiB measures the drain rate of the queue: 4 KiB
// objects from a plain source bucket to an encrypting target bucket over
// HTTPS on loopback, two workers (the daemon's default is four).
func BenchmarkReplicate4KiB(b *testing.B) {
	p := newPair(b, false, true, nil, nil)
	data := bytes.Repeat([]byte("y"), 4<<10)
	p.src.mgr.Close() // queue everything first, then time the drain alone
	for i := range b.N {
		p.src.put(b, "src", fmt.Sprintf("k/%08d", i), data, meta.ObjectMeta{})
	}
	m, err := New(p.src.mgr.cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	m.Start(p.src.store)
	waitFor(b, "the queue to drain", func() bool { return len(p.src.queue(b)) == 0 })
}
