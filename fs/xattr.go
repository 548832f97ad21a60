package fs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/sealfs/sealfs/cryptostore"
)

// Extended attributes come in two namespaces, chosen so that the object's
// system metadata stays readable with getfattr while archive and copy tools
// (rsync -X, cp -a, tar --xattrs, mv) see only what is the user's own:
//
//   - user.NAME is the user's: any name and any value (binary too), stored
//     as the S3 user metadata NAME (x-amz-meta-NAME, so S3 HEAD shows it)
//     and listed by listxattr. Names and values S3 cannot carry as they
//     are travel encoded (encName, encValue). The metadata that holds the
//     POSIX attributes (mode, uid, gid, mtime, atime, ctime) is not part of
//     it: chmod, chown and touch change those, with the kernel's checks.
//     Symlinks list no user.* names (the kernel refuses user.* on them).
//   - sealfs.H is every metadata header H of the object as S3 HEAD returns
//     it, lower case: sealfs.x-amz-server-side-encryption,
//     sealfs.x-amz-server-side-encryption-aws-kms-key-id, sealfs.etag,
//     sealfs.content-type, sealfs.x-amz-meta-mode, ...; sealfs.headers is
//     all of them, one "name: value" line each. They are answered by
//     getxattr and never listed (as other file systems keep their virtual
//     attributes), so no tool copies them onto files that cannot hold
//     them, and they are read-only (EPERM). A bucket's directory carries
//     sealfs.default-encryption ("aws:kms" while on), which can be set
//     (turning encryption on) and removed (turning it off).
//
// security.*, system.* and trusted.* names are not held: EOPNOTSUPP,
// without a look at the store (doc.go says why not ENODATA).
const (
	xattrUser    = "user."
	xattrSealfs  = "sealfs."
	xattrHeaders = "sealfs.headers"
	// Header names, as sealfs.H shows them.
	hdrSSE    = "x-amz-server-side-encryption"
	hdrSSEKey = "x-amz-server-side-encryption-aws-kms-key-id"
	hdrETag   = "etag"
	hdrRepl   = "x-amz-replication-status"
	hdrMeta   = "x-amz-meta-"
	// xattrBucketSSE on a bucket's directory is "aws:kms" while the bucket's
	// default encryption is on; setting it turns encryption on, removing it
	// turns it off. xattrBucketSSEOld is the name it had before the user
	// namespace became the user's: still answered and set, never listed.
	xattrBucketSSE    = "sealfs.default-encryption"
	xattrBucketSSEOld = "user.sealfs.default-encryption"
	// maxUserMeta is S3's limit on the size of an object's user metadata
	// (names and values, as stored).
	maxUserMeta = 2 << 10

	xattrCreate  = 1 // XATTR_CREATE
	xattrReplace = 2 // XATTR_REPLACE
)

