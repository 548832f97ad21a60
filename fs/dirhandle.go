package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// listPage is how many keys one directory read asks the store for.
const listPage = 1000

// dirHandle is an open directory. It reads the store's listing a page at a
// time (so a directory of a million keys costs O(page) memory), and keeps
// each entry's record so that READDIRPLUS answers the kernel's lookup of it
// without asking the store again. The listing is ".", "..", then every
// name in the store's key order, the files being created here (captured
// at the handle's first read) merged in by name. Offsets are cookies
// (cookies.go): a seek goes on after the entry a cookie names.
type dirHandle struct {
	fs   *FS
	dir  *dirNode  // nil for the root
	root *rootNode // set for the root

	mu      sync.Mutex
	started bool
	entries []dirEntry // the current page
	next    int        // index in entries of the next entry to return
	after   string     // sort key the next page starts after
	more    bool       // the store has more pages
	pending []string   // files being created here, captured on the first read
	last    *dirEntry  // what Readdirent returned last
}

type dirEntry struct {
	name string
	// key orders the listing: the name, with "/" after a directory's (its
	// key relative to the directory's prefix, so the store's order).
	key    string
	off    uint64 // the entry's cookie
	kind   byte
	ino    uint64
	obj    *cryptostore.Object // a file's or symlink's record
	bucket *cryptostore.Bucket // a bucket's record (root entries)
	// local: "." and "..", and files not yet committed, which the store
	// does not know.
	local bool
}

// maxNameLen is the longest file name, in bytes (NAME_MAX, as statfs says):
// longer names are ENAMETOOLONG, and keys with a longer segment are not
// listed.
const maxNameLen = 255

// validName reports whether a key segment can be a file name.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && len(name) <= maxNameLen &&
		!strings.ContainsRune(name, '/') && !strings.ContainsRune(name, 0)
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		if errno := h.restart(ctx); errno != 0 {
			return nil, errno
		}
	}
	for h.next >= len(h.entries) {
		if !h.more {
			return nil, 0
		}
		h.entries, h.next = nil, 0
		if errno := h.load(ctx, h.after); errno != 0 {
			return nil, errno
		}
	}
	e := &h.entries[h.next]
	h.next++
	h.last = e
	return &fuse.DirEntry{Name: e.name, Mode: fileType(e.kind), Ino: e.ino, Off: e.off}, 0
}

// Seekdir goes on after the entry whose cookie is off (0: the start).
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off == 0 || off == cookieDot || off == cookieDotDot {
		if errno := h.restart(ctx); errno != 0 {
			return errno
		}
		h.next = int(off) // restart put "." and ".." first
		return 0
	}
	if h.started {
		for i := range h.entries {
			if h.entries[i].off == off {
				h.next = i + 1
				return 0
			}
		}
	}
	key, ok := h.fs.cookies.lookup(h.ino(), off)
	if !ok {
		// Not read lately: start again, which may list names twice
		// but never leaves one out.
		h.fs.log.Debug("directory offset not known, listing from the start", "dir", h.ino(), "offset", off)
		return h.restart(ctx)
	}
	h.capturePending()
	h.entries, h.next, h.last = nil, 0, nil
	return h.load(ctx, key)
}

// ino returns the directory's inode number.
func (h *dirHandle) ino() uint64 {
	if h.dir == nil {
		return 1
	}
	return h.dir.ino
}

// restart goes back to the first entry: ".", "..", then the listing.
func (h *dirHandle) restart(ctx context.Context) syscall.Errno {
	self, parent := uint64(1), uint64(1)
	if h.dir != nil {
		self = h.dir.ino
		if _, p := h.dir.Parent(); p != nil {
			parent = p.StableAttr().Ino
		}
	}
	h.capturePending()
	h.entries = []dirEntry{
		{name: ".", kind: kindDir, ino: self, off: cookieDot, local: true},
		{name: "..", kind: kindDir, ino: parent, off: cookieDotDot, local: true},
	}
	h.next, h.last = 0, nil
	return h.load(ctx, "")
}

// capturePending notes the files being created here, on the first read.
func (h *dirHandle) capturePending() {
	if !h.started && h.dir != nil {
		h.pending = h.dir.pendingNames()
	}
	h.started = true
}

