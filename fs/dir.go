package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// dirNode is a bucket's directory (isBucket, key "") or a directory inside
// a bucket: a key prefix ending in "/". A directory exists explicitly when
// its marker object (the prefix itself, "a/b/", which mkdir writes and which
// holds the directory's POSIX attributes) exists, and implicitly while any
// key starts with its prefix.
type dirNode struct {
	node
	isBucket bool

	markerMu   sync.Mutex
	lastMarker *cryptostore.Object // the marker seen last (nil: none), for when it is gone

	// changed is when a name was last created, removed or renamed in the
	// directory through the mount (UnixNano; 0: not since the node was
	// made), which its mtime and ctime show when later than the stored
	// mtime. It is kept in memory only: persisting it would cost a commit
	// of the marker per file created.
	changed atomic.Int64

	// absent is the last name a lookup here found in neither the store
	// nor the mount, with FS.outside at that moment. The create that
	// usually follows (the kernel looks a name up before creating it)
	// need not ask the store again while nothing changed elsewhere and
	// nothing was created here since.
	absent atomic.Pointer[absentName]

	// fresh is set on a directory Mkdir made here, which found nothing
	// under its prefix: while nothing changes outside the mount, the
	// directory holds only names created through this node since, which
	// fresh records. A lookup of any other name is then answered ENOENT
	// without asking the store; unpacking an archive into a new directory
	// looks up every name before creating it.
	fresh atomic.Pointer[freshDir]
}

type absentName struct {
	name    string
	outside uint64
}

// freshDir is what a fresh directory knows: FS.outside when Mkdir began,
// and the names every operation that may add one (Create, Mkdir, Symlink,
// Mknod, a rename into it) recorded before it changed the store.
type freshDir struct {
	outside uint64
	mu      sync.Mutex
	names   map[string]struct{}
}

// freshMax bounds the names a fresh directory records; past it the
// directory stops being fresh, and its lookups ask the store again.
const freshMax = 4096

// freshAbsent reports whether name is absent from a fresh directory: it
// was never created here, and nothing changed outside the mount since the
// directory was made (outside is FS.outside now).
func (d *dirNode) freshAbsent(name string, outside uint64) bool {
	f := d.fresh.Load()
	if f == nil {
		return false
	}
	if f.outside != outside {
		d.fresh.CompareAndSwap(f, nil)
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, made := f.names[name]
	return !made
}

// adding records that an operation is about to add name to the directory
// (it may fail: the name is then only looked up in the store again).
func (d *dirNode) adding(name string) {
	f := d.fresh.Load()
	if f == nil {
		return
	}
	f.mu.Lock()
	f.names[name] = struct{}{}
	full := len(f.names) > freshMax
	f.mu.Unlock()
	if full {
		d.fresh.CompareAndSwap(f, nil)
	}
}

// touch records a change of the directory's entries.
func (d *dirNode) touch() {
	d.changed.Store(time.Now().UnixNano())
	d.absent.Store(nil)
}

// knownAbsent reports whether name was found absent by a lookup and
// nothing has been created here or changed outside the mount since.
func (d *dirNode) knownAbsent(name string) bool {
	a := d.absent.Load()
	return a != nil && a.name == name && a.outside == d.fs.outside.Load()
}

// attrOf fills out for the directory from its marker (see FS.dirAttr) and
// the last change of its entries.
func (d *dirNode) attrOf(out *fuse.Attr, marker *cryptostore.Object) {
	d.fs.dirAttr(out, d.ino, marker)
	d.applyChanged(out)
}

func (d *dirNode) applyChanged(out *fuse.Attr) {
	c := d.changed.Load()
	if c == 0 {
		return
	}
	t := time.Unix(0, c)
	if t.After(out.ModTime()) {
		out.SetTimes(nil, &t, nil)
	}
	if t.After(out.ChangeTime()) {
		out.SetTimes(nil, nil, &t)
	}
}

func (d *dirNode) seenMarker(m *cryptostore.Object) {
	d.markerMu.Lock()
	d.lastMarker = m
	d.markerMu.Unlock()
}

// childKey returns the key of the entry name in d.
func (d *dirNode) childKey(name string) (bucket, key string, errno syscall.Errno) {
	if len(name) > maxNameLen {
		return "", "", syscall.ENAMETOOLONG
	}
	bucket, prefix, ok := d.loc()
	if !ok {
		return "", "", syscall.ENOENT
	}
	key = prefix + name
	if len(key)+1 > cryptostore.MaxKeyLen { // +1: room for a directory's "/"
		return "", "", syscall.ENAMETOOLONG
	}
	return bucket, key, 0
}

func (d *dirNode) bucketAttr(out *fuse.Attr, b *cryptostore.Bucket) {
	d.fs.fillAttr(out, d.ino, kindDir, posix{mode: d.fs.opts.BucketMode, uid: d.fs.uid, gid: d.fs.gid, mtime: b.Created}, 0)
	d.applyChanged(out)
}

// ---- lookup

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if ch := d.GetChild(name); ch != nil {
		// A file created here and not yet committed is known only to us.
		if fn, ok := ch.Operations().(*fileNode); ok && fn.isPending() && !fn.stale.Load() {
			fn.attr(&out.Attr)
			return ch, 0
		}
	}
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	outside := d.fs.outside.Load()
	if d.freshAbsent(name, outside) {
		d.absent.Store(&absentName{name: name, outside: outside})
		return nil, syscall.ENOENT
	}
	ch, errno := d.lookupKey(ctx, name, bucket, key, out)
	if errno == syscall.ENOENT {
		d.absent.Store(&absentName{name: name, outside: outside})
	}
	return ch, errno
}

