package fs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// node is what files and directories below the root share: where they are
// in the store and their inode number.
type node struct {
	gofs.Inode
	fs   *FS
	ino  uint64
	seq  uint64 // creation order, for a lock order
	kind byte

	locMu  sync.Mutex
	bucket string
	key    string // object key; for a directory its prefix, ending in "/" ("" for a bucket)
	gone   bool   // deleted or replaced; an open file stays readable
}

func (n *node) init(f *FS, kind byte, bucket, key string) {
	n.fs, n.kind, n.bucket, n.key = f, kind, bucket, key
	n.seq = f.nodeSeq.Add(1)
	n.ino = f.inodes.acquire(identity(kind, bucket, key))
}

// loc returns the node's bucket and key; ok is false once it is gone.
func (n *node) loc() (bucket, key string, ok bool) {
	n.locMu.Lock()
	defer n.locMu.Unlock()
	return n.bucket, n.key, !n.gone
}

// moveTo gives the node a new key after a rename.
func (n *node) moveTo(key string) {
	n.locMu.Lock()
	n.key = key
	bucket := n.bucket
	n.locMu.Unlock()
	n.fs.inodes.rekey(n.ino, identity(n.kind, bucket, key))
}

// markGone records that the node's object was deleted or replaced.
func (n *node) markGone() {
	n.locMu.Lock()
	n.gone = true
	n.locMu.Unlock()
	n.fs.inodes.rekey(n.ino, "")
}

// OnForget gives the inode number back when the kernel forgets the node.
func (n *node) OnForget() { n.fs.inodes.release(n.ino) }

// Statfs reports the data directory's disk.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return n.fs.statfs(out)
}

// ---- attributes

// blockSize is the st_blksize reported. cp and cat copy in buffers of the
// larger of it and 128 KiB; the kernel's writeback cache and readahead send
// the daemon MaxWrite requests whatever the tool's buffer, so a larger
// st_blksize only makes the tool's copy dearer. On the benchmark machine a
// 1 MiB buffer made any copy slower (dd between two ext4 files: 0.66–0.80 s
// a GiB with 1 MiB blocks, 0.22 s with 128 KiB), and cp of 1 GiB out of the
// mount took 1.40–1.53 s with st_blksize 1 MiB against 0.68–0.90 s with
// 128 KiB (make bench-fs, one run).
const blockSize = 128 << 10

// posix is a file's POSIX attributes as kept in object metadata. A zero
// atime or ctime reads as mtime.
type posix struct {
	mode  uint32 // permission bits and type
	uid   uint32
	gid   uint32
	mtime time.Time
	atime time.Time
	ctime time.Time
}

// posixOf reads the POSIX attributes from an object's metadata; what is not
// stored comes from the defaults: the mount's owner, dflMode, and the
// object's last-modified time. atime is the stored one (set by utimensat)
// or mtime; ctime is the latest of the stored one (set by every SETATTR
// that changes something), mtime and the last modification of the object.
func (f *FS) posixOf(m *cryptostore.ObjectMeta, dflMode uint32, lastModified time.Time) posix {
	p := posix{mode: dflMode, uid: f.uid, gid: f.gid, mtime: lastModified}
	if v, ok := m.Mode(); ok {
		p.mode = v
	}
	if v, ok := m.UID(); ok {
		p.uid = v
	}
	if v, ok := m.GID(); ok {
		p.gid = v
	}
	if v, ok := parseMtime(m.User[cryptostore.MetaMtime]); ok {
		p.mtime = v
	}
	p.atime = p.mtime
	if v, ok := parseMtime(m.User[metaAtime]); ok {
		p.atime = v
	}
	p.ctime = later(p.mtime, lastModified)
	if v, ok := parseMtime(m.User[metaCtime]); ok {
		p.ctime = later(p.ctime, v)
	}
	return p
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// formatTime writes a time as parseMtime reads it (and as
// cryptostore.ObjectMeta.SetMtime writes mtime).
func formatTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return strconv.FormatInt(t.Unix(), 10)
	}
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// parseMtime reads a stored mtime, "seconds[.fraction]", to the nanosecond
// (cryptostore.ObjectMeta.Mtime goes through a float64, which keeps only about a
// tenth of a microsecond at today's dates).
func parseMtime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, false
		}
		nsec = int64(n)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
	}
	return time.Unix(sec, nsec), true
}

// kindOf tells a symlink from a file: a symlink is an object whose stored
// mode has S_IFLNK (the convention other S3 file systems use).
func kindOf(obj *cryptostore.Object) byte {
	if m, ok := obj.Meta.Mode(); ok && m&syscall.S_IFMT == syscall.S_IFLNK {
		return kindLink
	}
	return kindFile
}

