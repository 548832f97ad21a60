package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// fileNode is an object seen as a regular file, or as a symlink when its
// stored mode says S_IFLNK. Writes from every open handle go to the node's
// one staging area and are committed together.
type fileNode struct {
	node
	// pending: created through the mount and never committed; only this
	// mount knows the file.
	pending atomic.Bool
	// stale: the object changed outside the mount. The next lookup makes a
	// new node (generation gen+1) rather than reuse this one: with the
	// writeback cache the kernel trusts the size and mtime it holds for a
	// file over anything we answer, so only a new inode shows new ones.
	// Handles open on this node keep reading their version.
	stale atomic.Bool
	gen   uint64 // the inode's generation

	// writesAt counts the WRITE requests in progress by offset: a write
	// that arrived early waits for the one before it only if that one has
	// arrived too.
	writesMu sync.Mutex
	writesAt map[int64]int

	mu    sync.Mutex
	st    *staging // writes not yet committed; nil when clean
	opens int      // open handles
	// kver is the version whose size and pages the kernel holds for this
	// inode: the one its lookup returned, or the last one this mount
	// committed through it. Zero: none (a new file, or the kernel's cache
	// holds something no version has, after a failed commit). vh pins it
	// while handles are open; handles that use the page cache read it.
	kver   cryptostore.ObjectID
	vh     *pinned
	last   *cryptostore.Object // the record seen last
	target string              // a symlink's target, once read
}

// pinned is a version held open for a node's handles, counted: the node
// holds one reference while it has open handles, a staging based on it
// one, and each read in progress one.
type pinned struct {
	h    *cryptostore.Handle
	refs atomic.Int32
}

func pin(h *cryptostore.Handle) *pinned {
	p := &pinned{h: h}
	p.refs.Store(1)
	return p
}

func (p *pinned) ref() *pinned { p.refs.Add(1); return p }

// release drops a reference; the last one closes the handle.
func (p *pinned) release() {
	if p.refs.Add(-1) == 0 {
		p.h.Close()
	}
}

func (p *pinned) ReadAt(b []byte, off int64) (int, error) { return p.h.ReadAt(b, off) }
func (p *pinned) Size() int64                             { return p.h.Size() }

func newFileNode(f *FS, kind byte, bucket, key string) *fileNode {
	n := &fileNode{}
	n.init(f, kind, bucket, key)
	return n
}

func (n *fileNode) isPending() bool { return n.pending.Load() }

// arriving registers a WRITE at off until the returned function is called.
// The map goes when the last write in progress ends: a node outlives its
// writes by far (the kernel keeps inodes it has seen), and an emptied map
// keeps its memory, ~250 bytes, the largest single allocation an untarred
// file's node held on to.
func (n *fileNode) arriving(off int64) func() {
	n.writesMu.Lock()
	if n.writesAt == nil {
		n.writesAt = make(map[int64]int)
	}
	n.writesAt[off]++
	n.writesMu.Unlock()
	return func() {
		n.writesMu.Lock()
		if n.writesAt[off]--; n.writesAt[off] <= 0 {
			delete(n.writesAt, off)
			if len(n.writesAt) == 0 {
				n.writesAt = nil
			}
		}
		n.writesMu.Unlock()
	}
}

// arrived reports whether a WRITE at off is in progress.
func (n *fileNode) arrived(off int64) bool {
	n.writesMu.Lock()
	defer n.writesMu.Unlock()
	return n.writesAt[off] > 0
}

// seen records the latest record found by a lookup.
func (n *fileNode) seen(obj *cryptostore.Object) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.last != nil && n.last.ID != obj.ID {
		n.target = ""
	}
	n.last = obj
}

// forget drops what the node caches about its object (it changed outside
// the mount).
func (n *fileNode) forget() {
	n.mu.Lock()
	n.target = ""
	n.mu.Unlock()
}

// attr fills out with the node's attributes as last known.
func (n *fileNode) attr(out *fuse.Attr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.attrLocked(out)
}