// lookupKey finds what name is in the store: a directory when a key starts
// with key+"/" (a directory wins over an object of the same name), else the
// object key.
//
// One listing of the keys starting with key, with "/" as the delimiter,
// answers for a file or an absent name in one store call: the object key
// comes first and the directory key+"/" is rolled up, whatever it holds.
// Only a directory (whose marker the listing does not return) or a page
// cut short by keys that sort between the two ("key.bak") takes the two
// calls of the general case.
func (d *dirNode) lookupKey(ctx context.Context, name, bucket, key string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	prefix := key + "/"
	page, err := d.fs.store.List(d.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: key, Delimiter: "/", MaxKeys: lookupPage})
	if err != nil {
		return nil, d.fs.errno(err, bucket, key)
	}
	if !page.IsTruncated && !slices.Contains(page.CommonPrefixes, prefix) {
		if len(page.Objects) > 0 && page.Objects[0].Key == key {
			return d.objectChild(ctx, name, page.Objects[0], out), 0
		}
		return nil, syscall.ENOENT
	}
	return d.lookupKeySlow(ctx, name, bucket, key, out)
}

// lookupPage is how many entries lookupKey's listing may return.
const lookupPage = 4

// lookupKeySlow is lookupKey in two store calls: the directory's first key
// (its marker if it has one), else the object.
func (d *dirNode) lookupKeySlow(ctx context.Context, name, bucket, key string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	prefix := key + "/"
	page, err := d.fs.store.List(d.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: prefix, MaxKeys: 1})
	if err != nil {
		return nil, d.fs.errno(err, bucket, key)
	}
	if len(page.Objects) > 0 {
		var marker *cryptostore.Object
		if page.Objects[0].Key == prefix {
			marker = page.Objects[0]
		}
		return d.dirChild(ctx, name, bucket, prefix, marker, out), 0
	}
	obj, err := d.fs.store.Head(d.fs.keep(ctx), bucket, key)
	if err != nil {
		return nil, d.fs.errno(err, bucket, key)
	}
	return d.objectChild(ctx, name, obj, out), 0
}

// dirChild returns the node of the subdirectory name, reusing the one the
// kernel knows.
func (d *dirNode) dirChild(ctx context.Context, name, bucket, prefix string, marker *cryptostore.Object, out *fuse.EntryOut) *gofs.Inode {
	return d.dirChildFresh(ctx, name, bucket, prefix, marker, out, nil)
}

