package meta

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
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
