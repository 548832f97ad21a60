package fs

import (
	"hash/fnv"
	"sync"
)

// inodeTable hands out inode numbers. A node's number is a hash of its
// identity (its kind, bucket and key), so a file keeps its number for as long
// as it is mounted, even after the kernel forgot it and looked it up again;
// the table holds the numbers of the nodes alive now and moves a number that
// is taken by another identity (a collision) to the next free one. A node
// keeps its number when renamed: the table then files the number under the
// new identity, so that a new file at the old name gets another one.
type inodeTable struct {
	mu    sync.Mutex
	byIno map[uint64]*inoEntry
}

type inoEntry struct {
	id   string // identity the number stands for; "" once retired
	refs int    // live nodes holding the number
	gen  uint64 // the highest inode generation of those nodes so far
}

// Node kinds, the first byte of an identity.
const (
	kindDir  = 'd'
	kindFile = 'f'
	kindLink = 'l'
)

func identity(kind byte, bucket, key string) string {
	return string(kind) + bucket + "/" + key
}

func (t *inodeTable) init() { t.byIno = make(map[uint64]*inoEntry) }

// hashIno hashes an identity to 63 bits: inode numbers stay positive for
// programs that read them as signed, and clear of go-fuse's own numbers
// (from 2^63 up).
func hashIno(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64() >> 1
}

// usable reports whether n may be handed out: 0 is invalid, 1 is the
// root's, and from 2^63 up is go-fuse's.
func usable(n uint64) bool { return n > 1 && n < 1<<63 }

// find returns id's number and entry (nil when id holds no number now).
// Called with mu held.
func (t *inodeTable) find(id string) (uint64, *inoEntry) {
	n := hashIno(id)
	for {
		if !usable(n) {
			n = 2
			continue
		}
		e := t.byIno[n]
		if e == nil || e.id == id {
			return n, e
		}
		n++
	}
}

// acquire returns id's number for a new live node.
func (t *inodeTable) acquire(id string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, e := t.find(id)
	if e == nil {
		e = &inoEntry{id: id}
		t.byIno[n] = e
	}
	e.refs++
	return n
}

// peek returns the number id has or would get, without taking it.
func (t *inodeTable) peek(id string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, _ := t.find(id)
	return n
}

// release drops a node's hold on its number.
func (t *inodeTable) release(n uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.byIno[n]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(t.byIno, n)
		}
	}
}

// rekey files number n under a new identity (after a rename; "" retires it:
// the node was deleted or replaced but may still be open). Whatever number
// the new identity held is retired first.
func (t *inodeTable) rekey(n uint64, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id != "" {
		if old, e := t.find(id); e != nil && old != n {
			e.id = ""
		}
	}
	if e := t.byIno[n]; e != nil {
		e.id = id
	}
}

// newGen returns the generation for a new node that took number n: at
// least gen, and above every generation of the number's nodes still alive,
// so that the new node is never taken for one of them (go-fuse merges
// nodes of one number and generation into one). Called once the node
// holds the number (acquire).
func (t *inodeTable) newGen(n, gen uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.byIno[n]
	if e == nil {
		return gen
	}
	if e.refs > 1 {
		gen = max(gen, e.gen+1)
	}
	e.gen = max(e.gen, gen)
	return gen
}