// dirChildFresh is dirChild for Mkdir: a node it makes is fresh (f). A
// node already known stays as it was: operations on it may have run
// without recording their names. (go-fuse also hands back the inode it
// already has for the number, if any, rather than the new node.)
func (d *dirNode) dirChildFresh(ctx context.Context, name, bucket, prefix string, marker *cryptostore.Object, out *fuse.EntryOut, f *freshDir) *gofs.Inode {
	if ch := d.GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*dirNode); ok {
			c.seenMarker(marker)
			c.attrOf(&out.Attr, marker)
			return ch
		}
	}
	c := &dirNode{lastMarker: marker}
	c.init(d.fs, kindDir, bucket, prefix)
	c.attrOf(&out.Attr, marker)
	if f != nil {
		c.fresh.Store(f)
	}
	return d.NewInode(ctx, c, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: c.ino})
}

// objectChild returns the node of the file or symlink obj: the one the
// kernel knows, unless the object changed outside the mount since (then a
// new generation).
func (d *dirNode) objectChild(ctx context.Context, name string, obj *cryptostore.Object, out *fuse.EntryOut) *gofs.Inode {
	kind := kindOf(obj)
	var gen uint64
	if ch := d.GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*fileNode); ok {
			if c.kind == kind && !c.stale.Load() {
				c.seen(obj)
				c.attr(&out.Attr)
				return ch
			}
			gen = c.gen + 1
		}
	}
	c := newFileNode(d.fs, kind, obj.Bucket, obj.Key)
	// An older node of this key may be alive though no longer the child
	// (a stale one, still open, or held by the kernel): never its
	// generation, or go-fuse would hand it back for this lookup.
	gen = d.fs.inodes.newGen(c.ino, gen)
	c.last, c.gen, c.kver = obj, gen, obj.ID
	d.fs.objectAttr(&out.Attr, c.ino, obj)
	return d.NewInode(ctx, c, gofs.StableAttr{Mode: fileType(kind), Ino: c.ino, Gen: gen})
}

// ---- attributes

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	bucket, prefix, ok := d.loc()
	if !ok {
		if d.isBucket {
			return syscall.ENOENT
		}
		// Removed or replaced, but still open: what it was, unlinked.
		d.markerMu.Lock()
		d.attrOf(&out.Attr, d.lastMarker)
		d.markerMu.Unlock()
		out.Nlink = 0
		return 0
	}
	if d.isBucket {
		b, err := d.fs.store.GetBucket(d.fs.keep(ctx), bucket)
		if err != nil {
			return d.fs.errno(err, bucket, "")
		}
		d.bucketAttr(&out.Attr, b)
		return 0
	}
	marker, exists, errno := d.marker(ctx, bucket, prefix)
	if errno != 0 {
		return errno
	}
	if !exists && len(d.fs.dirtyUnder(bucket, prefix)) == 0 {
		return syscall.ENOENT
	}
	d.seenMarker(marker)
	d.attrOf(&out.Attr, marker)
	return 0
}

// marker returns the directory's marker object (nil if it has none) and
// whether the directory exists in the store at all.
func (d *dirNode) marker(ctx context.Context, bucket, prefix string) (*cryptostore.Object, bool, syscall.Errno) {
	page, err := d.fs.store.List(d.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: prefix, MaxKeys: 1})
	if err != nil {
		return nil, false, d.fs.errno(err, bucket, prefix)
	}
	if len(page.Objects) == 0 {
		return nil, false, 0
	}
	if page.Objects[0].Key == prefix {
		return page.Objects[0], true, 0
	}
	return nil, true, 0
}

// Setattr stores mode, owner and mtime in the directory's marker, writing
// one if the directory had none. A bucket's directory has no metadata: see
// fixedAttrs.
func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	bucket, prefix, ok := d.loc()
	if !ok {
		return syscall.ENOENT
	}
	if d.isBucket {
		if errno := d.Getattr(ctx, fh, out); errno != 0 {
			return errno
		}
		return fixedAttrs(&out.Attr, in)
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	var obj *cryptostore.Object
	errno := d.updateMarker(ctx, bucket, prefix, func(m *cryptostore.ObjectMeta, cur posix) {
		applySetattr(m, cur, in)
	}, &obj)
	if errno != 0 {
		return errno
	}
	if _, ok := in.GetMTime(); ok {
		d.changed.Store(0) // the mtime set is the one to show
	}
	d.attrOf(&out.Attr, obj)
	return 0
}