func (n *fileNode) attrLocked(out *fuse.Attr) {
	switch {
	case n.st != nil:
		n.fs.fillAttr(out, n.ino, n.kind, n.fs.posixOf(&n.st.meta, 0o644, n.fs.started), n.st.size)
	case n.last != nil:
		n.fs.objectAttr(out, n.ino, n.last)
	default:
		n.fs.fillAttr(out, n.ino, n.kind, posix{mode: 0o644, uid: n.fs.uid, gid: n.fs.gid, mtime: n.fs.started}, 0)
	}
	if _, _, ok := n.loc(); !ok {
		out.Nlink = 0
	}
}

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if bucket, key, ok := n.loc(); ok && n.st == nil {
		obj, err := n.fs.store.Head(n.fs.keep(ctx), bucket, key)
		if err != nil {
			return n.fs.errno(err, bucket, key)
		}
		n.last = obj
	}
	n.attrLocked(&out.Attr)
	return 0
}

// MaxFileSize is the largest file the mount stores: the largest object S3
// stores, 5 TiB. A truncate, write or fallocate beyond it fails with EFBIG
// (the kernel does not check a limit for FUSE).
const MaxFileSize = 5 << 40

// Setattr truncates through the staging area (committed at the next flush,
// or at once when no handle is open) and stores mode, owner and mtime in
// the object's metadata: with the pending writes if there are any, else in
// a metadata-only commit.
func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	bucket, key, ok := n.loc()
	if ok {
		if errno := n.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
			return errno
		}
	}
	// A truncate(2) (no handle) with nothing staged is committed at once,
	// as is any truncate of a file nobody has open: no flush of the
	// caller's would report a failed commit, and a handle still counted
	// open may be one whose release has not arrived yet (the kernel sends
	// it after close returns), whose failed commit would undo a truncate
	// that had succeeded. An ftruncate is staged with the handle's writes.
	size, sized := in.GetSize()
	atOnce := sized && ok && (n.opens == 0 || (fh == nil && n.st == nil))
	if sized {
		if n.kind == kindLink {
			return syscall.EINVAL
		}
		if size > MaxFileSize {
			return syscall.EFBIG
		}
		if errno := n.stageLocked(ctx); errno != 0 {
			return errno
		}
		if err := n.st.truncate(int64(size)); err != nil {
			if atOnce {
				n.dropIdleStagingLocked()
				return n.fs.errno(err, bucket, key)
			}
			return n.fs.errno(n.stagingFailed(err), bucket, key)
		}
		n.st.wrote = true
		n.st.mtimeSet = false
	}
	if hasPOSIXChange(in) {
		switch {
		case n.st != nil:
			cur := n.fs.posixOf(&n.st.meta, 0o644, n.fs.started)
			applySetattr(&n.st.meta, cur, in)
			if _, has := in.GetMTime(); has {
				n.st.mtimeSet = true
			}
		case !ok:
			// Deleted but open: nothing to store it in.
		default:
			done := n.fs.ownOp(bucket, key)
			obj, err := n.fs.store.UpdateMeta(n.fs.keep(ctx), bucket, key, func(m *cryptostore.ObjectMeta) error {
				dfl := uint32(0o644)
				if n.kind == kindLink {
					dfl = 0o777 | syscall.S_IFLNK
				}
				applySetattr(m, n.fs.posixOf(m, dfl, n.fs.started), in)
				return nil
			})
			done()
			if err != nil {
				return n.fs.errno(err, bucket, key)
			}
			n.last = obj
		}
	}
	if atOnce {
		kver := n.kver
		if err := n.commitLocked(ctx); err != nil {
			n.dropIdleStagingLocked()
			n.kver = kver
			return n.fs.errno(err, bucket, key)
		}
	}
	n.attrLocked(&out.Attr)
	return 0
}