func fileType(kind byte) uint32 {
	switch kind {
	case kindDir:
		return syscall.S_IFDIR
	case kindLink:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

// fillAttr writes attributes into out.
func (f *FS) fillAttr(out *fuse.Attr, ino uint64, kind byte, p posix, size int64) {
	out.Ino = ino
	out.Mode = fileType(kind) | p.mode&0o7777
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Blksize = blockSize
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: p.uid, Gid: p.gid}
	atime, ctime := p.atime, p.ctime
	if atime.IsZero() {
		atime = p.mtime
	}
	if ctime.IsZero() {
		ctime = p.mtime
	}
	out.SetTimes(&atime, &p.mtime, &ctime)
}

// objectAttr fills out from an object record.
func (f *FS) objectAttr(out *fuse.Attr, ino uint64, obj *cryptostore.Object) {
	kind := kindOf(obj)
	dfl := uint32(0o644)
	if kind == kindLink {
		dfl = 0o777
	}
	f.fillAttr(out, ino, kind, f.posixOf(&obj.Meta, dfl, obj.LastModified), obj.Size)
}

// dirAttr fills out for a directory; marker is its "dir/" object, nil for a
// directory that exists only because keys run through it.
func (f *FS) dirAttr(out *fuse.Attr, ino uint64, marker *cryptostore.Object) {
	p := posix{mode: 0o755, uid: f.uid, gid: f.gid, mtime: f.started}
	if marker != nil {
		p = f.posixOf(&marker.Meta, 0o755, marker.LastModified)
	}
	f.fillAttr(out, ino, kindDir, p, 0)
}

// setPOSIXField stores one POSIX attribute in metadata.
func setPOSIXField(m *cryptostore.ObjectMeta, name string, v uint32) {
	if m.User == nil {
		m.User = make(map[string]string, 4)
	}
	m.User[name] = strconv.FormatUint(uint64(v), 10)
}

// setTimeField stores a time in metadata.
func setTimeField(m *cryptostore.ObjectMeta, name string, t time.Time) {
	if m.User == nil {
		m.User = make(map[string]string, 4)
	}
	m.User[name] = formatTime(t)
}

// applySetattr applies the mode, owner and mtime changes of a SETATTR to
// metadata whose current attributes are cur. It reports whether anything
// changed.
func applySetattr(m *cryptostore.ObjectMeta, cur posix, in *fuse.SetAttrIn) bool {
	changed := false
	mode, hasMode := in.GetMode()
	if hasMode {
		setPOSIXField(m, cryptostore.MetaMode, cur.mode&syscall.S_IFMT|mode&0o7777)
		changed = true
	}
	if uid, ok := in.GetUID(); ok {
		setPOSIXField(m, cryptostore.MetaUID, uid)
		changed = true
	}
	if gid, ok := in.GetGID(); ok {
		setPOSIXField(m, cryptostore.MetaGID, gid)
		changed = true
	}
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 && !hasMode && cur.mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
		setPOSIXField(m, cryptostore.MetaMode, cur.mode&^(syscall.S_ISUID|syscall.S_ISGID))
		changed = true
	}
	if t, ok := in.GetMTime(); ok {
		m.SetMtime(t)
		changed = true
	}
	if t, ok := in.GetATime(); ok {
		setTimeField(m, metaAtime, t)
		changed = true
	}
	if changed {
		setTimeField(m, metaCtime, time.Now())
	}
	return changed
}

// hasPOSIXChange reports whether a SETATTR changes anything besides the
// size (ctime is not set by SETATTR: it follows the other changes).
func hasPOSIXChange(in *fuse.SetAttrIn) bool {
	return in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID|fuse.FATTR_MTIME|fuse.FATTR_ATIME|fuse.FATTR_KILL_SUIDGID) != 0
}

// caller returns who is asking, for the owner of what they create.
func (f *FS) caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return f.uid, f.gid
}

// newMeta returns the metadata of a new object created by the caller.
func (f *FS) newMeta(ctx context.Context, mode uint32) cryptostore.ObjectMeta {
	uid, gid := f.caller(ctx)
	var m cryptostore.ObjectMeta
	m.SetPOSIX(mode, uid, gid, time.Now())
	return m
}

// keep is the context of every store call: it ignores the interrupt that
// cancels a request's context (see "Interrupts" in the package doc), and its
// commits do not wait for the disk: fsync does (see "Durability").
func keep(ctx context.Context) context.Context {
	return cryptostore.WithoutSync(context.WithoutCancel(ctx))
}