// updateMarker changes the directory marker's metadata, creating the marker
// (with the defaults an implicit directory shows) if there is none.
func (d *dirNode) updateMarker(ctx context.Context, bucket, prefix string, fn func(m *cryptostore.ObjectMeta, cur posix), out **cryptostore.Object) syscall.Errno {
	done := d.fs.ownOp(bucket, prefix)
	defer done()
	obj, err := d.fs.store.UpdateMeta(d.fs.keep(ctx), bucket, prefix, func(m *cryptostore.ObjectMeta) error {
		fn(m, d.fs.posixOf(m, 0o755, time.Now()))
		return nil
	})
	if errors.Is(err, cryptostore.ErrNoSuchKey) {
		var m cryptostore.ObjectMeta
		m.SetPOSIX(syscall.S_IFDIR|0o755, d.fs.uid, d.fs.gid, d.fs.started)
		fn(&m, d.fs.posixOf(&m, 0o755, d.fs.started))
		obj, err = d.fs.store.Put(d.fs.keep(ctx), &cryptostore.PutInput{Bucket: bucket, Key: prefix, Body: bytes.NewReader(nil), Size: 0, Meta: m})
	}
	if err != nil {
		return d.fs.errno(err, bucket, prefix)
	}
	if out != nil {
		*out = obj
	}
	return 0
}

// Fsync makes every change committed so far durable (names created,
// renamed or removed in the directory among them).
func (d *dirNode) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if err := d.fs.store.Sync(d.fs.keep(ctx)); err != nil {
		bucket, key, _ := d.loc()
		return d.fs.errno(err, bucket, key)
	}
	return 0
}

func (d *dirNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	bucket, prefix, ok := d.loc() // a directory's key is its prefix: "" or "a/b/"
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if errno := d.fs.allowList(bucket, prefix); errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{fs: d.fs, dir: d}, listingFlags, 0
}

// listingFlags are the open flags of a directory: none. The kernel's
// readdir cache (FOPEN_CACHE_DIR) is not used. The kernel fills that cache
// from whichever open handle reads at the end of what it holds, and
// checks it only against changes made through the mount, counted from
// when the filling began; a sealfs handle answers from the store page it
// read when the listing started (listPage keys, dirhandle.go). A reader
// that opened before a change could so extend a cache that a later reader
// had begun after it, and every later listing left out new names and
// showed removed ones until the next change: fsstress found it (a name
// it knew missing, one it had removed listed). Each open now
// lists from the store. A warm ls -lR of 10k files took 0.70-0.84 s with
// the cache and 0.77-1.03 s without it, in alternated runs.
const listingFlags = 0

// ---- creating