// pendingNames returns the files created in d and not yet committed, sorted.
func (d *dirNode) pendingNames() []string {
	var names []string
	for _, fn := range d.fs.pendingFiles() {
		if name, p := fn.Parent(); p == d.EmbeddedInode() && fn.isPending() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// load appends the page of the listing that follows sort key after ("":
// the start) to the entries, and records their cookies.
func (h *dirHandle) load(ctx context.Context, after string) syscall.Errno {
	read := len(h.entries)
	defer func() { h.fs.cookies.record(h.ino(), h.entries[read:]) }()
	if h.root != nil {
		return h.loadBuckets(ctx, after)
	}
	bucket, prefix, ok := h.dir.loc()
	if !ok {
		h.more = false
		return 0
	}
	opts := cryptostore.ListOptions{Prefix: prefix, Delimiter: "/", MaxKeys: listPage}
	if after != "" {
		opts.After = prefix + after
	}
	page, err := h.fs.store.List(h.fs.keep(ctx), bucket, opts)
	if err != nil {
		return h.fs.errno(err, bucket, prefix)
	}
	h.more = page.IsTruncated
	if h.more {
		h.after = page.NextAfter[len(prefix):]
	}
	dirs := make(map[string]bool, len(page.CommonPrefixes))
	for _, p := range page.CommonPrefixes {
		dirs[p] = true
	}
	isPending := func(name string) bool {
		i := sort.SearchStrings(h.pending, name)
		return i < len(h.pending) && h.pending[i] == name
	}
	// The new files this page covers: after after, up to its last key.
	pending := h.pending[sort.Search(len(h.pending), func(i int) bool { return h.pending[i] > after }):]
	if h.more {
		pending = pending[:sort.Search(len(pending), func(i int) bool { return pending[i] > h.after })]
	}
	addPending := func(upTo string, last bool) {
		for len(pending) > 0 && (last || pending[0] < upTo) {
			name := pending[0]
			pending = pending[1:]
			if ch := h.dir.GetChild(name); ch != nil {
				h.entries = append(h.entries, dirEntry{name: name, key: name, off: h.fs.cookies.cookie(name), kind: kindFile, ino: ch.StableAttr().Ino, local: true})
			}
		}
	}
	add := func(name string, kind byte, key string, obj *cryptostore.Object) {
		rel := key[len(prefix):]
		addPending(rel, false)
		ino := h.fs.inodes.peek(identity(kind, bucket, key))
		if ch := h.dir.GetChild(name); ch != nil && ch.StableAttr().Mode == fileType(kind) {
			ino = ch.StableAttr().Ino
		}
		h.entries = append(h.entries, dirEntry{name: name, key: rel, off: h.fs.cookies.cookie(rel), kind: kind, ino: ino, obj: obj})
	}
	objs, prefs := page.Objects, page.CommonPrefixes
	for len(objs) > 0 || len(prefs) > 0 {
		if len(prefs) == 0 || (len(objs) > 0 && objs[0].Key < prefs[0]) {
			o := objs[0]
			objs = objs[1:]
			name := o.Key[len(prefix):]
			if o.Key == prefix || !validName(name) || isPending(name) {
				continue
			}
			// A directory of the same name wins over the object.
			if dirs[o.Key+"/"] {
				continue
			}
			if page.IsTruncated && o.Key+"/" > page.NextAfter {
				if has, err := h.fs.store.HasPrefix(h.fs.keep(ctx), bucket, o.Key+"/"); err == nil && has {
					continue
				}
			}
			add(name, kindOf(o), o.Key, o)
			continue
		}
		p := prefs[0]
		prefs = prefs[1:]
		if name := p[len(prefix) : len(p)-1]; validName(name) {
			add(name, kindDir, p, nil)
		}
	}
	addPending("", true)
	return 0
}

// loadBuckets reads the root's listing, the buckets named after after.
func (h *dirHandle) loadBuckets(ctx context.Context, after string) syscall.Errno {
	h.more = false
	bs, err := h.fs.store.ListBuckets(h.fs.keep(ctx))
	if err != nil {
		return h.fs.errno(err, "", "")
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	for _, b := range bs {
		if b.Name <= after {
			continue
		}
		ino := h.fs.inodes.peek(identity(kindDir, b.Name, ""))
		if ch := h.root.GetChild(b.Name); ch != nil {
			ino = ch.StableAttr().Ino
		}
		h.entries = append(h.entries, dirEntry{name: b.Name, key: b.Name, off: h.fs.cookies.cookie(b.Name), kind: kindDir, ino: ino, bucket: b})
	}
	return 0
}

// Lookup answers READDIRPLUS's lookup of the entry just returned from its
// record.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	h.mu.Lock()
	e := h.last
	h.mu.Unlock()
	if h.root != nil {
		if e != nil && e.name == name && e.bucket != nil {
			return h.root.bucketChild(ctx, e.bucket, out), 0
		}
		return h.root.Lookup(ctx, name, out)
	}
	if e == nil || e.name != name || e.local {
		return h.dir.Lookup(ctx, name, out)
	}
	if e.kind != kindDir {
		return h.dir.objectChild(ctx, name, e.obj, out), 0
	}
	bucket, key, errno := h.dir.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	prefix := key + "/"
	marker, err := h.fs.store.Head(h.fs.keep(ctx), bucket, prefix)
	if errors.Is(err, cryptostore.ErrNoSuchKey) {
		marker, err = nil, nil
	}
	if err != nil {
		return nil, h.fs.errno(err, bucket, prefix)
	}
	return h.dir.dirChild(ctx, name, bucket, prefix, marker, out), 0
}

func (h *dirHandle) Releasedir(ctx context.Context, flags uint32) {}
