package meta

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Errors returned by the metadata store. Callers test them with errors.Is;
// every error this package returns wraps one of these or a Badger error.
var (
	ErrNoSuchBucket      = errors.New("no such bucket")
	ErrBucketExists      = errors.New("bucket already exists")
	ErrBucketNotEmpty    = errors.New("bucket not empty")
	ErrInvalidBucketName = errors.New("invalid bucket name")
	ErrNoSuchKey         = errors.New("no such key")
	ErrInvalidKey        = errors.New("invalid object key")
	ErrNoSuchUpload      = errors.New("no such multipart upload")
	ErrInvalidPartNumber = errors.New("invalid part number")
	ErrCorruptRecord     = errors.New("corrupt metadata record")
	// ErrRecordTampered: a record's MAC is missing or wrong (recordauth.go):
	// the record was changed, moved to another key or planted by someone
	// who can write the data disk but does not hold the KMS.
	ErrRecordTampered = errors.New("metadata record failed authentication (modified outside sealfs)")
)

// MaxKeyLen is the longest object key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// ObjectID names one immutable version of an object's data. It is unique,
// never reused, and survives renames: encryption binds to it, not to the key.
type ObjectID [16]byte

// NewObjectID returns a fresh id: the time in milliseconds since the Unix
// epoch (48 bits, big-endian), then 80 random bits.
//
// The time comes first so that ids made later sort later. A small object's
// data is kept under its id (inlineKey), so new data lands at the end of
// that key range, and Badger's compactions merge it with the newest tables
// of each level instead of with tables spread over all the data written
// before. Untarring 10,000 small files into the mount eight times over,
// nothing removed (as make bench-grow does, in a build that logged Badger's
// compactions): with wholly random ids the compactions wrote 3099 MiB and
// each pass after the fifth took ~21.5 s; with time-ordered ids they wrote
// 2159 MiB and those passes took 14–16 s.
// Uniqueness rests on the 80 random bits: a collision becomes likely only
// near 2^40 ids made within one millisecond.
func NewObjectID() ObjectID {
	var id ObjectID
	binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(id[6:]); err != nil {
		panic(fmt.Sprintf("meta: reading random id: %v", err))
	}
	return id
}

func (id ObjectID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is unset.
func (id ObjectID) IsZero() bool { return id == ObjectID{} }

// BlobID names one blob file under the data directory.
type BlobID [16]byte

// NewBlobID returns a fresh random blob id. It is random throughout, not
// time-ordered like an ObjectID: blob files are spread over directories by
// the id's first byte.
func NewBlobID() BlobID {
	var id BlobID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("meta: reading random id: %v", err))
	}
	return id
}

func (id BlobID) String() string { return hex.EncodeToString(id[:]) }

// ParseBlobID parses the hex form written by String.
func ParseBlobID(s string) (BlobID, error) {
	var id BlobID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("blob id %q: want %d hex digits, have %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("blob id %q: %w", s, err)
	}
	return id, nil
}

// Bucket is a bucket's record.
type Bucket struct {
	Name    string
	Created time.Time
	Region  string
	// EncryptionOn is the bucket's default-encryption (SSE-KMS) setting.
	EncryptionOn bool
	// MasterKeyID is the bucket's KMS master key, created the first time an
	// object is encrypted in the bucket; kept when encryption is turned off
	// so that turning it on again reuses the key.
	MasterKeyID string
	// Replication is the bucket's replication configuration, opaque to meta.
	Replication []byte
}

// ObjectMeta is the metadata a client sets on an object: the standard
// content headers and user metadata. It is shared by objects and multipart
// uploads.
type ObjectMeta struct {
	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	Expires            string
	// User is the user metadata: names are lower case, without the
	// "x-amz-meta-" prefix. POSIX attributes live here too, under the names
	// other S3 file systems use: "mode", "uid", "gid", "mtime".
	User map[string]string
}

// POSIX attribute names inside ObjectMeta.User.
const (
	MetaMode  = "mode"
	MetaUID   = "uid"
	MetaGID   = "gid"
	MetaMtime = "mtime"
)

// Mode returns the stored POSIX mode (decimal, as other S3 file systems write it).
func (m *ObjectMeta) Mode() (uint32, bool) { return m.uintField(MetaMode) }

