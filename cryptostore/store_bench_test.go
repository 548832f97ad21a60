package cryptostore

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// Store benchmarks: compare them with BenchmarkRawAESGCM64MiB (the cipher
// alone over the same bytes) from the same run.

const bench64 = 64 << 20

// diskWritten returns the bytes this process has caused to be written to
// storage (/proc/self/io write_bytes; -1 where it cannot be read): a cost
// that load on the machine does not blur, unlike time.
func diskWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

func benchEnv(b *testing.B, encrypt bool) *testEnv {
	e := newEnv(b, func(c *Config) { c.CollectInterval = -1 })
	e.bucket(b, "bkt", encrypt)
	return e
}

func BenchmarkPut64MiB(b *testing.B) {
	for _, encrypt := range []bool{true, false} {
		b.Run(fmt.Sprintf("encrypted=%v", encrypt), func(b *testing.B) {
			e := benchEnv(b, encrypt)
			data := randBytes(bench64)
			b.SetBytes(bench64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k", Body: bytes.NewReader(data), Size: bench64}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPut1MiB is a medium object: a blob of its own, written through
// pipe and synced before the commit. The body is in memory before the
// timer starts, so B/op is what the store allocates per PUT.
func BenchmarkPut1MiB(b *testing.B) {
	for _, encrypt := range []bool{true, false} {
		b.Run(fmt.Sprintf("encrypted=%v", encrypt), func(b *testing.B) {
			e := benchEnv(b, encrypt)
			data := randBytes(1 << 20)
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: "k" + strconv.Itoa(i%4), Body: bytes.NewReader(data), Size: 1 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet64MiB(b *testing.B) {
	for _, encrypt := range []bool{true, false} {
		b.Run(fmt.Sprintf("encrypted=%v", encrypt), func(b *testing.B) {
			e := benchEnv(b, encrypt)
			e.put(b, "bkt", "k", randBytes(bench64))
			buf := make([]byte, 1<<20)
			b.SetBytes(bench64)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h, err := e.store.Open(ctx, "bkt", "k")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, h.Reader(0, h.Size()), buf); err != nil {
					b.Fatal(err)
				}
				h.Close()
			}
		})
	}
}

// BenchmarkPut4KiBParallel16: small objects from 16 goroutines, each Put
// durable when it returns (group commit shares the syncs).
func BenchmarkPut4KiBParallel16(b *testing.B) {
	for _, encrypt := range []bool{true, false} {
		b.Run(fmt.Sprintf("encrypted=%v", encrypt), func(b *testing.B) {
			e := benchEnv(b, encrypt)
			data := randBytes(4 << 10)
			var n atomic.Int64
			b.SetBytes(4 << 10)
			b.SetParallelism(8) // × GOMAXPROCS (2 here) = 16 goroutines
			w0 := diskWritten()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("small/%d", n.Add(1))
					if _, err := e.store.Put(ctx, &PutInput{Bucket: "bkt", Key: key, Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if w0 >= 0 {
				// The store's own writes, flushes and compactions
				// included (all in this process).
				b.ReportMetric(float64(diskWritten()-w0)/float64(b.N), "disk-B/op")
			}
		})
	}
}

func BenchmarkGet4KiBParallel16(b *testing.B) {
	e := benchEnv(b, true)
	data := randBytes(4 << 10)
	for i := 0; i < 1000; i++ {
		e.put(b, "bkt", fmt.Sprintf("small/%d", i), data)
	}
	var n atomic.Int64
	b.SetBytes(4 << 10)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4<<10)
		for pb.Next() {
			h, err := e.store.Open(ctx, "bkt", fmt.Sprintf("small/%d", n.Add(1)%1000))
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := h.ReadAt(buf, 0); err != nil && err != io.EOF {
				b.Error(err)
			}
			h.Close()
		}
	})
}