// stageLocked makes sure the node has a staging area. Its base is the
// version the open handles pinned (vh), which the kernel's cache holds;
// with no handle open (truncate(2) of a closed file), the object's current
// version.
func (n *fileNode) stageLocked(ctx context.Context) syscall.Errno {
	if n.st != nil {
		return 0
	}
	if n.vh != nil {
		obj := n.vh.h.Object()
		if n.last != nil && n.last.ID == obj.ID {
			obj = n.last // the same version, with metadata changed since (chmod)
		}
		n.st = newStaging(n, n.vh.ref(), obj.Meta.Clone(), true)
		n.fs.markDirty(n)
		return 0
	}
	bucket, key, ok := n.loc()
	var b base
	var m cryptostore.ObjectMeta
	consistent := true
	if ok {
		h, err := n.fs.store.Open(n.fs.keep(ctx), bucket, key)
		if err != nil {
			return n.fs.errno(err, bucket, key)
		}
		b = pin(h)
		m = h.Object().Meta.Clone()
		n.last = h.Object()
		consistent = h.Object().ID == n.kver
	} else if n.last != nil {
		m = n.last.Meta.Clone()
	}
	n.st = newStaging(n, b, m, consistent)
	n.fs.markDirty(n)
	return 0
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	bucket, key, ok := n.loc()
	if !ok {
		return nil, 0, syscall.ENOENT
	}
	if n.kind == kindLink {
		return nil, 0, syscall.ELOOP
	}
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY {
		if errno := n.fs.allowObject("s3:GetObject", bucket, key); errno != 0 {
			return nil, 0, errno
		}
	}
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if errno := n.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
			return nil, 0, errno
		}
	}
	if n.st != nil && n.st.broken != nil {
		// Its writes were lost (stagingFailed): the handles still open
		// only wait for their close to fail. A new open must not join
		// them; ESTALE has the kernel look the name up again, and the
		// lookup makes a new inode, which reads the version last
		// committed.
		n.stale.Store(true)
		return nil, 0, syscall.ESTALE
	}
	h := &fileHandle{n: n}
	var fuseFlags uint32
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	trunc := flags&syscall.O_TRUNC != 0 && write
	if write {
		if errno := n.fs.writable(ctx, bucket); errno != 0 {
			return nil, 0, errno
		}
	}
	switch {
	case n.st != nil && n.st.consistent:
		// The kernel's pages hold what was written here.
		fuseFlags = fuse.FOPEN_KEEP_CACHE
		if trunc {
			if err := n.st.truncate(0); err != nil {
				return nil, 0, n.fs.errno(n.stagingFailed(err), bucket, key)
			}
			n.st.wrote = true
		}
	case n.st != nil:
		// Staged over a version the kernel's pages do not hold (see
		// stageLocked): read and write it past the page cache.
		fuseFlags = fuse.FOPEN_DIRECT_IO
		if trunc {
			if err := n.st.truncate(0); err != nil {
				return nil, 0, n.fs.errno(n.stagingFailed(err), bucket, key)
			}
			n.st.wrote = true
		}
	case trunc:
		// The kernel truncates its pages and size with the open (atomic
		// O_TRUNC): they hold the new, empty content.
		obj, err := n.fs.store.Head(n.fs.keep(ctx), bucket, key)
		if err != nil {
			return nil, 0, n.fs.errno(err, bucket, key)
		}
		n.last = obj
		n.st = newStaging(n, nil, obj.Meta.Clone(), true)
		n.st.wrote = true
		n.fs.markDirty(n)
	default:
		rh, err := n.fs.store.Open(n.fs.keep(ctx), bucket, key)
		if err != nil {
			return nil, 0, n.fs.errno(err, bucket, key)
		}
		obj := rh.Object()
		n.last = obj
		switch {
		case obj.ID == n.kver:
			// The common case: the version the kernel caches, whose
			// pages stay valid.
			fuseFlags = fuse.FOPEN_KEEP_CACHE
			if n.vh == nil {
				n.vh = pin(rh)
			} else {
				rh.Close()
			}
		case write && n.vh != nil:
			// Changed outside since the open handles pinned the version
			// the kernel caches: write on that one (the close commits it
			// with the writes, a later write than the outside one).
			rh.Close()
			fuseFlags = fuse.FOPEN_KEEP_CACHE
		case write:
			// The kernel's size and pages for this inode are another
			// version's, and nothing holds that one any more. The kernel
			// takes ESTALE from open as a cue to look the name up again
			// (LOOKUP_REVAL), and the lookup makes a new inode.
			rh.Close()
			n.stale.Store(true)
			return nil, 0, syscall.ESTALE
		default:
			// A reader of a version the kernel does not cache for this
			// inode: it reads exactly that version, past the page cache,
			// so that neither fills it with the other's bytes. The next
			// lookup makes a new inode for the new version.
			n.stale.Store(true)
			fuseFlags = fuse.FOPEN_DIRECT_IO
			h.own = rh
		}
	}
	n.opens++
	return h, fuseFlags, 0
}

