package fs

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/internal/mountinfo"
)

// Options configure a mount.
type Options struct {
	// Store is the object store served. Required.
	Store *cryptostore.Store
	// Logger receives the mount's log; nil discards it.
	Logger *slog.Logger
	// DataDir is the store's data directory: statfs reports its disk.
	DataDir string
	// AllowOther lets users other than the mounting one in; the kernel then
	// enforces the stored modes and owners (default_permissions).
	AllowOther bool
	// UID and GID own objects that carry no POSIX owner (objects written
	// over S3), and the root and bucket directories. Default: the
	// process's.
	UID, GID *uint32
	// BucketMode is the permission bits of bucket directories, which have no
	// metadata of their own. Default 0755, or 01777 (like /tmp) with
	// AllowOther so that every user can create files in a bucket.
	BucketMode uint32
	// EntryTimeout, AttrTimeout and NegativeTimeout say how long the kernel
	// may trust what it was told; changes made through the store are pushed
	// to it at once whatever these are. Zero means DefaultTimeout.
	EntryTimeout, AttrTimeout, NegativeTimeout time.Duration
	// Debug logs every FUSE request.
	Debug bool
	// Observe, if set, is told the duration and result (0 for success) of
	// each FUSE operation that reaches the file system. It must be quick.
	Observe func(op string, errno syscall.Errno, d time.Duration)
	// As, if set, names the user the mount acts as (authz.go): every
	// operation is held to its policy. "": the admin, allowed everything.
	As string
}

// DefaultTimeout is the kernel cache timeout used when Options leave it
// unset. Every change that does not come through the mount is pushed to the
// kernel when it happens, so the timeout only bounds how stale the view can
// get if a notification is lost.
const DefaultTimeout = 5 * time.Second

// MaxWrite is the largest WRITE (and READ) request the kernel sends.
const MaxWrite = 1 << 20

// maxBackground bounds the kernel's asynchronous requests in flight.
const maxBackground = 16

// readAheadKB is what the mount's backing-device readahead is raised to.
const readAheadKB = 1024

// dirtyMaxBytes is what the mount's share of the kernel's dirty pages is
// raised to (the backing device's max_bytes). The kernel gives a FUSE mount
// 1% of the dirty threshold (tens of MiB), strictly, and a large write
// then stalls every few MiB in the kernel's dirty throttling, waiting for
// a writeback that the mount would take at once: a cp into the mount ran
// at half its speed. The limit stays strict and bounded.
const dirtyMaxBytes = 256 << 20

// FS is a mounted sealfs tree.
type FS struct {
	store   *cryptostore.Store
	as      *actingAs // the user the mount acts as (authz.go); nil: the admin
	log     *slog.Logger
	opts    Options
	uid     uint32
	gid     uint32
	started time.Time

	root       *rootNode
	server     *fuse.Server
	mountpoint string

	inodes  inodeTable
	cookies cookieTable // directory offsets (cookies.go)
	nodeSeq atomic.Uint64
	errs    errorLog
	inval   *invalidator

	mu sync.Mutex
	// dirty holds every file with data or metadata not yet committed.
	dirty map[*fileNode]struct{}
	// own counts store calls this mount has under way, by bucket+"\x00"+key
	// (ownPrefix: by key prefix; ownBucket: bucket operations): the change
	// events they cause are not sent back to the kernel, which already
	// knows.
	own       map[string]int
	ownPrefix map[string]int
	ownBucket map[string]int
	// outside counts the changes made elsewhere (Changed): a name found
	// absent is known to be absent still while it has not moved
	// (dirNode.absent).
	outside atomic.Uint64
	// memStaged counts the bytes of files' staging kept in memory because
	// the disk could not take them (staging.mem), at most memStageMax.
	memStaged atomic.Int64
	// teeHeld counts the capacity of the copies the mount's streams keep
	// of what they sent (staging.tee), at most teeBudget.
	teeHeld   atomic.Int64
	teeBudget int64
	// winHeld counts the capacity of the files' windows (staging.win), at
	// most winBudget.
	winHeld   atomic.Int64
	winBudget int64

	closeOnce sync.Once
	closeErr  error
}