// The user-metadata names of the times the mount keeps besides mtime
// (the names other S3 file systems use).
const (
	metaAtime = "atime"
	metaCtime = "ctime"
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

// isPOSIXName reports whether the user-metadata name k holds a POSIX
// attribute (and is therefore no user.* attribute).
func isPOSIXName(k string) bool {
	switch k {
	case cryptostore.MetaMode, cryptostore.MetaUID, cryptostore.MetaGID, cryptostore.MetaMtime, metaAtime, metaCtime:
		return true
	}
	return false
}

type xattr struct{ name, value string }

// objectHeaders lists an object's metadata headers as S3 HEAD returns them
// (without the sealfs. prefix): obj is its committed record (nil for a file
// not committed yet), m its metadata (the pending one for a file being
// written).
func (f *FS) objectHeaders(obj *cryptostore.Object, m *cryptostore.ObjectMeta) []xattr {
	var out []xattr
	if obj != nil && obj.Encryption != nil {
		out = append(out,
			xattr{hdrSSE, cryptostore.Algorithm},
			xattr{hdrSSEKey, f.store.KeyARN(obj.Encryption.KeyID)})
	}
	if obj != nil && obj.ETag != "" {
		out = append(out, xattr{hdrETag, obj.ETag})
	}
	for _, h := range contentHeaders {
		if v := contentHeader(m, h); v != "" {
			out = append(out, xattr{h, v})
		}
	}
	for _, k := range sortedKeys(m.User) {
		out = append(out, xattr{hdrMeta + k, m.User[k]})
	}
	if obj != nil && obj.ReplicationStatus != "" {
		out = append(out, xattr{hdrRepl, obj.ReplicationStatus})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// userXattrs lists the user.* attributes of metadata m: every user
// metadata name but the POSIX ones, decoded.
func userXattrs(m *cryptostore.ObjectMeta) []xattr {
	out := make([]xattr, 0, len(m.User))
	for _, k := range sortedKeys(m.User) {
		if isPOSIXName(k) {
			continue
		}
		out = append(out, xattr{xattrUser + decName(k), decValue(m.User[k])})
	}
	return out
}

// tokenByte reports whether c may stand for itself in a user-metadata name:
// a lower-case HTTP header token character ('%' is the escape).
func tokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&'*+-.^_`|~", c) >= 0
}

// encName maps the NAME of user.NAME to its user-metadata name: bytes an
// HTTP header name cannot carry in lower case (upper case, '%', spaces,
// anything not ASCII) become %xx, and so does the first byte of a name
// that would take a POSIX attribute's place (user.mode is stored as
// "%6dode").
func encName(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		c := n[i]
		if tokenByte(c) && !(i == 0 && isPOSIXName(n)) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02x", c)
	}
	return b.String()
}

// decName is encName's inverse. A name that no NAME encodes to (set over
// S3, for instance "%61" or "A%zz") is shown as it is stored, lower case.
func decName(k string) string {
	if !strings.Contains(k, "%") {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		if k[i] != '%' {
			b.WriteByte(k[i])
			continue
		}
		if i+2 >= len(k) {
			return k
		}
		v, err := strconv.ParseUint(k[i+1:i+3], 16, 8)
		if err != nil {
			return k
		}
		b.WriteByte(byte(v))
		i += 2
	}
	if d := b.String(); encName(d) == strings.ToLower(k) {
		return d
	}
	return k
}

// encValue maps an attribute's value to a user-metadata value. UTF-8 text
// is stored as it is, as the S3 door stores a value a client sent (a GET
// or HEAD encodes what is not ASCII); anything else (bytes that are not
// UTF-8, control characters, an empty value, leading or trailing blanks,
// which HTTP drops, or "=?", which would read as an encoded word) is
// stored as an RFC 2047 encoded word, =?UTF-8?B?base64?=, the form S3
// uses for values that are not ASCII, so that any value travels.
func encValue(v string) string {
	if plainValue(v) {
		return v
	}
	return "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
}

func plainValue(v string) bool {
	if v == "" || v[0] == ' ' || v[len(v)-1] == ' ' || strings.Contains(v, "=?") || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || 0x7f <= r && r < 0xa0 {
			return false
		}
	}
	return true
}

// decValue is encValue's inverse; it also decodes a B-encoded word set over
// S3 in another charset (its bytes as they are).
func decValue(v string) string {
	rest, ok := strings.CutPrefix(v, "=?")
	if !ok || !strings.HasSuffix(rest, "?=") {
		return v
	}
	parts := strings.SplitN(rest[:len(rest)-2], "?", 3)
	if len(parts) != 3 || !strings.EqualFold(parts[1], "B") {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return v
	}
	return string(b)
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
	// attrs returns the node's user.* attributes (full names) and its
	// headers (names without "sealfs.").
	attrs(ctx context.Context) (user, headers []xattr, errno syscall.Errno)
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
	if _, ok := t.(bucketXattrs); ok && name == xattrBucketSSEOld {
		name = xattrBucketSSE
	}
	if !held(name) {
		return 0, syscall.EOPNOTSUPP
	}
	sys := strings.HasPrefix(name, xattrSealfs)
	users, headers, errno := t.attrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	if name == xattrHeaders {
		var b strings.Builder
		for _, h := range headers {
			fmt.Fprintf(&b, "%s: %s\n", h.name, h.value)
		}
		return copyOut(dest, b.String())
	}
	list := users
	if sys {
		list, name = headers, name[len(xattrSealfs):]
	}
	for _, a := range list {
		if a.name == name {
			return copyOut(dest, a.value)
		}
	}
	return 0, syscall.ENODATA
}