// writable refuses a write into bucket that could not commit: while the
// bucket encrypts and its master key is disabled (or pending deletion),
// every commit would fail with ENOKEY, and a close's error is one most
// programs ignore (a shell's redirect does), so the open says it instead.
// A key disabled while the file is open still fails the close.
func (f *FS) writable(ctx context.Context, bucket string) syscall.Errno {
	b, err := f.store.GetBucket(f.keep(ctx), bucket)
	if err != nil {
		return f.errno(err, bucket, "")
	}
	if !b.EncryptionOn || b.MasterKeyID == "" {
		return 0 // plain, or the key is made by the first commit
	}
	k, err := f.store.DescribeKey(f.keep(ctx), b.MasterKeyID)
	if errors.Is(err, cryptostore.ErrKMSKeyNotFound) {
		return syscall.ENOKEY
	}
	if err != nil {
		return f.errno(err, bucket, "")
	}
	if k.State != cryptostore.KeyEnabled {
		return syscall.ENOKEY
	}
	return 0
}

// commitLocked commits the staged writes, if any, through the store's one
// write path. A deleted file commits nothing (its data stays readable
// through the handles still open).
func (n *fileNode) commitLocked(ctx context.Context) error {
	st := n.st
	if st == nil {
		return nil
	}
	bucket, key, ok := n.loc()
	if !ok {
		return nil
	}
	done := n.fs.ownOp(bucket, key)
	h, err := st.commit(n.fs.keep(ctx), bucket, key)
	done()
	if err != nil {
		if errors.Is(err, cryptostore.ErrVersionGone) {
			// Committed, but replaced at once, before it could be held.
			st.close()
			n.st = nil
			n.pending.Store(false)
			n.fs.markClean(n)
			n.committedLocked(nil, false)
			return nil
		}
		// The kernel's pages hold what failed to commit: no version has
		// that content.
		n.kver = cryptostore.ObjectID{}
		return err
	}
	st.close()
	n.st = nil
	n.pending.Store(false)
	n.committedLocked(h, st.consistent)
	n.fs.markClean(n)
	return nil
}

// dropIdleStagingLocked drops the staging of a truncate(2) of a file
// nobody has open that failed: no flush would ever commit it, and the
// kernel keeps the file's old size, so the file keeps the version it has
// (kept staged, it would be read with the kernel's old size, zeros past
// the new end).
func (n *fileNode) dropIdleStagingLocked() {
	if n.st == nil {
		return
	}
	n.st.close()
	n.st = nil
	n.fs.markClean(n)
}

// stagingFailed records that an operation on the file's staging failed
// (the disk is full, say). It may have lost bytes the staging held (a
// window half moved into the spool, a chunk half written), and the
// kernel's pages may hold writes it never stored (the kernel reports their
// error at fsync or close): a commit of what is left would store a version
// that is neither the file's old content nor its new one. So the staging
// is broken — every later commit of it fails, and the last close drops it,
// the file keeping the version last committed — and the inode loses its
// version: the next lookup makes a new inode, which reads that version.
// Called with n.mu held; returns err.
func (n *fileNode) stagingFailed(err error) error {
	if n.st != nil && n.st.broken == nil {
		n.st.broken = fmt.Errorf("writes since the last commit were lost: %w", err)
	}
	n.kver = cryptostore.ObjectID{}
	// Stale, so that the next lookup makes a new inode, whose pages are
	// empty. No invalidation is posted: it names the key, and would reach
	// the new inode (marking it stale in turn, splitting the file between
	// the inode its writer holds and the one a new open gets).
	n.stale.Store(true)
	return err
}

