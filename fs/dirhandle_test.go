package fs

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

// TestDirCookies: a listing of more than one store page, read partly by
// one handle and finished by another after names before and after the
// place were removed, lists every name that existed throughout exactly
// once; a seek back to an earlier page's cookie goes on after that entry;
// and an unknown cookie starts the listing again.
func TestDirCookies(t *testing.T) {
	ctx := context.Background()
	s, dir := newTestStore(t)
	f := newFS(Options{Store: s, DataDir: dir})
	const n = listPage + listPage/2
	var keys []string
	for i := range n {
		key := fmt.Sprintf("k%04d", i)
		if i%100 == 7 {
			key = fmt.Sprintf("k%04d/inner", i) // a directory
		}
		keys = append(keys, key)
		if _, err := s.Put(ctx, &cryptostore.PutInput{Bucket: "bkt", Key: key, Body: strings.NewReader("x"), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	name := func(key string) string { n, _, _ := strings.Cut(key, "/"); return n }
	open := func() *dirHandle {
		h, errno := openBucketDir(ctx, f)
		if errno != 0 {
			t.Fatal(errno)
		}
		return h
	}
	type ent struct {
		name string
		off  uint64
	}
	read := func(h *dirHandle, max int) []ent {
		t.Helper()
		var got []ent
		for max < 0 || len(got) < max {
			e, errno := h.Readdirent(ctx)
			if errno != 0 {
				t.Fatal(errno)
			}
			if e == nil {
				break
			}
			got = append(got, ent{e.Name, e.Off})
		}
		return got
	}

	h1 := open()
	first := read(h1, listPage+200) // ".", "..", and into the second page
	if first[0].name != "." || first[1].name != ".." || first[2].name != name(keys[0]) {
		t.Fatalf("listing starts %v", first[:3])
	}
	place := first[len(first)-1]
	for _, i := range []int{0, 1, 7, 500, listPage + 300, n - 1} { // before and after the place
		if err := s.Delete(ctx, "bkt", keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	gone := map[string]bool{name(keys[0]): true, name(keys[1]): true, name(keys[7]): true, name(keys[500]): true, name(keys[listPage+300]): true, name(keys[n-1]): true}

	h2 := open()
	if errno := h2.Seekdir(ctx, place.off); errno != 0 {
		t.Fatal(errno)
	}
	seen := map[string]int{}
	for _, e := range append(first, read(h2, -1)...) {
		seen[e.name]++
	}
	for _, key := range keys {
		if nm := name(key); !gone[nm] && seen[nm] != 1 {
			t.Errorf("%s listed %d times across the two handles, want once", nm, seen[nm])
		}
	}
	if seen[name(keys[listPage+300])] != 0 || seen[name(keys[n-1])] != 0 {
		t.Errorf("names removed after the place were listed")
	}

	// Back to a cookie of the first page, on the handle that is now past it.
	back := first[100]
	if errno := h1.Seekdir(ctx, back.off); errno != 0 {
		t.Fatal(errno)
	}
	if got := read(h1, 1); len(got) != 1 || got[0] != first[101] {
		t.Errorf("after a seek to %s's cookie: %v, want %v", back.name, got, first[101])
	}
	// A cookie no page held: the listing starts again.
	if errno := h1.Seekdir(ctx, 1<<62+12345); errno != 0 {
		t.Fatal(errno)
	}
	if got := read(h1, 1); len(got) != 1 || got[0].name != "." {
		t.Errorf("after a seek to an unknown cookie: %v, want \".\"", got)
	}
}

// openBucketDir opens the directory of the test store's bucket "bkt".
func openBucketDir(ctx context.Context, f *FS) (*dirHandle, syscall.Errno) {
	d := &dirNode{isBucket: true}
	d.init(f, kindDir, "bkt", "")
	fh, _, errno := d.OpendirHandle(ctx, 0)
	if errno != 0 {
		return nil, errno
	}
	return fh.(*dirHandle), 0
}
