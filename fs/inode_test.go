package fs

import (
	"testing"
	"time"
)

func TestInodeTable(t *testing.T) {
	var tab inodeTable
	tab.init()
	a := identity(kindFile, "bkt", "a")
	n := tab.acquire(a)
	if n != hashIno(a) || n < 2 || n >= 1<<63 {
		t.Fatalf("number %d, want the hash %d", n, hashIno(a))
	}
	if again := tab.acquire(a); again != n {
		t.Fatalf("the same identity got %d, then %d", n, again)
	}

	// A collision: the number is taken by another identity, so the next
	// free one is used.
	c := identity(kindFile, "bkt", "c")
	tab.byIno[hashIno(c)] = &inoEntry{id: "another identity", refs: 1}
	if got := tab.acquire(c); got != hashIno(c)+1 {
		t.Fatalf("colliding identity got %d, want %d", got, hashIno(c)+1)
	}

	// Renamed: a new file at the old key gets another number.
	tab.rekey(n, identity(kindFile, "bkt", "b"))
	if got := tab.peek(a); got == n {
		t.Fatal("after a rename, a new file at the old key would share the renamed file's number")
	}

	// Deleted but open (retired): a new file of the same name gets another
	// number while the old one lives, and the hash again once it is gone.
	d := identity(kindFile, "bkt", "d")
	m := tab.acquire(d)
	tab.rekey(m, "")
	if got := tab.peek(d); got == m {
		t.Fatal("a deleted file's number was handed out while still in use")
	}
	tab.release(m)
	if got := tab.acquire(d); got != hashIno(d) {
		t.Fatalf("after the deleted file was forgotten: %d, want %d", got, hashIno(d))
	}
}

func TestParseMtime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{in: "1700000000", want: time.Unix(1700000000, 0), ok: true},
		{in: "1795723973.238843748", want: time.Unix(1795723973, 238843748), ok: true},
		{in: "981173106.789", want: time.Unix(981173106, 789000000), ok: true},
		{in: "1.1234567891", want: time.Unix(1, 123456789), ok: true},
		{in: "", ok: false},
		{in: "yesterday", ok: false},
		{in: "12.x", ok: false},
	}
	for _, tc := range tests {
		got, ok := parseMtime(tc.in)
		if ok != tc.ok || (ok && !got.Equal(tc.want)) {
			t.Errorf("parseMtime(%q) = %v, %t; want %v, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
