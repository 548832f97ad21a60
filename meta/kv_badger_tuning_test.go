package meta

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// TestBuilderBuffersAreNotKept: once a memtable flush has built its table,
// the buffers of the build are not held in Badger's allocator pool
// (releaseBuilderBuffers). Badger alone keeps the flush's allocator there
// for at least two seconds, and under steady writes for good.
func TestBuilderBuffersAreNotKept(t *testing.T) {
	db := openTest(t)
	kv := badgerOf(t, db)
	ch, err := allocatorPool(kv.bdb)
	if err != nil {
		t.Fatal(err)
	}

	// Sealed-like (random) values of 8 KiB, past one memtable's worth.
	val := make([]byte, 8<<10)
	for i := 0; i < (memTableSize*3/2)/len(val); i++ {
		rand.Read(val)
		err := kv.bdb.Update(func(txn *badger.Txn) error {
			return txn.Set(fmt.Appendf(nil, "k%06d", i), val)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(kv.bdb.Tables()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no memtable was flushed to a table within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The drain may be busy releasing one allocator when the next comes
	// back, so one is let pass for a moment; Badger alone keeps it for
	// two seconds or more.
	held := 0
	for range 50 {
		if n := len(ch); n > 0 {
			if held++; held == 3 {
				t.Fatalf("Badger's allocator pool holds %d allocators after a table build", n)
			}
		} else {
			held = 0
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTablesAreNotCompressed: sealfs writes Badger's tables without block
// compression (what it stores is mostly ciphertext, MACs and random ids),
// and a data directory whose tables an older sealfs wrote compressed
// (Snappy, Badger's default) still reads.
func TestTablesAreNotCompressed(t *testing.T) {
	dir := t.TempDir()
	val := func(i int) []byte {
		v := make([]byte, 8<<10)
		for j := range v {
			v[j] = byte(i*31 + j*7)
		}
		return v
	}
	// An older data directory: one table, Snappy-compressed.
	old, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	const oldKeys = 100
	for i := range oldKeys {
		if err := old.Update(func(txn *badger.Txn) error { return txn.Set(fmt.Appendf(nil, "old%04d", i), val(i)) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	if got := tableCompressions(t, dir); got[options.Snappy] == 0 {
		t.Fatalf("the older directory's tables: %v, want Snappy ones", got)
	}

	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv := badgerOf(t, db)
	err = kv.bdb.View(func(txn *badger.Txn) error {
		for i := range oldKeys {
			item, err := txn.Get(fmt.Appendf(nil, "old%04d", i))
			if err != nil {
				return err
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(v, val(i)) {
				return fmt.Errorf("old%04d reads other bytes", i)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		t.Fatalf("reading a compressed table: %v", err)
	}
	for i := range oldKeys {
		err := kv.bdb.Update(func(txn *badger.Txn) error { return txn.Set(fmt.Appendf(nil, "new%04d", i), val(i)) })
		if err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	if got := tableCompressions(t, dir); got[options.None] == 0 {
		t.Fatalf("tables after sealfs wrote: %v, want uncompressed ones", got)
	}
}

// tableCompressions counts a closed Badger directory's tables by the
// compression its manifest records for them.
func tableCompressions(t *testing.T, dir string) map[options.CompressionType]int {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	out := map[options.CompressionType]int{}
	for _, tm := range m.Tables {
		out[tm.Compression]++
	}
	return out
}
