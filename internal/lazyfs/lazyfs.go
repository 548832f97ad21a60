// Package lazyfs is a power-cut simulator for tests: a FUSE loopback file
// system over a backing directory that keeps written-but-unsynced file data
// in its own memory, the way a disk's page cache does. Only fsync (or
// fdatasync, or msync of a shared mapping, which the kernel turns into
// writes and an fsync) moves a file's data and size to the backing file. A
// "cut" kills the process that serves the mount: what was not synced is
// gone, and a new mount over the same backing directory serves only what
// was. Namespace operations (create, mkdir, rename, unlink, link) reach the
// backing directory at once, the adversarial case for a program that orders
// an unlink after a commit that is not yet durable.
//
// The mount runs in a child process (Start), never in the process under
// test: a file system served by the process that uses it can deadlock. The
// child is a re-run of the test binary; a test package that uses Start must
// call ChildMain first thing (from TestMain or an init function).
//
// Kernel passthrough is disabled and the kernel's page cache of the mount is
// thrown away with it at a cut (the dead mount is detached and a new one
// made), so nothing the kernel cached survives a cut either.
package lazyfs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const pageSize = 4096

// fileState is what the kernel would hold in its page cache for one file:
// pages written since the last sync, and the file's size.
type fileState struct {
	size int64 // current size
	// low is the least size the file had since the last sync: bytes at or
	// past it that are not in pages are zeros, not what the backing file
	// holds.
	low   int64
	pages map[int64][]byte // page index → content
	// ghost pages failed to be written back (an injected fsync error): they
	// read as written but never reach the backing file, as on Linux.
	ghost map[int64][]byte
}

func (st *fileState) dirtyBytes() int64 { return int64(len(st.pages)) * pageSize }

// server is the file system of one mount.
type server struct {
	backing string

	mu    sync.Mutex
	files map[fs.StableAttr]*fileState
	// failFsync: the next fsync of a file whose path (relative to the mount)
	// contains one of these fails with EIO and its unsynced pages are lost.
	failFsync []string
	fsyncs    int64
	synced    int64 // bytes moved to the backing directory by fsync
}

// node is a loopback node whose file data goes through the server's
// page cache.
type node struct {
	*fs.LoopbackNode
	srv *server
}

// WrapChild makes every node the loopback creates one of ours.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if ln, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: ln, srv: n.srv}
	}
	return ops
}

var (
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeGetattrer = (*node)(nil)
	_ fs.NodeSetattrer = (*node)(nil)
	_ fs.NodeFsyncer   = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeLookuper  = (*node)(nil)

	_ fs.NodeWrapChilder = (*node)(nil)
)

func (n *node) backingPath() string {
	return filepath.Join(n.srv.backing, n.Path(nil))
}

// state returns the file's cached state, making it from the backing file
// f when there is none.
func (n *node) stateLocked(f *os.File) (*fileState, syscall.Errno) {
	key := n.StableAttr()
	if st := n.srv.files[key]; st != nil {
		return st, 0
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	st := &fileState{size: fi.Size(), low: fi.Size(), pages: make(map[int64][]byte)}
	n.srv.files[key] = st
	tracef("state %s key=%d/%d size=%d", n.Path(nil), key.Ino, key.Gen, fi.Size())
	return st, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f, err := os.OpenFile(n.backingPath(), os.O_RDWR, 0)
	if err != nil {
		if f, err = os.OpenFile(n.backingPath(), os.O_RDONLY, 0); err != nil {
			return nil, 0, fs.ToErrno(err)
		}
	}
	h := &handle{n: n, f: f}
	if flags&syscall.O_TRUNC != 0 {
		n.srv.mu.Lock()
		errno := h.truncateLocked(0)
		n.srv.mu.Unlock()
		if errno != 0 {
			f.Close()
			return nil, 0, errno
		}
	}
	return h, 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := filepath.Join(n.backingPath(), name)
	excl := int(flags) & os.O_EXCL
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|excl, os.FileMode(mode&0o7777))
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	var sx syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &sx); err != nil {
		f.Close()
		return nil, nil, 0, fs.ToErrno(err)
	}
	child := &node{LoopbackNode: &fs.LoopbackNode{RootData: n.RootData}, srv: n.srv}
	ch := n.NewInode(ctx, child, stableAttr(n.RootData, p, &sx))
	cn := ch.Operations().(*node)
	h := &handle{n: cn, f: f}
	if flags&syscall.O_TRUNC != 0 {
		n.srv.mu.Lock()
		errno := h.truncateLocked(0)
		n.srv.mu.Unlock()
		if errno != 0 {
			f.Close()
			return nil, nil, 0, errno
		}
	}
	out.FromStat(&sx)
	cn.fixSize(&out.Attr)
	tracef("create %s key=%d/%d ino=%d got=%d/%d", p, ch.StableAttr().Ino, ch.StableAttr().Gen, sx.Ino, cn.StableAttr().Ino, cn.StableAttr().Gen)
	return ch, h, 0, 0
}

