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
// without asking the store again. Offsets are entry positions: seeking
// backwards beyond the current page reads the listing again from the start.
type dirHandle struct {
	fs   *FS
	dir  *dirNode  // nil for the root
	root *rootNode // set for the root

	mu      sync.Mutex
	started bool
	entries []dirEntry // the current page
	start   int        // position of entries[0]
	pos     int        // position of the next entry to return
	after   string     // where the next store page starts
	more    bool       // the store has more pages
	pending []string   // files being created here, captured on the first read
	last    *dirEntry  // what Readdirent returned last
}

type dirEntry struct {
	name   string
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
	for h.pos >= h.start+len(h.entries) {
		if !h.more {
			return nil, 0
		}
		if errno := h.nextPage(ctx); errno != 0 {
			return nil, errno
		}
	}
	e := &h.entries[h.pos-h.start]
	h.pos++
	h.last = e
	return &fuse.DirEntry{Name: e.name, Mode: fileType(e.kind), Ino: e.ino, Off: uint64(h.pos)}, 0
}

// Seekdir moves to position off (0 is the start).
func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := int(off)
	if h.started && k >= h.start && k <= h.start+len(h.entries) {
		h.pos = k
		return 0
	}
	if errno := h.restart(ctx); errno != 0 {
		return errno
	}
	for k > h.start+len(h.entries) && h.more {
		h.pos = h.start + len(h.entries) // let nextPage drop the page
		if errno := h.nextPage(ctx); errno != 0 {
			return errno
		}
	}
	h.pos = min(k, h.start+len(h.entries))
	return 0
}

// restart goes back to the first entry: ".", "..", the files being created
// here, then the store's listing.
func (h *dirHandle) restart(ctx context.Context) syscall.Errno {
	self, parent := uint64(1), uint64(1)
	if h.dir != nil {
		self = h.dir.ino
		if _, p := h.dir.Parent(); p != nil {
			parent = p.StableAttr().Ino
		}
	}
	entries := []dirEntry{
		{name: ".", kind: kindDir, ino: self, local: true},
		{name: "..", kind: kindDir, ino: parent, local: true},
	}
	if h.dir != nil {
		if !h.started {
			h.pending = h.dir.pendingNames()
		}
		for _, name := range h.pending {
			if ch := h.dir.GetChild(name); ch != nil {
				entries = append(entries, dirEntry{name: name, kind: kindFile, ino: ch.StableAttr().Ino, local: true})
			}
		}
	}
	h.started = true
	h.entries, h.start, h.pos, h.after, h.more, h.last = entries, 0, 0, "", true, nil
	return h.nextPage(ctx)
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

// nextPage appends the store's next page to the entries, dropping the
// current page first unless it is the first one.
func (h *dirHandle) nextPage(ctx context.Context) syscall.Errno {
	if h.pos > 0 && h.pos >= h.start+len(h.entries) {
		h.start += len(h.entries)
		h.entries = nil
	}
	if h.root != nil {
		h.more = false
		bs, err := h.fs.store.ListBuckets(h.fs.keep(ctx))
		if err != nil {
			return h.fs.errno(err, "", "")
		}
		for _, b := range bs {
			ino := h.fs.inodes.peek(identity(kindDir, b.Name, ""))
			if ch := h.root.GetChild(b.Name); ch != nil {
				ino = ch.StableAttr().Ino
			}
			h.entries = append(h.entries, dirEntry{name: b.Name, kind: kindDir, ino: ino, bucket: b})
		}
		return 0
	}
	bucket, prefix, ok := h.dir.loc()
	if !ok {
		h.more = false
		return 0
	}
	page, err := h.fs.store.List(h.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: prefix, Delimiter: "/", After: h.after, MaxKeys: listPage})
	if err != nil {
		return h.fs.errno(err, bucket, prefix)
	}
	h.more, h.after = page.IsTruncated, page.NextAfter
	dirs := make(map[string]bool, len(page.CommonPrefixes))
	for _, p := range page.CommonPrefixes {
		dirs[p] = true
	}
	isPending := func(name string) bool {
		i := sort.SearchStrings(h.pending, name)
		return i < len(h.pending) && h.pending[i] == name
	}
	add := func(name string, kind byte, key string, obj *cryptostore.Object) {
		ino := h.fs.inodes.peek(identity(kind, bucket, key))
		if ch := h.dir.GetChild(name); ch != nil && ch.StableAttr().Mode == fileType(kind) {
			ino = ch.StableAttr().Ino
		}
		h.entries = append(h.entries, dirEntry{name: name, kind: kind, ino: ino, obj: obj})
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