// exists reports whether name is taken in the store or by a file being
// created.
func (d *dirNode) exists(ctx context.Context, name, bucket, key string) (bool, syscall.Errno) {
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.isPending() && !fn.stale.Load() {
			return true, 0
		}
	}
	if _, err := d.fs.store.Head(d.fs.keep(ctx), bucket, key); err == nil {
		return true, 0
	} else if !errors.Is(err, cryptostore.ErrNoSuchKey) {
		return false, d.fs.errno(err, bucket, key)
	}
	ok, err := d.fs.store.HasPrefix(d.fs.keep(ctx), bucket, key+"/")
	if err != nil {
		return false, d.fs.errno(err, bucket, key)
	}
	return ok, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	if errno := d.fs.allowObject("s3:PutObject", bucket, key+"/"); errno != 0 {
		return nil, errno
	}
	// Nothing is under the prefix (exists), and only this node's
	// operations add to it while nothing changes outside the mount: the
	// new directory is fresh as of this count.
	outside := d.fs.outside.Load()
	if ok, errno := d.exists(ctx, name, bucket, key); errno != 0 {
		return nil, errno
	} else if ok {
		return nil, syscall.EEXIST
	}
	d.adding(name)
	prefix := key + "/"
	done := d.fs.ownOp(bucket, prefix)
	obj, err := d.fs.store.Put(d.fs.keep(ctx), &cryptostore.PutInput{
		Bucket: bucket, Key: prefix, Body: bytes.NewReader(nil), Size: 0,
		Meta: d.fs.newMeta(ctx, syscall.S_IFDIR|mode&0o7777),
	})
	done()
	if err != nil {
		return nil, d.fs.errno(err, bucket, prefix)
	}
	d.touch()
	return d.dirChildFresh(ctx, name, bucket, prefix, obj, out, &freshDir{outside: outside, names: map[string]struct{}{}}), 0
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if errno := d.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
		return nil, nil, 0, errno
	}
	// The kernel looked the name up before, but S3 may have been faster
	// (unless nothing changed outside the mount since: knownAbsent).
	obj, err := (*cryptostore.Object)(nil), cryptostore.ErrNoSuchKey
	if !d.knownAbsent(name) {
		obj, err = d.fs.store.Head(d.fs.keep(ctx), bucket, key)
	}
	switch {
	case err == nil:
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		ch := d.objectChild(ctx, name, obj, out)
		fn, ok := ch.Operations().(*fileNode)
		if !ok || fn.kind != kindFile {
			return nil, nil, 0, syscall.EEXIST
		}
		fh, fuseFlags, errno := fn.Open(ctx, flags)
		if errno == 0 {
			fn.attr(&out.Attr)
		}
		return ch, fh, fuseFlags, errno
	case !errors.Is(err, cryptostore.ErrNoSuchKey):
		return nil, nil, 0, d.fs.errno(err, bucket, key)
	}
	if errno := d.fs.writable(ctx, bucket); errno != 0 {
		return nil, nil, 0, errno
	}
	d.adding(name)
	fn := newFileNode(d.fs, kindFile, bucket, key)
	fn.gen = d.fs.inodes.newGen(fn.ino, 0) // see objectChild
	fn.pending.Store(true)
	fn.st = newStaging(fn, nil, d.fs.newMeta(ctx, syscall.S_IFREG|mode&0o7777), true)
	fn.opens = 1
	d.fs.markDirty(fn)
	d.touch()
	fn.attr(&out.Attr)
	ch := d.NewInode(ctx, fn, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: fn.ino, Gen: fn.gen})
	return ch, &fileHandle{n: fn}, 0, 0
}

// Tmpfile makes a file in no directory (open(2) with O_TMPFILE): it lives
// in a staging area only and is never committed, since giving it a name
// would take a hard link, which is refused.
func (d *dirNode) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	bucket, prefix, ok := d.loc()
	if !ok {
		return nil, nil, 0, syscall.ENOENT
	}
	fn := &fileNode{}
	fn.init(d.fs, kindFile, bucket, fmt.Sprintf("%s\x00tmpfile-%d", prefix, d.fs.nodeSeq.Add(1)))
	fn.markGone()
	fn.st = newStaging(fn, nil, d.fs.newMeta(ctx, syscall.S_IFREG|mode&0o7777), true)
	fn.opens = 1
	fn.attr(&out.Attr)
	ch := d.NewInode(ctx, fn, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: fn.ino, Gen: fn.gen})
	return ch, &fileHandle{n: fn}, 0, 0
}

// Symlink stores the link as an object whose content is the target and
// whose mode has S_IFLNK.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	if errno := d.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
		return nil, errno
	}
	if ok, errno := d.exists(ctx, name, bucket, key); errno != 0 {
		return nil, errno
	} else if ok {
		return nil, syscall.EEXIST
	}
	d.adding(name)
	done := d.fs.ownOp(bucket, key)
	obj, err := d.fs.store.Put(d.fs.keep(ctx), &cryptostore.PutInput{
		Bucket: bucket, Key: key, Body: strings.NewReader(target), Size: int64(len(target)),
		Meta:      d.fs.newMeta(ctx, syscall.S_IFLNK|0o777),
		Condition: cryptostore.IfNoneMatch("*"),
	})
	done()
	if errors.Is(err, cryptostore.ErrPreconditionFailed) {
		return nil, syscall.EEXIST
	}
	if err != nil {
		return nil, d.fs.errno(err, bucket, key)
	}
	d.touch()
	ch := d.objectChild(ctx, name, obj, out)
	if fn, ok := ch.Operations().(*fileNode); ok {
		fn.mu.Lock()
		fn.target = target
		fn.mu.Unlock()
	}
	return ch, 0
}