// UID returns the stored owner.
func (m *ObjectMeta) UID() (uint32, bool) { return m.uintField(MetaUID) }

// GID returns the stored group.
func (m *ObjectMeta) GID() (uint32, bool) { return m.uintField(MetaGID) }

// Mtime returns the stored modification time (decimal seconds, optionally
// with a fraction).
func (m *ObjectMeta) Mtime() (time.Time, bool) {
	s, ok := m.User[MetaMtime]
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	nsec := int64((f - float64(sec)) * 1e9)
	return time.Unix(sec, nsec), true
}

// SetPOSIX stores mode, uid, gid and mtime in the user metadata.
func (m *ObjectMeta) SetPOSIX(mode, uid, gid uint32, mtime time.Time) {
	if m.User == nil {
		m.User = make(map[string]string, 4)
	}
	m.User[MetaMode] = strconv.FormatUint(uint64(mode), 10)
	m.User[MetaUID] = strconv.FormatUint(uint64(uid), 10)
	m.User[MetaGID] = strconv.FormatUint(uint64(gid), 10)
	m.SetMtime(mtime)
}

// SetMtime stores the modification time.
func (m *ObjectMeta) SetMtime(t time.Time) {
	if m.User == nil {
		m.User = make(map[string]string, 1)
	}
	if t.Nanosecond() == 0 {
		m.User[MetaMtime] = strconv.FormatInt(t.Unix(), 10)
		return
	}
	m.User[MetaMtime] = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func (m *ObjectMeta) uintField(name string) (uint32, bool) {
	s, ok := m.User[name]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// Clone returns a deep copy.
func (m ObjectMeta) Clone() ObjectMeta {
	c := m
	if m.User != nil {
		c.User = make(map[string]string, len(m.User))
		for k, v := range m.User {
			c.User[k] = v
		}
	}
	return c
}

// Encryption is an object's encryption state. A nil *Encryption means the
// object is stored in plain (with per-chunk checksums).
type Encryption struct {
	Algorithm  string // "aws:kms"
	KeyID      string // KMS master key id
	KeyVersion uint32 // master key version that wrapped the data key
	WrappedKey []byte // the data key, wrapped by the KMS
	// KeyObject is the object id the wrapped key is bound to (its KMS
	// context), when it is not the record's own id: a version composed
	// over an older one (extents, see BlobRef) keeps that version's data
	// key, wrapped as it was. Zero: the record's own id.
	KeyObject ObjectID
}

// Checksum is an integrity checksum of the whole plaintext.
type Checksum struct {
	Algorithm string // "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"
	Value     string // base64 of the big-endian digest, as S3 sends it
}

// BlobRef is one extent of an object's data: Size bytes taken from a blob,
// or a hole of Size zero bytes. An object's data is the concatenation of
// its extents in order.
//
// A plain object has one extent per blob, each a whole blob (a single PUT
// one, a multipart object one per part). A version composed by a partial
// rewrite (Store.Compose: a file patched in place or grown with holes
// through the mount) may also have holes, which are stored nowhere, and
// extents that take a range (Off, Size) of a blob of Blob Size bytes,
// possibly a blob sealed for an older version of the object (Owner), which
// the new version then shares.
type BlobRef struct {
	ID    BlobID
	Index uint32 // bound into every chunk's associated data (part number; 0 for single blobs)
	Size  int64  // plaintext bytes of the extent
	// Hole: Size zero bytes, no blob (ID, Index, Off, BlobSize and Owner
	// are zero).
	Hole bool
	// Off is where the extent starts in the blob's plaintext.
	Off int64
	// BlobSize is the blob's whole plaintext size; zero means Size (the
	// extent is the whole blob, Off zero).
	BlobSize int64
	// Owner is the object id the blob was sealed under (bound into its
	// chunks' associated data) when it is not the record's own id.
	Owner ObjectID
}

// Whole reports whether the extent is a whole blob sealed for the record's
// own id: what every extent is in a record written by FormatVersion 1.
func (r *BlobRef) Whole() bool {
	return !r.Hole && r.Off == 0 && (r.BlobSize == 0 || r.BlobSize == r.Size) && r.Owner.IsZero()
}

// StoredSize returns the plaintext size of the blob the extent reads from.
func (r *BlobRef) StoredSize() int64 {
	if r.BlobSize != 0 {
		return r.BlobSize
	}
	return r.Size
}

// SealedFor returns the object id r's blob was sealed under, for a record
// with id id.
func (r *BlobRef) SealedFor(id ObjectID) ObjectID {
	if !r.Owner.IsZero() {
		return r.Owner
	}
	return id
}

// FormatVersion is the version of the object record encoding written for a
// record whose extents are all whole blobs of its own (and whose wrapped
// key is its own): the first release's encoding, unchanged.
const FormatVersion = 1

// FormatVersionExtents is the version written for a record with holes,
// partial extents, shared blobs or a borrowed wrapped key (BlobRef,
// Encryption.KeyObject): a reader that knows only version 1 would read such
// a record wrong, so it must refuse it.
const FormatVersionExtents = 2

// Composed reports whether the record needs FormatVersionExtents.
func (o *Object) Composed() bool {
	if o.Encryption != nil && !o.Encryption.KeyObject.IsZero() {
		return true
	}
	for i := range o.Blobs {
		if !o.Blobs[i].Whole() {
			return true
		}
	}
	return false
}

// EncodedVersion is the record version o is written with.
func (o *Object) EncodedVersion() uint8 {
	if o.Composed() {
		return FormatVersionExtents
	}
	return FormatVersion
}

// Object is an object's record.
type Object struct {
	Bucket string // from the key, not encoded
	Key    string // from the key, not encoded

	ID           ObjectID
	Size         int64 // plaintext size
	ETag         string
	Checksums    []Checksum
	LastModified time.Time
	Meta         ObjectMeta
	Encryption   *Encryption
	// Blobs holds the data, unless Inline is set, in which case the data
	// (still in blob format, still encrypted when Encryption is set) is kept
	// in the metadata store under the object id.
	Blobs  []BlobRef
	Inline bool
	// ReplicationStatus is "", "PENDING", "COMPLETED", "FAILED" or "REPLICA".
	ReplicationStatus string
	// ReplicaSourceModified is, on a replica, the LastModified of the
	// source version it copies (set by the region it came from); zero
	// otherwise. Replication orders versions by it (VersionTime).
	ReplicaSourceModified time.Time
	FormatVersion         uint8
}

// VersionTime is when the version was written at its origin: the source's
// LastModified for a replica that carries it, LastModified otherwise.
// Replication compares versions by it, so that a replica older than what a
// bucket holds is never stored over it.
func (o *Object) VersionTime() time.Time {
	if !o.ReplicaSourceModified.IsZero() {
		return o.ReplicaSourceModified
	}
	return o.LastModified
}

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket    string
	Key       string
	ID        string   // the upload id handed to clients
	ObjectID  ObjectID // the id the completed object will carry
	Initiated time.Time
	Meta      ObjectMeta
	// Encryption is fixed when the upload is created: every part is encrypted
	// with the same data key (each blob derives its own subkey).
	Encryption *Encryption
	// ChecksumAlgorithm is the algorithm the client asked for, if any.
	ChecksumAlgorithm string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number       int32
	Blob         BlobRef
	ETag         string
	Size         int64
	LastModified time.Time
	Checksums    []Checksum
}

// ObjectSummary is what a listing shows of an object
// (RecordPage.Summary): the fields of its Object of the same names.
type ObjectSummary struct {
	Key          string
	ETag         string
	Size         int64
	LastModified time.Time
	Checksums    []Checksum
}

// ListOptions selects a page of a bucket listing, as S3 ListObjects does.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After is exclusive: the listing starts after this key (marker,
	// start-after, or a decoded continuation token). If After is itself a
	// common prefix under Delimiter, everything under it is skipped too.
	After   string
	MaxKeys int // 0 means 1000
}

// ListPage is one page of a listing, sorted by key in byte order, objects
// and common prefixes interleaved as S3 orders them.
type ListPage struct {
	Objects        []*Object
	CommonPrefixes []string
	IsTruncated    bool
	// NextAfter is the last key or common prefix in the page; pass it as
	// After to get the next page.
	NextAfter string
}