// stableAttr computes the node id as the loopback does (inode number and
// birth time), so that a create and a later lookup agree.
func stableAttr(r *fs.LoopbackRoot, p string, sx *syscall.Stat_t) fs.StableAttr {
	var stx unix.Statx_t
	gen := uint64(1)
	if unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME, &stx) == nil && (stx.Btime.Sec != 0 || stx.Btime.Nsec != 0) {
		gen = uint64(stx.Btime.Sec)*1e9 + uint64(stx.Btime.Nsec)
	}
	swapped := (sx.Dev << 32) | (sx.Dev >> 32)
	swappedRootDev := (r.Dev << 32) | (r.Dev >> 32)
	return fs.StableAttr{Mode: sx.Mode, Gen: gen, Ino: (swapped ^ swappedRootDev) ^ sx.Ino}
}

// Lookup reports the cached size: the kernel applies what a lookup (or a
// READDIRPLUS entry) says to an inode it has, and a size smaller than what
// it mapped would cut its mappings short (SIGBUS).
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		if cn, ok := ch.Operations().(*node); ok {
			cn.fixSize(&out.Attr)
		}
	}
	return ch, errno
}

// fixSize reports the cached size instead of the backing file's.
func (n *node) fixSize(a *fuse.Attr) {
	n.srv.mu.Lock()
	defer n.srv.mu.Unlock()
	if st := n.srv.files[n.StableAttr()]; st != nil {
		a.Size = uint64(st.size)
		a.Blocks = (a.Size + 511) / 512
	}
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var sx syscall.Stat_t
	if h, ok := f.(*handle); ok {
		if err := syscall.Fstat(int(h.f.Fd()), &sx); err != nil {
			return fs.ToErrno(err)
		}
	} else if err := syscall.Lstat(n.backingPath(), &sx); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&sx)
	n.fixSize(&out.Attr)
	if debug {
		fmt.Fprintf(os.Stderr, "lazyfs: getattr %s fh=%v size=%d key=%v\n", n.Path(nil), f != nil, out.Size, n.StableAttr())
	}
	return 0
}

var debug = os.Getenv("LAZYFS_DEBUG") != ""

// traceFile, when set (SEALFS_LAZYFS_TRACE names it), gets one line for
// every operation that decides what survives a cut: creates, truncates,
// fsyncs, renames and unlinks, with the node identity the cache is keyed by.
var traceFile *os.File

func tracef(format string, args ...any) {
	if traceFile != nil {
		fmt.Fprintf(traceFile, time.Now().Format("15:04:05.000000")+" "+format+"\n", args...)
	}
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		h, _ := f.(*handle)
		if h == nil {
			fh, _, errno := n.Open(ctx, 0)
			if errno != 0 {
				return errno
			}
			h = fh.(*handle)
			defer h.Release(ctx)
		}
		n.srv.mu.Lock()
		errno := h.truncateLocked(int64(sz))
		n.srv.mu.Unlock()
		if errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := n.LoopbackNode.Setattr(ctx, nil, in, out); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, f, out)
}

// Fsync without a handle of ours: a directory's entries are durable
// already; a file's cached data is written through a descriptor of its own.
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
		return 0
	}
	fmt.Fprintf(os.Stderr, "lazyfs: fsync of %s without a handle\n", n.Path(nil))
	bf, err := os.OpenFile(n.backingPath(), os.O_RDWR, 0)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer bf.Close()
	return (&handle{n: n, f: bf}).Fsync(ctx, flags)
}