// Mount mounts the store at mountpoint and starts serving it. The caller
// must route the store's change events to Changed, and call Close to
// unmount. PrepareMountpoint checks the directory first.
func Mount(mountpoint string, opts Options) (*FS, error) {
	if opts.Store == nil {
		return nil, errors.New("fs: Options.Store is required")
	}
	f := newFS(opts)
	mountpoint = abs(mountpoint)
	timeouts := func(d time.Duration) *time.Duration {
		if d <= 0 {
			d = DefaultTimeout
		}
		return &d
	}
	mo := fuse.MountOptions{
		AllowOther:   opts.AllowOther,
		FsName:       "sealfs",
		Name:         "sealfs",
		MaxWrite:     MaxWrite,
		MaxReadAhead: MaxWrite,
		// Requests the kernel sends without waiting (writeback, readahead).
		MaxBackground:        maxBackground,
		EnableSymlinkCaching: true,
		DirectMount:          os.Geteuid() == 0,
		// Writeback cache: the kernel collects small writes into pages
		// and sends them in MaxWrite pieces. Killpriv v2: the kernel
		// stops asking for security.capability before every write (we
		// clear set-id bits ourselves). Atomic O_TRUNC: open(O_TRUNC) is
		// one request, not a SETATTR and an OPEN.
		ExtraCapabilities: fuse.CAP_WRITEBACK_CACHE | fuse.CAP_HANDLE_KILLPRIV_V2 | fuse.CAP_ATOMIC_O_TRUNC,
		Debug:             opts.Debug,
		Logger:            slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
	if opts.AllowOther {
		mo.Options = append(mo.Options, "default_permissions")
	}
	gopts := &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    timeouts(opts.EntryTimeout),
		AttrTimeout:     timeouts(opts.AttrTimeout),
		NegativeTimeout: timeouts(opts.NegativeTimeout),
		NullPermissions: true,
		Logger:          log.New(&logWriter{f.log}, "", 0),
	}
	server, err := mount(mountpoint, f.root, gopts, opts.Observe)
	if err != nil {
		return nil, fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	f.server = server
	f.mountpoint = mountpoint
	f.inval.start()
	f.tuneBDI()
	return f, nil
}

func newFS(opts Options) *FS {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BucketMode == 0 {
		opts.BucketMode = 0o755
		if opts.AllowOther {
			opts.BucketMode = 0o1777
		}
	}
	f := &FS{
		store:     opts.Store,
		log:       opts.Logger,
		opts:      opts,
		uid:       uint32(os.Geteuid()),
		gid:       uint32(os.Getegid()),
		started:   time.Now(),
		dirty:     make(map[*fileNode]struct{}),
		own:       make(map[string]int),
		ownPrefix: make(map[string]int),
		ownBucket: make(map[string]int),
		teeBudget: teeBudget,
		winBudget: winBudget,
	}
	if opts.UID != nil {
		f.uid = *opts.UID
	}
	if opts.As != "" {
		f.as = &actingAs{user: opts.As, store: opts.Store}
	}
	if opts.GID != nil {
		f.gid = *opts.GID
	}
	f.inodes.init()
	f.cookies.init()
	f.errs.init(f.log)
	f.root = &rootNode{fs: f}
	f.inval = newInvalidator(f)
	return f
}

// logWriter carries go-fuse's diagnostics into the slog logger.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Warn("fuse: " + string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '\n' {
		p = p[:len(p)-1]
	}
	return p
}

// tuneBDI lifts the mount's readahead from the kernel's 128 KiB, so that
// sequential reads arrive as MaxWrite requests, and its share of dirty
// pages to dirtyMaxBytes. Best effort: it needs root, a writable /sys and
// (for max_bytes) Linux 6.2.
func (f *FS) tuneBDI() {
	var st unix.Stat_t
	if err := unix.Stat(f.mountpoint, &st); err != nil {
		return
	}
	dir := fmt.Sprintf("/sys/class/bdi/%d:%d/", unix.Major(st.Dev), unix.Minor(st.Dev))
	for _, set := range []struct {
		file  string
		value int
	}{{"read_ahead_kb", readAheadKB}, {"max_bytes", dirtyMaxBytes}} {
		if err := os.WriteFile(dir+set.file, []byte(fmt.Sprintf("%d\n", set.value)), 0o644); err != nil {
			f.log.Debug("could not tune the mount's backing device", "file", dir+set.file, "err", err)
		}
	}
}

// Wait returns when the kernel connection ends: after Close, or when the
// file system is unmounted from outside (fusermount3 -u).
func (f *FS) Wait() { f.server.Wait() }

