package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/sealfs/sealfs/cryptostore"
)

// Extended attributes: each metadata header H of an object is the xattr
// user.H (lower case). user.x-amz-meta-* (user metadata) can be set and
// removed; the rest are read-only: setting one to the value it has succeeds,
// so that cp -a and rsync -X between files of the mount work, and anything
// else is EPERM. The POSIX attributes kept in user metadata (mode, uid, gid,
// mtime) are read-only here: chmod, chown and touch change them, with the
// kernel's permission checks. A bucket's directory carries its default
// encryption instead.
const (
	xattrUser       = "user."
	xattrMetaPrefix = "user.x-amz-meta-"
	xattrSSE        = "user.x-amz-server-side-encryption"
	xattrSSEKey     = "user.x-amz-server-side-encryption-aws-kms-key-id"
	xattrETag       = "user.etag"
	xattrRepl       = "user.x-amz-replication-status"
	// xattrBucketSSE on a bucket's directory is "aws:kms" while the bucket's
	// default encryption is on; setting it turns encryption on, removing it
	// turns it off.
	xattrBucketSSE = "user.sealfs.default-encryption"
	// maxUserMeta is S3's limit on the size of an object's user metadata
	// (names and values).
	maxUserMeta = 2 << 10

	xattrCreate  = 1 // XATTR_CREATE
	xattrReplace = 2 // XATTR_REPLACE
)

// contentHeaders are the standard headers, in the order listed.
var contentHeaders = []string{"content-type", "content-encoding", "content-disposition", "content-language", "cache-control", "expires"}

func contentHeader(m *cryptostore.ObjectMeta, h string) string {
	switch h {
	case "content-type":
		return m.ContentType
	case "content-encoding":
		return m.ContentEncoding
	case "content-disposition":
		return m.ContentDisposition
	case "content-language":
		return m.ContentLanguage
	case "cache-control":
		return m.CacheControl
	case "expires":
		return m.Expires
	}
	return ""
}

func isPOSIXName(k string) bool {
	return k == cryptostore.MetaMode || k == cryptostore.MetaUID || k == cryptostore.MetaGID || k == cryptostore.MetaMtime
}

// readOnlyName reports whether name is one of the read-only attributes.
func readOnlyName(name string) bool {
	switch name {
	case xattrSSE, xattrSSEKey, xattrETag, xattrRepl:
		return true
	}
	if k, ok := strings.CutPrefix(name, xattrMetaPrefix); ok {
		return isPOSIXName(strings.ToLower(k))
	}
	for _, h := range contentHeaders {
		if name == xattrUser+h {
			return true
		}
	}
	return false
}

type xattr struct{ name, value string }

// objectXattrs lists an object's attributes: obj is its committed record
// (nil for a file not committed yet), m its metadata (the pending one for a
// file being written).
func (f *FS) objectXattrs(obj *cryptostore.Object, m *cryptostore.ObjectMeta) []xattr {
	var out []xattr
	if obj != nil && obj.Encryption != nil {
		out = append(out,
			xattr{xattrSSE, cryptostore.Algorithm},
			xattr{xattrSSEKey, f.store.KeyARN(obj.Encryption.KeyID)})
	}
	if obj != nil && obj.ETag != "" {
		out = append(out, xattr{xattrETag, obj.ETag})
	}
	for _, h := range contentHeaders {
		if v := contentHeader(m, h); v != "" {
			out = append(out, xattr{xattrUser + h, v})
		}
	}
	out = append(out, userMetaXattrs(m)...)
	if obj != nil && obj.ReplicationStatus != "" {
		out = append(out, xattr{xattrRepl, obj.ReplicationStatus})
	}
	return out
}

func userMetaXattrs(m *cryptostore.ObjectMeta) []xattr {
	names := make([]string, 0, len(m.User))
	for k := range m.User {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]xattr, 0, len(names))
	for _, k := range names {
		out = append(out, xattr{xattrMetaPrefix + k, m.User[k]})
	}
	return out
}