// Unlink drops the cached state of a file whose last name goes (its
// inode number may be reused).
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	p := filepath.Join(n.backingPath(), name)
	var sx syscall.Stat_t
	known := syscall.Lstat(p, &sx) == nil && sx.Nlink == 1
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		return errno
	}
	tracef("unlink %s known=%v ino=%d", p, known, sx.Ino)
	if known {
		if ch := n.GetChild(name); ch != nil {
			tracef("unlink %s drops key=%d/%d", p, ch.StableAttr().Ino, ch.StableAttr().Gen)
			n.srv.mu.Lock()
			delete(n.srv.files, ch.StableAttr())
			n.srv.mu.Unlock()
		}
	}
	return 0
}

// Rename is the loopback's, traced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var key fs.StableAttr
	if ch := n.GetChild(name); ch != nil {
		key = ch.StableAttr()
	}
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if traceFile != nil {
		tracef("rename %s -> %s/%s key=%d/%d errno=%d", filepath.Join(n.Path(nil), name), newParent.EmbeddedInode().Path(nil), newName, key.Ino, key.Gen, errno)
	}
	return errno
}

// handle is an open file: reads and writes go through the server's cache
// of the file; the backing descriptor is read for pages not cached and
// written only by fsync.
type handle struct {
	n *node
	f *os.File
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
)

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.n.Getattr(ctx, h, out)
}

func (h *handle) Flush(ctx context.Context) syscall.Errno { return 0 }

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.f.Close()
	return 0
}

