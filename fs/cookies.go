package fs

import (
	"hash/maphash"
	"sync"
)

// Directory offsets.
//
// The kernel goes on with a listing at the offset (d_off) of the last
// entry it handed to the program, and a program may seekdir(3) back to an
// offset telldir(3) gave it, after names were created or removed in
// between. So an offset must name the same place in every listing of the
// directory, and entry positions do not: a name removed before the
// reader's place, or a new file committed (moving from the
// files-being-created group to its place by name), shifted every later
// position, and the listing skipped a name. (The kernel's readdir cache,
// which sealfs used to let it keep, did the same across handles; see
// listingFlags in dir.go.)
//
// A listing is therefore sorted by key alone (new files merged in by
// name), and an entry's offset is a cookie: a 63-bit hash of its sort key
// (its name, with "/" after a directory's, which is its order in the
// store). "." and ".." are 1 and 2. A handle asked to go on after a cookie
// that is not in the page it holds finds the sort key in a table of the
// cookies of recently read pages (any handle's) and lists the keys after
// it, whether or not that name still exists. Two names of one directory sharing a cookie
// (about one chance in 2^63 per pair) would be taken for each other by a
// seek.

// cookieGen is how many cookies one generation of the table holds; the
// table keeps two, so it remembers at least the last cookieGen read
// (a few MiB at most).
const cookieGen = 1 << 15

const (
	cookieDot    = 1 // after "."
	cookieDotDot = 2 // after ".."
)

type cookieKey struct {
	dir uint64 // the directory's inode number
	off uint64
}

// cookieTable remembers which sort key the cookies of recently read
// pages stand for.
type cookieTable struct {
	seed maphash.Seed

	mu       sync.Mutex
	cur, old map[cookieKey]string
}

func (c *cookieTable) init() {
	c.seed = maphash.MakeSeed()
	c.cur = make(map[cookieKey]string)
}

// cookie returns the offset of the entry with sort key key.
func (c *cookieTable) cookie(key string) uint64 {
	v := maphash.String(c.seed, key) >> 1
	if v <= cookieDotDot {
		v += cookieDotDot + 1
	}
	return v
}

// record notes the cookies of entries (a page a handle just read) in
// directory dir, under one lock; "." and ".." have fixed ones.
func (c *cookieTable) record(dir uint64, entries []dirEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range entries {
		e := &entries[i]
		if e.off <= cookieDotDot {
			continue
		}
		if len(c.cur) >= cookieGen {
			c.old, c.cur = c.cur, make(map[cookieKey]string, cookieGen)
		}
		c.cur[cookieKey{dir, e.off}] = e.key
	}
}

// lookup returns the sort key off stands for in directory dir.
func (c *cookieTable) lookup(dir, off uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cookieKey{dir, off}
	if key, ok := c.cur[k]; ok {
		return key, true
	}
	key, ok := c.old[k]
	return key, ok
}