// Mknod makes regular files only: an object store has no devices, FIFOs or
// sockets.
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, 0:
	case syscall.S_IFCHR, syscall.S_IFBLK:
		return nil, syscall.EPERM
	default:
		return nil, syscall.EOPNOTSUPP
	}
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return nil, errno
	}
	if errno := d.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
		return nil, errno
	}
	d.adding(name)
	done := d.fs.ownOp(bucket, key)
	obj, err := d.fs.store.Put(d.fs.keep(ctx), &cryptostore.PutInput{
		Bucket: bucket, Key: key, Body: bytes.NewReader(nil), Size: 0,
		Meta:      d.fs.newMeta(ctx, syscall.S_IFREG|mode&0o7777),
		Condition: cryptostore.IfNoneMatch("*"),
	})
	done()
	if errors.Is(err, cryptostore.ErrPreconditionFailed) {
		return nil, syscall.EEXIST
	}
	if err != nil {
		return nil, d.fs.errno(err, bucket, key)
	}
	d.touch()
	return d.objectChild(ctx, name, obj, out), 0
}

// Link is refused: an object has exactly one key.
func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

// ---- removing

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	if errno := d.fs.allowObject("s3:DeleteObject", bucket, key); errno != 0 {
		return errno
	}
	var fn *fileNode
	if ch := d.GetChild(name); ch != nil {
		fn, _ = ch.Operations().(*fileNode)
	}
	if fn != nil {
		// Hold the file so that a flush racing with us cannot bring it
		// back.
		fn.mu.Lock()
	}
	done := d.fs.ownOp(bucket, key)
	err := d.fs.store.Delete(d.fs.keep(ctx), bucket, key)
	done()
	if err != nil && !(fn != nil && fn.isPending() && errors.Is(err, cryptostore.ErrNoSuchKey)) {
		if fn != nil {
			fn.mu.Unlock()
		}
		return d.fs.errno(err, bucket, key)
	}
	if fn != nil {
		fn.removedLocked()
		fn.mu.Unlock()
	}
	d.touch()
	d.keepAlive(ctx)
	return 0
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	bucket, key, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	if errno := d.fs.allowObject("s3:DeleteObject", bucket, key+"/"); errno != 0 {
		return errno
	}
	prefix := key + "/"
	if len(d.fs.dirtyUnder(bucket, prefix)) > 0 {
		return syscall.ENOTEMPTY
	}
	page, err := d.fs.store.List(d.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: prefix, MaxKeys: 2})
	if err != nil {
		return d.fs.errno(err, bucket, prefix)
	}
	for _, o := range page.Objects {
		if o.Key != prefix {
			return syscall.ENOTEMPTY
		}
	}
	if len(page.Objects) > 0 {
		done := d.fs.ownOp(bucket, prefix)
		err := d.fs.store.Delete(d.fs.keep(ctx), bucket, prefix)
		done()
		if err != nil && !errors.Is(err, cryptostore.ErrNoSuchKey) {
			return d.fs.errno(err, bucket, prefix)
		}
	}
	if ch := d.GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*dirNode); ok {
			c.markGone()
		}
	}
	d.touch()
	d.keepAlive(ctx)
	return 0
}

// keepAlive writes a marker for d when its last key went away through the
// mount: a directory that exists only because keys run through it would
// otherwise vanish when emptied, which no POSIX program expects.
func (d *dirNode) keepAlive(ctx context.Context) {
	if d.isBucket {
		return
	}
	bucket, prefix, ok := d.loc()
	if !ok {
		return
	}
	if has, err := d.fs.store.HasPrefix(d.fs.keep(ctx), bucket, prefix); err != nil || has {
		return
	}
	d.updateMarker(ctx, bucket, prefix, func(*cryptostore.ObjectMeta, posix) {}, nil)
}

