package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// BenchmarkAuditRecord: what a key use costs the request that makes it,
// 16 at once (as 16 clients' GETs): queued for the background writer, and,
// for comparison, a JSON line written to the file under a lock at once
// (how the log was written before).
func BenchmarkAuditRecord(b *testing.B) {
	u := cryptostore.KeyUse{Time: time.Now().UTC(), User: "reader", Action: "kms:Decrypt", KeyID: "7c0e6f1c-6d3b-4f7e-9a51-1d2c3b4a5f60",
		KeyARN: "arn:aws:kms:us-east-1:000000000000:key/7c0e6f1c-6d3b-4f7e-9a51-1d2c3b4a5f60", Bucket: "photos", Object: "9d3f0a1b2c3d4e5f60718293a4b5c6d7"}
	open := func(b *testing.B) *os.File {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "key-use.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		return f
	}
	b.Run("queued", func(b *testing.B) {
		a := &auditLog{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		a.start(open(b), auditQueue, auditFlushEvery)
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a.record(u)
			}
		})
		b.StopTimer()
		a.Close()
	})
	b.Run("synchronous", func(b *testing.B) {
		f := open(b)
		defer f.Close()
		var mu sync.Mutex
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := auditRecord{Time: u.Time, User: u.User, Action: u.Action, KeyID: u.KeyID, KeyARN: u.KeyARN, Bucket: u.Bucket, Object: u.Object, Result: "allowed"}
				line, _ := json.Marshal(r)
				mu.Lock()
				f.Write(append(line, '\n'))
				mu.Unlock()
			}
		})
	})
}