// listxattr lists the user.* attributes only (see the namespaces above).
func listxattr(ctx context.Context, t xattrTarget, dest []byte) (uint32, syscall.Errno) {
	users, _, errno := t.attrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	var b strings.Builder
	for _, a := range users {
		b.WriteString(a.name)
		b.WriteByte(0)
	}
	return copyOut(dest, b.String())
}

func setxattr(ctx context.Context, t xattrTarget, name string, value []byte, flags uint32) syscall.Errno {
	return t.set(ctx, name, string(value), flags)
}

func removexattr(ctx context.Context, t xattrTarget, name string) syscall.Errno {
	if !held(name) {
		return syscall.EOPNOTSUPP
	}
	return t.remove(ctx, name)
}

// held tells the namespaces sealfs keeps (user.* and its own sealfs.*)
// from those it does not (security.*, system.*, trusted.*), which are
// answered without a look at the store.
func held(name string) bool {
	return strings.HasPrefix(name, xattrUser) || strings.HasPrefix(name, xattrSealfs)
}

// metaEditor is an object (a file, or a directory's marker) whose user
// metadata can be changed.
type metaEditor interface {
	xattrTarget
	editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno
}

func setObjectXattr(ctx context.Context, t metaEditor, name, value string, flags uint32) syscall.Errno {
	if strings.HasPrefix(name, xattrSealfs) {
		return syscall.EPERM // the store's, read-only
	}
	n, ok := strings.CutPrefix(name, xattrUser)
	if !ok {
		return syscall.EOPNOTSUPP // only user attributes can be stored
	}
	if n == "" {
		return syscall.EINVAL
	}
	k, v := encName(n), encValue(value)
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
		m.User[k] = v
		if userMetaSize(m) > maxUserMeta {
			return errXattrTooBig
		}
		return nil
	})
}

