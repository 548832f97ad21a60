package fs

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// rootNode is the mount's top directory: one subdirectory per bucket.
// mkdir creates a bucket and rmdir deletes an empty one; nothing else can
// be created here.
type rootNode struct {
	gofs.Inode
	fs *FS

	// changed is when a bucket was last created or deleted (UnixNano; 0:
	// not since the mount started), which the root's mtime and ctime show.
	changed atomic.Int64
}

// touch records that a bucket was created or deleted at t.
func (r *rootNode) touch(t time.Time) {
	for {
		c := r.changed.Load()
		if t.UnixNano() <= c || r.changed.CompareAndSwap(c, t.UnixNano()) {
			return
		}
	}
}

// changedOutside records a change of a bucket made outside the mount (over
// S3, by an admin command): if it created or deleted the bucket, the root's
// mtime moves. (Other changes of a bucket, its encryption, leave it.) Run on
// the invalidator's goroutine: it sends the kernel a notification.
func (r *rootNode) changedOutside(name string) {
	b, err := r.fs.store.GetBucket(context.Background(), name)
	before := r.changed.Load()
	switch {
	case errors.Is(err, cryptostore.ErrNoSuchBucket):
		r.touch(time.Now())
	case err == nil:
		r.touch(b.Created)
	}
	if r.changed.Load() != before {
		r.NotifyContent(-1, 0)
	}
}

func (r *rootNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	mtime := r.fs.started
	if c := time.Unix(0, r.changed.Load()); c.After(mtime) {
		mtime = c
	}
	r.fs.fillAttr(&out.Attr, 1, kindDir, posix{mode: 0o755, uid: r.fs.uid, gid: r.fs.gid, mtime: mtime}, 0)
	return 0
}

// Setattr refuses changes: the root has no metadata to keep them in. Times
// are accepted and dropped, so that tools restoring them do not fail.
func (r *rootNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	r.Getattr(ctx, fh, out)
	return fixedAttrs(&out.Attr, in)
}

// fixedAttrs answers a SETATTR on a directory whose attributes cannot
// change: setting them to what they are succeeds, anything else is EPERM.
func fixedAttrs(cur *fuse.Attr, in *fuse.SetAttrIn) syscall.Errno {
	if m, ok := in.GetMode(); ok && m&0o7777 != cur.Mode&0o7777 {
		return syscall.EPERM
	}
	if u, ok := in.GetUID(); ok && u != cur.Uid {
		return syscall.EPERM
	}
	if g, ok := in.GetGID(); ok && g != cur.Gid {
		return syscall.EPERM
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	return 0
}

func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.fs.statfs(out)
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	b, err := r.fs.store.GetBucket(r.fs.keep(ctx), name)
	if err != nil {
		return nil, r.fs.errno(err, name, "")
	}
	return r.bucketChild(ctx, b, out), 0
}

// bucketChild returns the node of a bucket's directory.
func (r *rootNode) bucketChild(ctx context.Context, b *cryptostore.Bucket, out *fuse.EntryOut) *gofs.Inode {
	if ch := r.GetChild(b.Name); ch != nil {
		if d, ok := ch.Operations().(*dirNode); ok {
			d.bucketAttr(&out.Attr, b)
			return ch
		}
	}
	d := &dirNode{isBucket: true}
	d.init(r.fs, kindDir, b.Name, "")
	d.bucketAttr(&out.Attr, b)
	return r.NewInode(ctx, d, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: d.ino})
}

func (r *rootNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if errno := r.fs.allow("s3:ListAllMyBuckets", "arn:aws:s3:::*", nil); errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{fs: r.fs, root: r}, 0, 0
}

// Mkdir creates a bucket. A name S3 does not allow is EINVAL.
func (r *rootNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if errno := r.fs.allowBucket("s3:CreateBucket", name); errno != 0 {
		return nil, errno
	}
	done := r.fs.ownBucketOp(name)
	err := r.fs.store.CreateBucket(r.fs.keep(ctx), name, "")
	done()
	if errors.Is(err, cryptostore.ErrInvalidBucketName) {
		// mkdir can only say EINVAL: the log says which rule the name breaks.
		r.fs.log.Warn("mkdir at the top of the mount: not a valid bucket name (S3's rules: 3 to 63 lower-case letters, digits, dots and hyphens)",
			"name", name, "err", err)
	}
	if err != nil {
		return nil, r.fs.errno(err, name, "")
	}
	r.touch(time.Now())
	b, err := r.fs.store.GetBucket(r.fs.keep(ctx), name)
	if err != nil {
		return nil, r.fs.errno(err, name, "")
	}
	return r.bucketChild(ctx, b, out), 0
}

// Rmdir deletes an empty bucket; ENOTEMPTY otherwise.
func (r *rootNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if len(name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	if errno := r.fs.allowBucket("s3:DeleteBucket", name); errno != 0 {
		return errno
	}
	done := r.fs.ownBucketOp(name)
	err := r.fs.store.DeleteBucket(r.fs.keep(ctx), name)
	done()
	if err != nil {
		return r.fs.errno(err, name, "")
	}
	r.touch(time.Now())
	if ch := r.GetChild(name); ch != nil {
		if d, ok := ch.Operations().(*dirNode); ok {
			d.markGone()
		}
	}
	return 0
}

// Only buckets live at the top: files, links and nodes are refused, and
// buckets cannot be renamed.

func (r *rootNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (r *rootNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (r *rootNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EPERM
}

// Getxattr: the mount's root holds no attributes; the namespaces sealfs
// does not hold answer "not supported", as on every other node (xattr.go).
func (r *rootNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !held(attr) {
		return 0, syscall.EOPNOTSUPP
	}
	return 0, syscall.ENODATA
}

func (r *rootNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}