// committedLocked records a version this mount committed (h, which it
// takes; nil if it could not be held). If the kernel's pages and size hold
// its content (consistent), it is the inode's version from now on, and
// handles that use the page cache read it. Otherwise the inode gets no
// version: later opens read past the page cache and the next lookup makes
// a new inode.
func (n *fileNode) committedLocked(h *cryptostore.Handle, consistent bool) {
	if n.vh != nil {
		n.vh.release()
		n.vh = nil
	}
	if h == nil || !consistent {
		n.kver = cryptostore.ObjectID{}
		n.stale.Store(true)
		if bucket, key, ok := n.loc(); ok {
			n.fs.inval.post(cryptostore.ChangeEvent{Kind: cryptostore.ChangePut, Bucket: bucket, Key: key})
		}
	} else {
		n.kver = h.Object().ID
	}
	if h == nil {
		return
	}
	n.last = h.Object()
	if n.opens > 0 {
		n.vh = pin(h)
	} else {
		h.Close()
	}
}

// removedLocked records that the file was deleted or replaced.
func (n *fileNode) removedLocked() {
	n.markGone()
	n.pending.Store(false)
	switch {
	case n.st == nil:
	case n.opens == 0:
		n.st.close()
		n.st = nil
	case n.st.put != nil:
		// The stream would commit the file again: stop it. What it
		// carried is lost to the handles still open.
		n.st.abortStream()
		n.st.broken = errGone
	}
	n.fs.markClean(n)
}

// Readlink returns a symlink's target: the object's content.
func (n *fileNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kind != kindLink {
		return nil, syscall.EINVAL
	}
	if n.target != "" {
		return []byte(n.target), 0
	}
	bucket, key, ok := n.loc()
	if !ok {
		return nil, syscall.ENOENT
	}
	h, err := n.fs.store.Open(n.fs.keep(ctx), bucket, key)
	if err != nil {
		return nil, n.fs.errno(err, bucket, key)
	}
	defer h.Close()
	if h.Size() > 64<<10 {
		return nil, syscall.ENAMETOOLONG
	}
	buf := make([]byte, h.Size())
	if _, err := h.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, n.fs.errno(err, bucket, key)
	}
	n.target = string(buf)
	return buf, 0
}

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return getxattr(ctx, fileXattrs{n}, attr, dest)
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(ctx, fileXattrs{n}, dest)
}

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return setxattr(ctx, fileXattrs{n}, attr, data, flags)
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return removexattr(ctx, fileXattrs{n}, attr)
}

// fileHandle is an open file. It reads one version from open to close,
// whatever is done to the object outside the mount meanwhile: either its
// own (own, opened with FOPEN_DIRECT_IO), or the node's: the version the
// kernel caches for the inode (vh), or the staged content while writes
// through the mount are staged (all of the file's handles see those, as on
// a local file system). See "Kernel caching" in the package doc. Nothing
// is ever reopened by key on a read.
type fileHandle struct {
	n   *fileNode
	own *cryptostore.Handle // set once at open; closed by Release
}

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.n
	if h.own != nil {
		nr, err := h.own.ReadAt(dest, off)
		if err != nil && err != io.EOF {
			bucket, key, _ := n.loc()
			return nil, n.fs.errno(err, bucket, key)
		}
		return fuse.ReadResultData(dest[:nr]), 0
	}
	n.mu.Lock()
	bucket, key, _ := n.loc()
	if n.st != nil {
		nr, err := n.st.readAt(dest, off)
		if err != nil && err != io.EOF {
			n.stagingFailed(err)
		}
		n.mu.Unlock()
		if err != nil && err != io.EOF {
			return nil, n.fs.errno(err, bucket, key)
		}
		return fuse.ReadResultData(dest[:nr]), 0
	}
	vh := n.vh
	if vh == nil {
		// Only after a commit of ours was replaced before it could be
		// held (committedLocked): there is nothing consistent to read.
		n.mu.Unlock()
		return nil, syscall.ESTALE
	}
	vh.ref()
	n.mu.Unlock()
	defer vh.release()
	nr, err := vh.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, n.fs.errno(err, bucket, key)
	}
	return fuse.ReadResultData(dest[:nr]), 0
}

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if off < 0 || off > MaxFileSize-int64(len(data)) {
		return 0, syscall.EFBIG
	}
	n := h.n
	defer n.arriving(off)()
	n.mu.Lock()
	defer n.mu.Unlock()
	bucket, key, _ := n.loc()
	if n.st != nil {
		n.st.awaitTurn(off)
	}
	if errno := n.stageLocked(ctx); errno != 0 {
		return 0, errno
	}
	if err := n.st.write(data, off); err != nil {
		return 0, n.fs.errno(n.stagingFailed(err), bucket, key)
	}
	return uint32(len(data)), 0
}