// ---- renaming

func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	const renameNoReplace = 1 // RENAME_NOREPLACE
	if flags&^renameNoReplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT are not offered
	}
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EPERM // into the root: only buckets live there
	}
	bucket, srcKey, errno := d.childKey(name)
	if errno != 0 {
		return errno
	}
	dstBucket, dstKey, errno := np.childKey(newName)
	if errno != 0 {
		return errno
	}
	if bucket != dstBucket {
		return syscall.EXDEV // the destination's encryption decides: mv copies
	}
	// A rename reads the source, writes the destination, deletes the
	// source (a directory's: its marker and everything under it).
	for _, c := range []struct{ action, key string }{{"s3:GetObject", srcKey}, {"s3:DeleteObject", srcKey}, {"s3:PutObject", dstKey}} {
		if errno := d.fs.allowObject(c.action, bucket, c.key); errno != 0 {
			return errno
		}
	}
	ch := d.GetChild(name)
	if ch == nil {
		var out fuse.EntryOut
		if ch, errno = d.lookupKey(ctx, name, bucket, srcKey, &out); errno != 0 {
			return errno
		}
	}
	var victim *gofs.Inode
	if v := np.GetChild(newName); v != nil && v != ch {
		victim = v
	}
	np.adding(newName)
	switch src := ch.Operations().(type) {
	case *fileNode:
		errno = d.renameFile(ctx, src, victim, bucket, srcKey, dstKey, flags&renameNoReplace != 0)
	case *dirNode:
		errno = d.renameDir(ctx, src, victim, bucket, srcKey+"/", dstKey+"/", flags&renameNoReplace != 0)
	default:
		errno = syscall.EINVAL
	}
	if errno == 0 {
		d.touch()
		np.touch()
	}
	if errno == 0 && (d != np) {
		d.keepAlive(ctx)
	}
	return errno
}

// renameFile moves one object: a metadata change in the store. Pending
// writes are committed first, so the rename moves what the file holds.
func (d *dirNode) renameFile(ctx context.Context, src *fileNode, victim *gofs.Inode, bucket, srcKey, dstKey string, noReplace bool) syscall.Errno {
	var vf *fileNode
	if victim != nil {
		if _, isDir := victim.Operations().(*dirNode); isDir {
			return syscall.EISDIR
		}
		vf, _ = victim.Operations().(*fileNode)
	}
	unlock := lockFiles(src, vf)
	defer unlock()
	if err := src.commitLocked(ctx); err != nil {
		return d.fs.errno(err, bucket, srcKey)
	}
	if noReplace {
		if ok, errno := d.fs.keyExists(ctx, bucket, dstKey); errno != 0 {
			return errno
		} else if ok {
			return syscall.EEXIST
		}
	}
	done1, done2 := d.fs.ownOp(bucket, srcKey), d.fs.ownOp(bucket, dstKey)
	err := d.fs.store.Rename(d.fs.keep(ctx), bucket, srcKey, dstKey)
	done1()
	done2()
	if err != nil {
		return d.fs.errno(err, bucket, srcKey)
	}
	if vf != nil {
		vf.removedLocked()
	}
	src.moveTo(dstKey)
	return 0
}

// keyExists reports whether an object or directory is at key.
func (f *FS) keyExists(ctx context.Context, bucket, key string) (bool, syscall.Errno) {
	if _, err := f.store.Head(f.keep(ctx), bucket, key); err == nil {
		return true, 0
	} else if !errors.Is(err, cryptostore.ErrNoSuchKey) {
		return false, f.errno(err, bucket, key)
	}
	ok, err := f.store.HasPrefix(f.keep(ctx), bucket, key+"/")
	if err != nil {
		return false, f.errno(err, bucket, key)
	}
	return ok, 0
}