// Close commits every open file's pending writes, then unmounts. If files
// are still open the unmount is lazy: the mount point is detached at once
// and the kernel drops the connection when the process exits. It returns
// the first error met; it is safe to call more than once.
func (f *FS) Close() error {
	f.closeOnce.Do(func() {
		// Unless it was unmounted from outside already.
		mounted, _ := mountinfo.IsMountPoint(f.mountpoint)
		if mounted {
			f.syncKernel()
		}
		errs := []error{f.FlushAll()}
		if mounted {
			if err := f.server.Unmount(); err != nil {
				f.log.Warn("unmount failed, detaching lazily", "mountpoint", f.mountpoint, "err", err)
				if err := detach(f.mountpoint); err != nil {
					errs = append(errs, fmt.Errorf("unmounting %s: %w", f.mountpoint, err))
				}
			}
		}
		// Writes that arrived while unmounting; then everything the mount
		// committed is made durable.
		errs = append(errs, f.FlushAll(), f.store.Sync(context.Background()))
		f.inval.stop()
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// syncKernel makes the kernel send the dirty pages it holds for the mount
// (the writeback cache keeps what programs wrote until close, fsync or
// memory pressure), so that FlushAll commits them too. The requests it
// causes are served by the mount's other goroutines; it gives up after a
// while rather than hang a shutdown.
func (f *FS) syncKernel() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fd, err := unix.Open(f.mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			f.log.Warn("syncing the mount before unmounting", "err", err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Syncfs(fd); err != nil {
			f.log.Warn("syncing the mount before unmounting", "err", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(syncTimeout):
		f.log.Warn("the kernel did not hand over its dirty pages in time; committing what arrived", "timeout", syncTimeout)
	}
}

// syncTimeout bounds syncKernel.
const syncTimeout = 30 * time.Second

// FlushAll commits the pending writes of every open file.
func (f *FS) FlushAll() error {
	f.mu.Lock()
	nodes := make([]*fileNode, 0, len(f.dirty))
	for n := range f.dirty {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		n.mu.Lock()
		err := n.commitLocked(context.Background())
		n.mu.Unlock()
		if err != nil {
			bucket, key, _ := n.loc()
			errs = append(errs, fmt.Errorf("committing %s/%s: %w", bucket, key, err))
		}
	}
	return errors.Join(errs...)
}

// detach lazily unmounts dir: it vanishes from the namespace now and the
// kernel lets go of it once nothing uses it.
func detach(dir string) error {
	if os.Geteuid() == 0 {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err == nil {
			return nil
		}
	}
	return runFusermount("-u", "-z", dir)
}

// ---- registries

func (f *FS) markDirty(n *fileNode) {
	f.mu.Lock()
	f.dirty[n] = struct{}{}
	f.mu.Unlock()
}

func (f *FS) markClean(n *fileNode) {
	f.mu.Lock()
	delete(f.dirty, n)
	f.mu.Unlock()
}

// pendingFiles returns the files created through the mount and not yet
// committed.
func (f *FS) pendingFiles() []*fileNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*fileNode
	for n := range f.dirty {
		if n.isPending() {
			out = append(out, n)
		}
	}
	return out
}

// dirtyUnder returns the dirty files whose key starts with prefix.
func (f *FS) dirtyUnder(bucket, prefix string) []*fileNode {
	f.mu.Lock()
	nodes := make([]*fileNode, 0, len(f.dirty))
	for n := range f.dirty {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	var out []*fileNode
	for _, n := range nodes {
		b, k, ok := n.loc()
		if ok && b == bucket && len(k) > len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, n)
		}
	}
	return out
}

func ownKey(bucket, key string) string { return bucket + "\x00" + key }

// ownOp marks a store call on one key as this mount's until the returned
// function is called.
func (f *FS) ownOp(bucket, key string) func() {
	return f.ownIn(f.own, ownKey(bucket, key))
}

// ownPrefixOp marks store calls on every key under prefix.
func (f *FS) ownPrefixOp(bucket, prefix string) func() {
	return f.ownIn(f.ownPrefix, ownKey(bucket, prefix))
}

// ownBucketOp marks a bucket operation.
func (f *FS) ownBucketOp(bucket string) func() {
	return f.ownIn(f.ownBucket, bucket)
}

func (f *FS) ownIn(m map[string]int, k string) func() {
	f.mu.Lock()
	m[k]++
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
		f.mu.Unlock()
	}
}

// isOwn reports whether a change event was caused by this mount.
func (f *FS) isOwn(ev cryptostore.ChangeEvent) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Kind == cryptostore.ChangeBucket {
		return f.ownBucket[ev.Bucket] > 0
	}
	if f.own[ownKey(ev.Bucket, ev.Key)] > 0 {
		return true
	}
	for p := range f.ownPrefix {
		if k := ownKey(ev.Bucket, ev.Key); len(k) >= len(p) && k[:len(p)] == p {
			return true
		}
	}
	return false
}

// Changed tells the mount about a change committed to the store. Changes
// the mount made itself are ignored; others invalidate what the kernel
// caches about the object (its directory entry, attributes and pages),
// before Changed returns unless that takes longer than a moment. Wire it to
// the store's Config.OnChange.
func (f *FS) Changed(ev cryptostore.ChangeEvent) {
	if f.isOwn(ev) {
		return
	}
	f.outside.Add(1)
	f.inval.push(ev)
}

// statfs reports the data directory's disk.
func (f *FS) statfs(out *fuse.StatfsOut) syscall.Errno {
	dir := f.opts.DataDir
	if dir == "" {
		dir = "."
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return gofs.ToErrno(err)
	}
	out.Blocks = st.Blocks
	out.Bfree = st.Bfree
	out.Bavail = st.Bavail
	out.Files = st.Files
	out.Ffree = st.Ffree
	out.Bsize = uint32(st.Bsize)
	out.Frsize = uint32(st.Frsize)
	out.NameLen = maxNameLen
	return 0
}

// abs is filepath.Abs without failing: the mount point is absolute by the
// time it matters.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// mount is gofs.Mount with the raw file system wrapped to observe
// operations when asked.
func mount(dir string, root gofs.InodeEmbedder, opts *gofs.Options, observe func(string, syscall.Errno, time.Duration)) (*fuse.Server, error) {
	raw := gofs.NewNodeFS(root, opts)
	if observe != nil {
		raw = &observedFS{RawFileSystem: raw, observe: observe}
	}
	server, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err
	}
	return server, nil
}