func removeObjectXattr(ctx context.Context, t metaEditor, name string) syscall.Errno {
	if h, ok := strings.CutPrefix(name, xattrSealfs); ok {
		_, headers, errno := t.attrs(ctx)
		if errno != 0 {
			return errno
		}
		for _, a := range headers {
			if a.name == h {
				return syscall.EPERM
			}
		}
		return syscall.ENODATA
	}
	n, ok := strings.CutPrefix(name, xattrUser)
	if !ok || n == "" {
		return syscall.ENODATA
	}
	k := encName(n)
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

func (t fileXattrs) attrs(ctx context.Context) (user, headers []xattr, errno syscall.Errno) {
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var obj *cryptostore.Object
	var m *cryptostore.ObjectMeta
	switch bucket, key, ok := n.loc(); {
	case n.st != nil:
		if !n.isPending() {
			obj = n.last
		}
		m = &n.st.meta
	case ok:
		o, err := n.fs.store.Head(n.fs.keep(ctx), bucket, key)
		if err != nil {
			return nil, nil, n.fs.errno(err, bucket, key)
		}
		n.last = o
		obj, m = o, &o.Meta
	case n.last != nil:
		obj, m = n.last, &n.last.Meta
	default:
		return nil, nil, 0
	}
	if n.kind != kindLink {
		user = userXattrs(m)
	}
	return user, n.fs.objectHeaders(obj, m), 0
}

func (t fileXattrs) editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno {
	n := t.n
	if bucket, key, ok := n.loc(); ok {
		if errno := n.fs.allowObject("s3:PutObject", bucket, key); errno != 0 {
			return errno
		}
	}
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
	obj, err := n.fs.store.UpdateMeta(n.fs.keep(ctx), bucket, key, fn)
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

func (t fileXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	if t.n.kind == kindLink && !strings.HasPrefix(name, xattrSealfs) {
		return syscall.EPERM // as the kernel answers user.* on a symlink
	}
	return setObjectXattr(ctx, t, name, value, flags)
}

func (t fileXattrs) remove(ctx context.Context, name string) syscall.Errno {
	return removeObjectXattr(ctx, t, name)
}

// ---- directories: the metadata of the directory's marker

type dirXattrs struct{ d *dirNode }

func (t dirXattrs) attrs(ctx context.Context) (user, headers []xattr, errno syscall.Errno) {
	bucket, prefix, ok := t.d.loc()
	if !ok {
		return nil, nil, syscall.ENOENT
	}
	marker, _, errno := t.d.marker(ctx, bucket, prefix)
	if errno != 0 || marker == nil {
		return nil, nil, errno
	}
	return userXattrs(&marker.Meta), t.d.fs.objectHeaders(marker, &marker.Meta), 0
}

func (t dirXattrs) editMeta(ctx context.Context, fn func(m *cryptostore.ObjectMeta) error) syscall.Errno {
	bucket, prefix, ok := t.d.loc()
	if !ok {
		return syscall.ENOENT
	}
	if errno := t.d.fs.allowObject("s3:PutObject", bucket, prefix); errno != 0 {
		return errno
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

func (t dirXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	return setObjectXattr(ctx, t, name, value, flags)
}

func (t dirXattrs) remove(ctx context.Context, name string) syscall.Errno {
	return removeObjectXattr(ctx, t, name)
}

// ---- buckets: default encryption

// bucketXattrs: a bucket has no metadata of its own to keep, so it carries
// no user.* attributes; sealfs.default-encryption is its setting.
type bucketXattrs struct{ d *dirNode }

func (t bucketXattrs) attrs(ctx context.Context) (user, headers []xattr, errno syscall.Errno) {
	on, errno := t.encryptionOn(ctx)
	if errno != 0 || !on {
		return nil, nil, errno
	}
	return nil, []xattr{{xattrBucketSSE[len(xattrSealfs):], cryptostore.Algorithm}}, 0
}

func (t bucketXattrs) encryptionOn(ctx context.Context) (bool, syscall.Errno) {
	bucket, _, ok := t.d.loc()
	if !ok {
		return false, syscall.ENOENT
	}
	b, err := t.d.fs.store.GetBucket(t.d.fs.keep(ctx), bucket)
	if err != nil {
		return false, t.d.fs.errno(err, bucket, "")
	}
	return b.EncryptionOn, 0
}

func (t bucketXattrs) set(ctx context.Context, name, value string, flags uint32) syscall.Errno {
	switch name {
	case xattrBucketSSE, xattrBucketSSEOld:
	default:
		if strings.HasPrefix(name, xattrSealfs) {
			return syscall.EPERM
		}
		return syscall.EOPNOTSUPP // a bucket has no other metadata to keep
	}
	if value != cryptostore.Algorithm {
		return syscall.EINVAL // SSE-KMS with the service's own key is the only kind
	}
	on, errno := t.encryptionOn(ctx)
	if errno != 0 {
		return errno
	}
	switch {
	case flags&xattrCreate != 0 && on:
		return syscall.EEXIST
	case flags&xattrReplace != 0 && !on:
		return syscall.ENODATA
	}
	return t.setEncryption(ctx, true)
}

func (t bucketXattrs) remove(ctx context.Context, name string) syscall.Errno {
	if name != xattrBucketSSE && name != xattrBucketSSEOld {
		return syscall.ENODATA
	}
	on, errno := t.encryptionOn(ctx)
	if errno != 0 {
		return errno
	}
	if !on {
		return syscall.ENODATA
	}
	return t.setEncryption(ctx, false)
}

func (t bucketXattrs) setEncryption(ctx context.Context, on bool) syscall.Errno {
	bucket, _, _ := t.d.loc()
	if errno := t.d.fs.allowBucket("s3:PutEncryptionConfiguration", bucket); errno != 0 {
		return errno
	}
	done := t.d.fs.ownBucketOp(bucket)
	err := t.d.fs.store.SetBucketEncryption(t.d.fs.keep(ctx), bucket, on)
	done()
	if err != nil {
		return t.d.fs.errno(err, bucket, "")
	}
	return 0
}