// lockFiles locks one or two files in a fixed order.
func lockFiles(a, b *fileNode) func() {
	if b == nil || a == b {
		a.mu.Lock()
		return a.mu.Unlock
	}
	if a.seq > b.seq {
		a, b = b, a
	}
	a.mu.Lock()
	b.mu.Lock()
	return func() {
		b.mu.Unlock()
		a.mu.Unlock()
	}
}

// renameDir moves every key under srcPrefix (RenamePrefix: a metadata
// change per object). The destination may be an empty directory, which it
// replaces.
func (d *dirNode) renameDir(ctx context.Context, src *dirNode, victim *gofs.Inode, bucket, srcPrefix, dstPrefix string, noReplace bool) syscall.Errno {
	if strings.HasPrefix(dstPrefix, srcPrefix) {
		return syscall.EINVAL
	}
	if victim != nil {
		if _, isDir := victim.Operations().(*dirNode); !isDir {
			return syscall.ENOTDIR
		}
	}
	dstKey := strings.TrimSuffix(dstPrefix, "/")
	if _, err := d.fs.store.Head(d.fs.keep(ctx), bucket, dstKey); err == nil {
		return syscall.ENOTDIR
	}
	// The destination, if it exists, must be an empty directory.
	page, err := d.fs.store.List(d.fs.keep(ctx), bucket, cryptostore.ListOptions{Prefix: dstPrefix, MaxKeys: 2})
	if err != nil {
		return d.fs.errno(err, bucket, dstPrefix)
	}
	if len(page.Objects) > 0 && noReplace {
		return syscall.EEXIST
	}
	for _, o := range page.Objects {
		if o.Key != dstPrefix {
			return syscall.ENOTEMPTY
		}
	}
	if len(d.fs.dirtyUnder(bucket, dstPrefix)) > 0 {
		return syscall.ENOTEMPTY
	}
	// Commit what files below are still writing, so the rename moves it.
	for _, fn := range d.fs.dirtyUnder(bucket, srcPrefix) {
		fn.mu.Lock()
		err := fn.commitLocked(ctx)
		fn.mu.Unlock()
		if err != nil {
			return d.fs.errno(err, bucket, srcPrefix)
		}
	}
	done1, done2 := d.fs.ownPrefixOp(bucket, srcPrefix), d.fs.ownPrefixOp(bucket, dstPrefix)
	defer done1()
	defer done2()
	if len(page.Objects) > 0 {
		if err := d.fs.store.Delete(d.fs.keep(ctx), bucket, dstPrefix); err != nil && !errors.Is(err, cryptostore.ErrNoSuchKey) {
			return d.fs.errno(err, bucket, dstPrefix)
		}
	}
	if _, err := d.fs.store.RenamePrefix(d.fs.keep(ctx), bucket, srcPrefix, dstPrefix); err != nil {
		return d.fs.errno(err, bucket, srcPrefix)
	}
	if victim != nil {
		if vd, ok := victim.Operations().(*dirNode); ok {
			vd.markGone()
		}
	}
	moveTree(src, srcPrefix, dstPrefix)
	return 0
}

// moveTree gives every node the kernel knows below (and including) n its
// key under the new prefix.
func moveTree(n gofs.InodeEmbedder, srcPrefix, dstPrefix string) {
	var base *node
	switch c := n.(type) {
	case *dirNode:
		base = &c.node
	case *fileNode:
		base = &c.node
	default:
		return
	}
	if _, key, ok := base.loc(); ok && strings.HasPrefix(key, srcPrefix) {
		base.moveTo(dstPrefix + key[len(srcPrefix):])
	}
	for _, ch := range base.Children() {
		moveTree(ch.Operations(), srcPrefix, dstPrefix)
	}
}

// ---- extended attributes

func (d *dirNode) xattrTarget() xattrTarget {
	if d.isBucket {
		return bucketXattrs{d}
	}
	return dirXattrs{d}
}

func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, d.xattrTarget(), attr, dest)
}

func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, d.xattrTarget(), dest)
}

func (d *dirNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, d.xattrTarget(), attr, data, flags)
}

func (d *dirNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return removexattr(ctx, d.xattrTarget(), attr)
}
