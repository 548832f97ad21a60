package cryptostore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sealfs/sealfs/meta"
)

// The cost of record authentication on the paths that read or write many
// records: Head of each of 1000 keys, a List page of 1000, a 4 KiB Put.
// Compare with the same benchmarks on a sealfs without record MACs.

func benchRecordEnv(b *testing.B) *testEnv {
	e := newEnv(b, func(c *Config) { c.CollectInterval = -1 })
	e.bucket(b, "bench", true)
	for i := range 1000 {
		e.put(b, "bench", fmt.Sprintf("dir/key-%04d", i), []byte("small object"))
	}
	return e
}

func BenchmarkHead1000Keys(b *testing.B) {
	e := benchRecordEnv(b)
	for b.Loop() {
		for i := range 1000 {
			if _, err := e.store.Head(ctx, "bench", fmt.Sprintf("dir/key-%04d", i)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkList1000Keys(b *testing.B) {
	e := benchRecordEnv(b)
	for b.Loop() {
		page, err := e.store.List(ctx, "bench", meta.ListOptions{MaxKeys: 1000})
		if err != nil || len(page.Objects) != 1000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkPut4KiBEncrypted(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.CollectInterval = -1 })
	e.bucket(b, "bench", true)
	data := bytes.Repeat([]byte{'x'}, 4096)
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		if _, err := e.store.Put(ctx, &PutInput{Bucket: "bench", Key: fmt.Sprintf("k%d", i%256), Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRecordMACOpen is the CPU cost added to every record read: split
// off and check the MAC of a typical encrypted object's record.
func BenchmarkRecordMACOpen(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.CollectInterval = -1 })
	e.bucket(b, "bench", true)
	o := e.put(b, "bench", "some/key/of/usual/length.jpg", []byte("small object"))
	mac := newRecordMAC(bytes.Repeat([]byte{1}, 32))
	rec := make([]byte, 300) // an encrypted object's record is about this size
	key := []byte("o\x00bench\x00" + o.Key)
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	sum := mac.AppendMAC(nil, key, rec)
	for b.Loop() {
		if !mac.VerifyMAC(key, rec, sum) {
			b.Fatal("MAC does not verify")
		}
	}
}
