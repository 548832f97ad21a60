package cryptostore

import (
	"errors"
	"os"
	"sync"
	"testing"
)

// Concurrent reads that all hit a damaged chunk each report it, and the
// handle logs it once without a data race on its "logged" flag (item 10 of
// issue 9: the flag was written without the handle's lock). Run with -race.
func TestHandleCorruptConcurrentReads(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ChunkSize = 1024; c.InlineMax = -1 })
	e.bucket(t, "bkt", true)
	o := e.put(t, "bkt", "k", randBytes(8*1024))
	path := e.store.blobs.path(o.Blobs[0].ID)
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-20] ^= 1 // in the last chunk
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := e.store.Open(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 100)
			_, errs[i] = h.ReadAt(buf, 8*1024-200)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrCorruptBlob) {
			t.Errorf("reader %d: %v, want ErrCorruptBlob", i, err)
		}
	}
}