// Flush commits the file's staged writes: close(2) returns once the new
// version is in the store and visible to S3. The commit is made durable by
// the next sync (fsync, unmount or the background sync; see Durability in
// doc.go).
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.commitLocked(ctx); err != nil {
		bucket, key, _ := n.loc()
		return n.fs.errno(err, bucket, key)
	}
	return 0
}

// Fsync commits like Flush, then makes the commit durable before it
// returns.
func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := h.Flush(ctx); errno != 0 {
		return errno
	}
	if err := h.n.fs.store.Sync(h.n.fs.keep(ctx)); err != nil {
		bucket, key, _ := h.n.loc()
		return h.n.fs.errno(err, bucket, key)
	}
	return 0
}

// Release closes the handle; the last one out commits what is still staged
// (writes through a memory mapping can arrive after the last flush).
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	n := h.n
	n.mu.Lock()
	n.opens--
	if n.opens == 0 && n.st != nil {
		if err := n.commitLocked(ctx); err != nil {
			bucket, key, _ := n.loc()
			n.fs.log.Error("writes lost: the last close could not commit them", "bucket", bucket, "key", key, "err", err)
		}
		if n.st != nil { // failed, or deleted: nothing will commit it now
			n.st.close()
			n.st = nil
			n.fs.markClean(n)
			// The kernel's pages and size hold what could not be
			// committed: no open may use them (Open finds no version
			// for them), and the next lookup makes a new inode.
			n.kver = cryptostore.ObjectID{}
			n.stale.Store(true)
			if n.pending.Swap(false) {
				// A new file that never made it to the store: have the
				// kernel forget it.
				if bucket, key, ok := n.loc(); ok {
					n.fs.inval.post(cryptostore.ChangeEvent{Kind: cryptostore.ChangeDelete, Bucket: bucket, Key: key})
				}
			}
		}
	}
	if n.opens == 0 && n.vh != nil {
		// Nobody reads it now; the kernel keeps its pages (kver) for an
		// open that finds the same version.
		n.vh.release()
		n.vh = nil
	}
	n.mu.Unlock()
	if h.own != nil {
		h.own.Close()
	}
	return 0
}

// Allocate supports plain fallocate (which may extend the file) and
// FALLOC_FL_KEEP_SIZE (a no-op: space is not reserved ahead).
func (h *fileHandle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	const keepSize = 1 // FALLOC_FL_KEEP_SIZE
	switch mode {
	case keepSize:
		return 0
	case 0:
	default:
		return syscall.EOPNOTSUPP
	}
	if off > MaxFileSize || size > MaxFileSize-off {
		return syscall.EFBIG
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if errno := n.stageLocked(ctx); errno != 0 {
		return errno
	}
	if end := int64(off + size); end > n.st.size {
		bucket, key, _ := n.loc()
		if err := n.st.truncate(end); err != nil {
			return n.fs.errno(n.stagingFailed(err), bucket, key)
		}
		n.st.wrote = true
	}
	return 0
}