// pageLocked returns the content of page i of st as the file has it now
// (nil if it is only in the backing file).
func (h *handle) readPageLocked(st *fileState, i int64, buf []byte) {
	if p := st.pages[i]; p != nil {
		copy(buf, p)
		return
	}
	if p := st.ghost[i]; p != nil {
		copy(buf, p)
		return
	}
	clear(buf)
	off := i * pageSize
	if off >= st.low {
		return
	}
	n, _ := h.f.ReadAt(buf[:min(pageSize, st.low-off)], off)
	clear(buf[n:])
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	srv := h.n.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st := srv.files[h.n.StableAttr()]
	if st == nil {
		n, err := h.f.ReadAt(dest, off)
		if err != nil && err != io.EOF {
			return nil, fs.ToErrno(err)
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	end := min(off+int64(len(dest)), st.size)
	if off >= end {
		return fuse.ReadResultData(nil), 0
	}
	page := make([]byte, pageSize)
	out := dest[:end-off]
	for pos := off; pos < end; {
		i := pos / pageSize
		h.readPageLocked(st, i, page)
		po := pos - i*pageSize
		n := copy(out[pos-off:], page[po:])
		pos += int64(n)
	}
	return fuse.ReadResultData(out), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	srv := h.n.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st, errno := h.n.stateLocked(h.f)
	if errno != 0 {
		return 0, errno
	}
	end := off + int64(len(data))
	for pos := off; pos < end; {
		i := pos / pageSize
		p := st.pages[i]
		if p == nil {
			p = make([]byte, pageSize)
			h.readPageLocked(st, i, p)
			st.pages[i] = p
		}
		po := pos - i*pageSize
		n := copy(p[po:], data[pos-off:])
		pos += int64(n)
	}
	st.size = max(st.size, end)
	return uint32(len(data)), 0
}

func (h *handle) truncateLocked(size int64) syscall.Errno {
	st, errno := h.n.stateLocked(h.f)
	if errno != 0 {
		return errno
	}
	tracef("truncate %s key=%d/%d to %d (size %d low %d)", h.n.Path(nil), h.n.StableAttr().Ino, h.n.StableAttr().Gen, size, st.size, st.low)
	if size < st.size {
		last := size / pageSize
		if size%pageSize != 0 {
			p := st.pages[last]
			if p == nil {
				p = make([]byte, pageSize)
				h.readPageLocked(st, last, p)
				st.pages[last] = p
			}
			clear(p[size%pageSize:])
			last++
		}
		for i := range st.pages {
			if i >= last {
				delete(st.pages, i)
			}
		}
		for i := range st.ghost {
			if i >= last {
				delete(st.ghost, i)
			}
		}
		st.low = min(st.low, size)
	}
	st.size = size
	return 0
}

// Fsync writes the file's cached pages and size to the backing file.
func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	srv := h.n.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	srv.fsyncs++
	key := h.n.StableAttr()
	st := srv.files[key]
	if traceFile != nil {
		var sx syscall.Stat_t
		syscall.Fstat(int(h.f.Fd()), &sx)
		if st == nil {
			tracef("fsync %s key=%d/%d fd-ino=%d fd-size=%d clean", h.n.Path(nil), key.Ino, key.Gen, sx.Ino, sx.Size)
		} else {
			tracef("fsync %s key=%d/%d fd-ino=%d fd-size=%d low=%d size=%d pages=%d", h.n.Path(nil), key.Ino, key.Gen, sx.Ino, sx.Size, st.low, st.size, len(st.pages))
		}
	}
	if st == nil {
		return 0
	}
	rel := h.n.Path(nil)
	for i, s := range srv.failFsync {
		if strings.Contains(rel, s) {
			srv.failFsync = append(srv.failFsync[:i], srv.failFsync[i+1:]...)
			if st.ghost == nil {
				st.ghost = make(map[int64][]byte)
			}
			for i, p := range st.pages {
				st.ghost[i] = p
			}
			st.pages = make(map[int64][]byte)
			fmt.Fprintf(os.Stderr, "lazyfs: injected fsync EIO on %s\n", rel)
			return syscall.EIO
		}
	}
	if err := h.f.Truncate(st.low); err != nil {
		return fs.ToErrno(err)
	}
	if err := h.f.Truncate(st.size); err != nil {
		return fs.ToErrno(err)
	}
	idx := make([]int64, 0, len(st.pages))
	for i := range st.pages {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	for _, i := range idx {
		off := i * pageSize
		if off >= st.size {
			continue
		}
		n := min(pageSize, st.size-off)
		if _, err := h.f.WriteAt(st.pages[i][:n], off); err != nil {
			return fs.ToErrno(err)
		}
		srv.synced += n
	}
	if len(st.ghost) == 0 {
		delete(srv.files, key)
	} else {
		st.pages = make(map[int64][]byte)
		st.low = st.size
	}
	return 0
}

// Serve mounts backing at mnt and serves it until ctl reaches EOF (then it
// unmounts) or the process is killed (a cut). It writes "ready" to out once
// mounted and answers the commands read from ctl, one a line:
//
//	fail-fsync SUBSTR   the next fsync of a file whose path contains SUBSTR fails with EIO
//	stats               prints "stats FILES DIRTYBYTES FSYNCS SYNCEDBYTES"
func Serve(backing, mnt string, ctl io.Reader, out io.Writer) error {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return err
	}
	var sx syscall.Stat_t
	if err := syscall.Stat(backing, &sx); err != nil {
		return fmt.Errorf("lazyfs: %w", err)
	}
	if p := os.Getenv("SEALFS_LAZYFS_TRACE"); p != "" {
		if traceFile, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return fmt.Errorf("lazyfs: %w", err)
		}
		tracef("mount %s", mnt)
	}
	srv := &server{backing: backing, files: make(map[fs.StableAttr]*fileState)}
	root := &fs.LoopbackRoot{Path: backing, Dev: sx.Dev}
	rootNode := &node{LoopbackNode: &fs.LoopbackNode{RootData: root}, srv: srv}
	root.RootNode = rootNode
	zero := time.Duration(0)
	opts := &fs.Options{
		AttrTimeout:  &zero,
		EntryTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:               "lazyfs",
			Name:                 "lazyfs",
			DirectMount:          true,
			AllowOther:           os.Geteuid() == 0,
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			DisableReadDirPlus:   true,
			MaxWrite:             1 << 20,
			Debug:                debug,
		},
	}
	fsrv, err := fs.Mount(mnt, rootNode, opts)
	if err != nil {
		return fmt.Errorf("lazyfs: mount %s: %w", mnt, err)
	}
	fmt.Fprintln(out, "ready")
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		srv.mu.Lock()
		switch cmd {
		case "fail-fsync":
			srv.failFsync = append(srv.failFsync, arg)
			fmt.Fprintln(out, "ok")
		case "stats":
			var dirty int64
			for _, st := range srv.files {
				dirty += st.dirtyBytes()
			}
			fmt.Fprintf(out, "stats %d %d %d %d\n", len(srv.files), dirty, srv.fsyncs, srv.synced)
		default:
			fmt.Fprintf(out, "error unknown command %q\n", cmd)
		}
		srv.mu.Unlock()
	}
	for i := 0; ; i++ {
		err := fsrv.Unmount()
		if err == nil || i == 50 {
			if err == nil {
				fsrv.Wait()
			}
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