// validMetaName: an HTTP header token, lower case.
func validMetaName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validMetaValue: UTF-8 without control characters, so it can travel as an
// HTTP header.
func validMetaValue(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func userMetaSize(m *cryptostore.ObjectMeta) int {
	n := 0
	for k, v := range m.User {
		n += len(k) + len(v)
	}
	return n
}

// Errors the metadata edit functions return, mapped to errnos.
var (
	errXattrExists  = errors.New("xattr exists")
	errXattrMissing = errors.New("xattr missing")
	errXattrTooBig  = errors.New("user metadata too large")
)

func xattrErrno(err error) (syscall.Errno, bool) {
	switch {
	case errors.Is(err, errXattrExists):
		return syscall.EEXIST, true
	case errors.Is(err, errXattrMissing):
		return syscall.ENODATA, true
	case errors.Is(err, errXattrTooBig):
		return syscall.E2BIG, true
	}
	return 0, false
}

// xattrTarget is a node that carries extended attributes.
type xattrTarget interface {
	list(ctx context.Context) ([]xattr, syscall.Errno)
	set(ctx context.Context, name, value string, flags uint32) syscall.Errno
	remove(ctx context.Context, name string) syscall.Errno
}

// copyOut answers a get or list: a size probe when dest is empty, ERANGE
// when it is too small.
func copyOut(dest []byte, v string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func getxattr(ctx context.Context, t xattrTarget, name string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(name, xattrUser) {
		// security.*, system.*, trusted.*: none, answered without a
		// look at the store.
		return 0, syscall.ENODATA
	}
	attrs, errno := t.list(ctx)
	if errno != 0 {
		return 0, errno
	}
	for _, a := range attrs {
		if a.name == name {
			return copyOut(dest, a.value)
		}
	}
	return 0, syscall.ENODATA
}

func listxattr(ctx context.Context, t xattrTarget, dest []byte) (uint32, syscall.Errno) {
	attrs, errno := t.list(ctx)
	if errno != 0 {
		return 0, errno
	}
	var b strings.Builder
	for _, a := range attrs {
		b.WriteString(a.name)
		b.WriteByte(0)
	}
	return copyOut(dest, b.String())
}

func setxattr(ctx context.Context, t xattrTarget, name string, value []byte, flags uint32) syscall.Errno {
	return t.set(ctx, name, string(value), flags)
}

func removexattr(ctx context.Context, t xattrTarget, name string) syscall.Errno {
	return t.remove(ctx, name)
}

// metaEditor is an object (a file, or a directory's marker) whose user
// metadata can be changed.
type metaEditor interface {
	xattrTarget
	editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno
	// settle commits pending writes, so that read-only values (ETag,
	// encryption) are final.
	settle(ctx context.Context) syscall.Errno
}

func setObjectXattr(ctx context.Context, t metaEditor, name, value string, flags uint32) syscall.Errno {
	if !strings.HasPrefix(name, xattrUser) {
		return syscall.EOPNOTSUPP
	}
	if readOnlyName(name) {
		if errno := t.settle(ctx); errno != 0 {
			return errno
		}
		attrs, errno := t.list(ctx)
		if errno != 0 {
			return errno
		}
		for _, a := range attrs {
			if a.name == name && a.value == value {
				if flags&xattrCreate != 0 {
					return syscall.EEXIST
				}
				return 0
			}
		}
		return syscall.EPERM
	}
	k, ok := strings.CutPrefix(name, xattrMetaPrefix)
	if !ok {
		return syscall.EOPNOTSUPP // only user metadata can be stored
	}
	k = strings.ToLower(k)
	if !validMetaName(k) || !validMetaValue(value) {
		return syscall.EINVAL
	}
	return t.editMeta(ctx, func(m *cryptostore.ObjectMeta) error {
		_, exists := m.User[k]
		switch {
		case flags&xattrCreate != 0 && exists:
			return errXattrExists
		case flags&xattrReplace != 0 && !exists:
			return errXattrMissing
		}
		if m.User == nil {
			m.User = make(map[string]string)
		}
		m.User[k] = value
		if userMetaSize(m) > maxUserMeta {
			return errXattrTooBig
		}
		return nil
	})
}

func removeObjectXattr(ctx context.Context, t metaEditor, name string) syscall.Errno {
	if readOnlyName(name) {
		attrs, errno := t.list(ctx)
		if errno != 0 {
			return errno
		}
		for _, a := range attrs {
			if a.name == name {
				return syscall.EPERM
			}
		}
		return syscall.ENODATA
	}
	k, ok := strings.CutPrefix(name, xattrMetaPrefix)
	if !ok {
		return syscall.ENODATA
	}
	k = strings.ToLower(k)
	return t.editMeta(ctx, func(m *cryptostore.ObjectMeta) error {
		if _, exists := m.User[k]; !exists {
			return errXattrMissing
		}
		delete(m.User, k)
		return nil
	})
}

// ---- files

type fileXattrs struct{ n *fileNode }

func (t fileXattrs) list(ctx context.Context) ([]xattr, syscall.Errno) {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st != nil {
		var obj *cryptostore.Object
		if !n.isPending() {
			obj = n.last
		}
		return n.fs.objectXattrs(obj, &n.st.meta), 0
	}
	if bucket, key, ok := n.loc(); ok {
		obj, err := n.fs.store.Head(keep(ctx), bucket, key)
		if err != nil {
			return nil, n.fs.errno(err, bucket, key)
		}
		n.last = obj
	}
	if n.last == nil {
		return nil, 0
	}
	return n.fs.objectXattrs(n.last, &n.last.Meta), 0
}

func (t fileXattrs) editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st != nil {
		m := n.st.meta.Clone()
		if err := fn(&m); err != nil {
			errno, _ := xattrErrno(err)
			return errno
		}
		n.st.meta = m
		return 0
	}
	bucket, key, ok := n.loc()
	if !ok {
		return syscall.ENOENT
	}
	done := n.fs.ownOp(bucket, key)
	obj, err := n.fs.store.UpdateMeta(keep(ctx), bucket, key, fn)
	done()
	if errno, ok := xattrErrno(err); ok {
		return errno
	}
	if err != nil {
		return n.fs.errno(err, bucket, key)
	}
	n.last = obj
	return 0
}

func (t fileXattrs) settle(ctx context.Context) syscall.Errno {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.commitLocked(ctx); err != nil {
		bucket, key, _ := n.loc()
		return n.fs.errno(err, bucket, key)
	}
	return 0
}

func (t fileXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	return setObjectXattr(ctx, t, name, value, flags)
}

func (t fileXattrs) remove(ctx context.Context, name string) syscall.Errno {
	return removeObjectXattr(ctx, t, name)
}

// ---- directories: the user metadata of the directory's marker

type dirXattrs struct{ d *dirNode }

func (t dirXattrs) list(ctx context.Context) ([]xattr, syscall.Errno) {
	bucket, prefix, ok := t.d.loc()
	if !ok {
		return nil, syscall.ENOENT
	}
	marker, _, errno := t.d.marker(ctx, bucket, prefix)
	if errno != 0 || marker == nil {
		return nil, errno
	}
	return userMetaXattrs(&marker.Meta), 0
}

func (t dirXattrs) editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno {
	bucket, prefix, ok := t.d.loc()
	if !ok {
		return syscall.ENOENT
	}
	var ferr error
	errno := t.d.updateMarker(ctx, bucket, prefix, func(m *cryptostore.ObjectMeta, _ posix) {
		// updateMarker's edit cannot fail: apply to a copy, keep it only
		// if fn accepts it.
		c := m.Clone()
		if ferr = fn(&c); ferr == nil {
			*m = c
		}
	}, nil)
	if e, ok := xattrErrno(ferr); ok {
		return e
	}
	return errno
}

func (t dirXattrs) settle(ctx context.Context) syscall.Errno { return 0 }

func (t dirXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	return setObjectXattr(ctx, t, name, value, flags)
}

func (t dirXattrs) remove(ctx context.Context, name string) syscall.Errno {
	return removeObjectXattr(ctx, t, name)
}

// ---- buckets: default encryption

type bucketXattrs struct{ d *dirNode }

func (t bucketXattrs) list(ctx context.Context) ([]xattr, syscall.Errno) {
	bucket, _, ok := t.d.loc()
	if !ok {
		return nil, syscall.ENOENT
	}
	b, err := t.d.fs.store.GetBucket(keep(ctx), bucket)
	if err != nil {
		return nil, t.d.fs.errno(err, bucket, "")
	}
	if !b.EncryptionOn {
		return nil, 0
	}
	return []xattr{{xattrBucketSSE, cryptostore.Algorithm}}, 0
}

func (t bucketXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	if name != xattrBucketSSE {
		return syscall.EOPNOTSUPP // a bucket has no other metadata to keep
	}
	if value != cryptostore.Algorithm {
		return syscall.EINVAL // SSE-KMS with the service's own key is the only kind
	}
	attrs, errno := t.list(ctx)
	if errno != 0 {
		return errno
	}
	switch on := len(attrs) > 0; {
	case flags&xattrCreate != 0 && on:
		return syscall.EEXIST
	case flags&xattrReplace != 0 && !on:
		return syscall.ENODATA
	}
	return t.setEncryption(ctx, true)
}

func (t bucketXattrs) remove(ctx context.Context, name string) syscall.Errno {
	if name != xattrBucketSSE {
		return syscall.ENODATA
	}
	attrs, errno := t.list(ctx)
	if errno != 0 {
		return errno
	}
	if len(attrs) == 0 {
		return syscall.ENODATA
	}
	return t.setEncryption(ctx, false)
}

func (t bucketXattrs) setEncryption(ctx context.Context, on bool) syscall.Errno {
	bucket, _, _ := t.d.loc()
	done := t.d.fs.ownBucketOp(bucket)
	err := t.d.fs.store.SetBucketEncryption(keep(ctx), bucket, on)
	done()
	if err != nil {
		return t.d.fs.errno(err, bucket, "")
	}
	return 0
}
