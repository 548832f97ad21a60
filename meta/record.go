package meta

// Record encoding. Every value stored under a b, o, u, p or d key (keys.go) is
//
//	record = version:u8 field*
//	field  = tag:uvarint length:uvarint value:[length]byte
//
// Fields may come in any order; the encoder writes them in tag order and
// leaves out fields holding their zero value. A decoder skips tags it does
// not know, so a later version may add fields without breaking an older
// reader; it changes the version byte only for a change an older reader must
// refuse. Tag 0 is never used. A field that is not marked repeated may appear
// at most once. Values:
//
//	string   the bytes, as they are
//	bytes    the bytes, as they are (an empty value decodes as nil)
//	id       exactly 16 bytes
//	uint     a uvarint filling the value
//	int      a zig-zag varint filling the value
//	bool     one byte, 0 or 1
//	time     zig-zag varint seconds since 1970 UTC, then uvarint nanoseconds
//	         (< 1e9), filling the value; absent means the zero time.Time
//	nested   a field list as above, without a version byte
//
// Bucket (version 1; the name comes from the key)
//
//	1 Created time · 2 Region string · 3 EncryptionOn bool ·
//	4 MasterKeyID string · 5 Replication bytes
//
// Object (version FormatVersion = 1, or FormatVersionExtents = 2 exactly
// when a BlobRef uses fields 4–7 or the Encryption field 5: an older reader
// refuses those; bucket and key come from the key)
//
//	1 ID id · 2 Size int · 3 ETag string · 4 Checksum nested, repeated ·
//	5 LastModified time · 6 Meta nested · 7 Encryption nested (present ⇔
//	non-nil) · 8 Blob nested, repeated · 9 Inline bool ·
//	10 ReplicationStatus string · 11 ReplicaSourceModified time
//
// Upload (version 1; bucket, key and upload id come from the key)
//
//	1 ObjectID id · 2 Initiated time · 3 Meta nested · 4 Encryption nested
//	(present ⇔ non-nil) · 5 ChecksumAlgorithm string
//
// Part (version 1; the number comes from the key)
//
//	1 Blob nested · 2 ETag string · 3 Size int · 4 LastModified time ·
//	5 Checksum nested, repeated
//
// CompletedUpload (version 1; the upload id comes from the key; completed.go)
//
//	1 Bucket string · 2 Key string · 3 ObjectID id · 4 Completed time ·
//	5 Parts bytes
//
// Nested records
//
//	Checksum:   1 Algorithm string · 2 Value string
//	BlobRef:    1 ID id · 2 Index uint (≤ 2³²-1) · 3 Size int ·
//	            4 Hole bool · 5 Off int · 6 BlobSize int · 7 Owner id
//	            (4–7: version 2 only)
//	Encryption: 1 Algorithm string · 2 KeyID string · 3 KeyVersion uint
//	            (≤ 2³²-1) · 4 WrappedKey bytes · 5 KeyObject id (version 2)
//	ObjectMeta: 1 ContentType · 2 ContentEncoding · 3 ContentDisposition ·
//	            4 ContentLanguage · 5 CacheControl · 6 Expires (strings) ·
//	            7 User entry nested, repeated, written in name order:
//	            1 name string · 2 value string (names unique)
//
// Record MAC (recordauth.go)
//
//	127 MAC bytes (32): in every bucket, object, upload, part, completed-upload,
//	    user and access key record (users.go)
//	    written while record authentication is on; always the last field.
//	    It is split off and checked before the record is decoded, so the
//	    decoders above never see it. Tag 127 is reserved in every record
//	    kind and in no nested record.
//
// Decoders never panic and never keep a reference to their input (a Badger
// value is only valid inside item.Value); any malformed input is an error
// wrapping ErrCorruptRecord.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// recordVersion is the version byte of bucket, upload and part records.
const recordVersion = 1

// Field tags. See the table above.
const (
	bucketCreated      = 1
	bucketRegion       = 2
	bucketEncryptionOn = 3
	bucketMasterKeyID  = 4
	bucketReplication  = 5

	objectID                = 1
	objectSize              = 2
	objectETag              = 3
	objectChecksum          = 4
	objectLastModified      = 5
	objectMeta              = 6
	objectEncryption        = 7
	objectBlob              = 8
	objectInline            = 9
	objectReplicationStatus = 10
	objectReplicaSourceMod  = 11

	uploadObjectID          = 1
	uploadInitiated         = 2
	uploadMeta              = 3
	uploadEncryption        = 4
	uploadChecksumAlgorithm = 5

	partBlob         = 1
	partETag         = 2
	partSize         = 3
	partLastModified = 4
	partChecksum     = 5

	checksumAlgorithm = 1
	checksumValue     = 2

	blobID       = 1
	blobIndex    = 2
	blobSize     = 3
	blobHole     = 4
	blobOff      = 5
	blobBlobSize = 6
	blobOwner    = 7

	encAlgorithm  = 1
	encKeyID      = 2
	encKeyVersion = 3
	encWrappedKey = 4
	encKeyObject  = 5

	metaContentType        = 1
	metaContentEncoding    = 2
	metaContentDisposition = 3
	metaContentLanguage    = 4
	metaCacheControl       = 5
	metaExpires            = 6
	metaUser               = 7

	userName  = 1
	userValue = 2
)

// ---- encoding ----

func appendString(b []byte, tag uint64, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, tag uint64, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendID(b []byte, tag uint64, id [16]byte) []byte {
	if id == [16]byte{} {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	b = binary.AppendUvarint(b, 16)
	return append(b, id[:]...)
}

func appendUint(b []byte, tag, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	var vb [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(vb[:], v)
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, vb[:n]...)
}

func appendInt(b []byte, tag uint64, v int64) []byte {
	if v == 0 {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	var vb [binary.MaxVarintLen64]byte
	n := binary.PutVarint(vb[:], v)
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, vb[:n]...)
}

func appendBool(b []byte, tag uint64, v bool) []byte {
	if !v {
		return b
	}
	b = binary.AppendUvarint(b, tag)
	return append(b, 1, 1)
}

func appendTime(b []byte, tag uint64, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	var vb [2 * binary.MaxVarintLen64]byte
	n := binary.PutVarint(vb[:], t.Unix())
	n += binary.PutUvarint(vb[n:], uint64(t.Nanosecond()))
	b = binary.AppendUvarint(b, tag)
	b = binary.AppendUvarint(b, uint64(n))
	return append(b, vb[:n]...)
}

// appendNested appends a field whose value is whatever fn appends. The value
// is written in place and shifted once its length is known.
func appendNested(b []byte, tag uint64, fn func([]byte) []byte) []byte {
	b = binary.AppendUvarint(b, tag)
	start := len(b)
	b = fn(b)
	n := len(b) - start
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	b = append(b, lb[:l]...)
	copy(b[start+l:], b[start:start+n])
	copy(b[start:], lb[:l])
	return b
}

func appendChecksum(b []byte, c Checksum) []byte {
	b = appendString(b, checksumAlgorithm, c.Algorithm)
	return appendString(b, checksumValue, c.Value)
}

func appendBlobRef(b []byte, r BlobRef) []byte {
	b = appendID(b, blobID, r.ID)
	b = appendUint(b, blobIndex, uint64(r.Index))
	b = appendInt(b, blobSize, r.Size)
	b = appendBool(b, blobHole, r.Hole)
	b = appendInt(b, blobOff, r.Off)
	b = appendInt(b, blobBlobSize, r.BlobSize)
	return appendID(b, blobOwner, r.Owner)
}

func appendEncryption(b []byte, e *Encryption) []byte {
	b = appendString(b, encAlgorithm, e.Algorithm)
	b = appendString(b, encKeyID, e.KeyID)
	b = appendUint(b, encKeyVersion, uint64(e.KeyVersion))
	b = appendBytes(b, encWrappedKey, e.WrappedKey)
	return appendID(b, encKeyObject, e.KeyObject)
}

func (m *ObjectMeta) isZero() bool {
	return m.ContentType == "" && m.ContentEncoding == "" && m.ContentDisposition == "" &&
		m.ContentLanguage == "" && m.CacheControl == "" && m.Expires == "" && len(m.User) == 0
}

func appendObjectMeta(b []byte, m *ObjectMeta) []byte {
	b = appendString(b, metaContentType, m.ContentType)
	b = appendString(b, metaContentEncoding, m.ContentEncoding)
	b = appendString(b, metaContentDisposition, m.ContentDisposition)
	b = appendString(b, metaContentLanguage, m.ContentLanguage)
	b = appendString(b, metaCacheControl, m.CacheControl)
	b = appendString(b, metaExpires, m.Expires)
	if len(m.User) == 0 {
		return b
	}
	names := make([]string, 0, len(m.User))
	for k := range m.User {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := m.User[k]
		b = appendNested(b, metaUser, func(b []byte) []byte {
			// Written even when empty: an entry with an empty name is a
			// name all the same.
			b = binary.AppendUvarint(b, userName)
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
			return appendString(b, userValue, v)
		})
	}
	return b
}

// encodeBucket appends b's record to dst. The name is not encoded.
func encodeBucket(dst []byte, bk *Bucket) []byte {
	dst = append(dst, recordVersion)
	dst = appendTime(dst, bucketCreated, bk.Created)
	dst = appendString(dst, bucketRegion, bk.Region)
	dst = appendBool(dst, bucketEncryptionOn, bk.EncryptionOn)
	dst = appendString(dst, bucketMasterKeyID, bk.MasterKeyID)
	return appendBytes(dst, bucketReplication, bk.Replication)
}

// encodeObject appends o's record to dst, with version FormatVersion. Bucket,
// Key and o.FormatVersion are not encoded.
func encodeObject(dst []byte, o *Object) []byte {
	dst = append(dst, o.EncodedVersion())
	dst = appendID(dst, objectID, o.ID)
	dst = appendInt(dst, objectSize, o.Size)
	dst = appendString(dst, objectETag, o.ETag)
	for _, c := range o.Checksums {
		dst = appendNested(dst, objectChecksum, func(b []byte) []byte { return appendChecksum(b, c) })
	}
	dst = appendTime(dst, objectLastModified, o.LastModified)
	if !o.Meta.isZero() {
		dst = appendNested(dst, objectMeta, func(b []byte) []byte { return appendObjectMeta(b, &o.Meta) })
	}
	if o.Encryption != nil {
		dst = appendNested(dst, objectEncryption, func(b []byte) []byte { return appendEncryption(b, o.Encryption) })
	}
	for _, r := range o.Blobs {
		dst = appendNested(dst, objectBlob, func(b []byte) []byte { return appendBlobRef(b, r) })
	}
	dst = appendBool(dst, objectInline, o.Inline)
	dst = appendString(dst, objectReplicationStatus, o.ReplicationStatus)
	return appendTime(dst, objectReplicaSourceMod, o.ReplicaSourceModified)
}

// encodeUpload appends u's record to dst. Bucket, Key and ID are not encoded.
func encodeUpload(dst []byte, u *Upload) []byte {
	dst = append(dst, recordVersion)
	dst = appendID(dst, uploadObjectID, u.ObjectID)
	dst = appendTime(dst, uploadInitiated, u.Initiated)
	if !u.Meta.isZero() {
		dst = appendNested(dst, uploadMeta, func(b []byte) []byte { return appendObjectMeta(b, &u.Meta) })
	}
	if u.Encryption != nil {
		dst = appendNested(dst, uploadEncryption, func(b []byte) []byte { return appendEncryption(b, u.Encryption) })
	}
	return appendString(dst, uploadChecksumAlgorithm, u.ChecksumAlgorithm)
}

// encodePart appends p's record to dst. The number is not encoded.
func encodePart(dst []byte, p *Part) []byte {
	dst = append(dst, recordVersion)
	if p.Blob != (BlobRef{}) {
		dst = appendNested(dst, partBlob, func(b []byte) []byte { return appendBlobRef(b, p.Blob) })
	}
	dst = appendString(dst, partETag, p.ETag)
	dst = appendInt(dst, partSize, p.Size)
	dst = appendTime(dst, partLastModified, p.LastModified)
	for _, c := range p.Checksums {
		dst = appendNested(dst, partChecksum, func(b []byte) []byte { return appendChecksum(b, c) })
	}
	return dst
}

// ---- decoding ----

// fields walks a field list. Use: for f.next() { switch f.tag {...} }; then
// check f.err.
type fields struct {
	rec   string  // record name, for messages
	outer *fields // the list this one is nested in, if any
	b     []byte  // unread input
	tag   uint64
	val   []byte
	seen  uint64 // singular tags (< 64) seen so far
	err   error
}

func (f *fields) fail(format string, args ...any) bool {
	if f.err == nil {
		name := f.rec
		for o := f.outer; o != nil; o = o.outer {
			name = o.rec + "." + name
		}
		f.err = fmt.Errorf("%w: %s: "+format, append([]any{ErrCorruptRecord, name}, args...)...)
	}
	f.b = nil
	return false
}

func (f *fields) next() bool {
	if f.err != nil || len(f.b) == 0 {
		return false
	}
	tag, n := binary.Uvarint(f.b)
	if n <= 0 {
		return f.fail("want a field tag, have a malformed uvarint")
	}
	if tag == 0 {
		return f.fail("want a field tag of at least 1, have 0")
	}
	l, m := binary.Uvarint(f.b[n:])
	if m <= 0 {
		return f.fail("field %d: want a length, have a malformed uvarint", tag)
	}
	rest := f.b[n+m:]
	if l > uint64(len(rest)) {
		return f.fail("field %d: want %d bytes of value, have %d", tag, l, len(rest))
	}
	f.tag, f.val, f.b = tag, rest[:l], rest[l:]
	return true
}

// once checks that the current singular field was not seen before.
func (f *fields) once() bool {
	if f.tag < 64 {
		bit := uint64(1) << f.tag
		if f.seen&bit != 0 {
			return f.fail("field %d: want it once, have it again", f.tag)
		}
		f.seen |= bit
	}
	return true
}

func (f *fields) str(dst *string) {
	if f.once() {
		*dst = string(f.val)
	}
}

func (f *fields) bytes(dst *[]byte) {
	if f.once() {
		if len(f.val) == 0 {
			*dst = nil
		} else {
			*dst = bytes.Clone(f.val)
		}
	}
}

func (f *fields) id(dst *[16]byte) {
	if !f.once() {
		return
	}
	if len(f.val) != 16 {
		f.fail("field %d: want a 16-byte id, have %d bytes", f.tag, len(f.val))
		return
	}
	copy(dst[:], f.val)
}

func (f *fields) uint(max uint64) (uint64, bool) {
	if !f.once() {
		return 0, false
	}
	v, n := binary.Uvarint(f.val)
	if n <= 0 || n != len(f.val) {
		return 0, f.fail("field %d: want a uvarint filling %d bytes, have a malformed one", f.tag, len(f.val))
	}
	if v > max {
		return 0, f.fail("field %d: want at most %d, have %d", f.tag, max, v)
	}
	return v, true
}

func (f *fields) uint32(dst *uint32) {
	if v, ok := f.uint(math.MaxUint32); ok {
		*dst = uint32(v)
	}
}

func (f *fields) int64(dst *int64) {
	if !f.once() {
		return
	}
	v, n := binary.Varint(f.val)
	if n <= 0 || n != len(f.val) {
		f.fail("field %d: want a varint filling %d bytes, have a malformed one", f.tag, len(f.val))
		return
	}
	*dst = v
}

func (f *fields) bool(dst *bool) {
	if !f.once() {
		return
	}
	if len(f.val) != 1 || f.val[0] > 1 {
		f.fail("field %d: want one byte 0 or 1, have % x", f.tag, f.val)
		return
	}
	*dst = f.val[0] == 1
}

func (f *fields) time(dst *time.Time) {
	if !f.once() {
		return
	}
	sec, n := binary.Varint(f.val)
	if n <= 0 {
		f.fail("field %d: want varint seconds, have a malformed one", f.tag)
		return
	}
	nsec, m := binary.Uvarint(f.val[n:])
	if m <= 0 || n+m != len(f.val) {
		f.fail("field %d: want uvarint nanoseconds ending the value, have a malformed one", f.tag)
		return
	}
	if nsec >= 1e9 {
		f.fail("field %d: want nanoseconds below 1e9, have %d", f.tag, nsec)
		return
	}
	*dst = time.Unix(sec, int64(nsec)).UTC()
}

// sub returns a reader of the current field's nested list.
func (f *fields) sub(rec string) fields {
	return fields{rec: rec, outer: f, b: f.val}
}

// version checks and strips the version byte.
func version(rec string, data []byte, want byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s: want a version byte, have an empty record", ErrCorruptRecord, rec)
	}
	if data[0] != want {
		return nil, fmt.Errorf("%w: %s: want version %d, have %d", ErrCorruptRecord, rec, want, data[0])
	}
	return data[1:], nil
}

func decodeChecksum(f *fields) Checksum {
	var c Checksum
	g := f.sub("checksum")
	for g.next() {
		switch g.tag {
		case checksumAlgorithm:
			g.str(&c.Algorithm)
		case checksumValue:
			g.str(&c.Value)
		}
	}
	if g.err != nil {
		f.err = g.err
	}
	return c
}

func decodeBlobRef(f *fields, r *BlobRef) {
	g := f.sub("blob")
	for g.next() {
		switch g.tag {
		case blobID:
			g.id((*[16]byte)(&r.ID))
		case blobIndex:
			g.uint32(&r.Index)
		case blobSize:
			g.int64(&r.Size)
		case blobHole:
			g.bool(&r.Hole)
		case blobOff:
			g.int64(&r.Off)
		case blobBlobSize:
			g.int64(&r.BlobSize)
		case blobOwner:
			g.id((*[16]byte)(&r.Owner))
		}
	}
	if g.err != nil {
		f.err = g.err
	}
}

func decodeEncryption(f *fields) *Encryption {
	e := new(Encryption)
	g := f.sub("encryption")
	for g.next() {
		switch g.tag {
		case encAlgorithm:
			g.str(&e.Algorithm)
		case encKeyID:
			g.str(&e.KeyID)
		case encKeyVersion:
			g.uint32(&e.KeyVersion)
		case encWrappedKey:
			g.bytes(&e.WrappedKey)
		case encKeyObject:
			g.id((*[16]byte)(&e.KeyObject))
		}
	}
	if g.err != nil {
		f.err = g.err
	}
	return e
}

func decodeObjectMeta(f *fields, m *ObjectMeta) {
	g := f.sub("meta")
	for g.next() {
		switch g.tag {
		case metaContentType:
			g.str(&m.ContentType)
		case metaContentEncoding:
			g.str(&m.ContentEncoding)
		case metaContentDisposition:
			g.str(&m.ContentDisposition)
		case metaContentLanguage:
			g.str(&m.ContentLanguage)
		case metaCacheControl:
			g.str(&m.CacheControl)
		case metaExpires:
			g.str(&m.Expires)
		case metaUser:
			var name, value string
			var hasName bool
			h := g.sub("user")
			for h.next() {
				switch h.tag {
				case userName:
					h.str(&name)
					hasName = true
				case userValue:
					h.str(&value)
				}
			}
			switch {
			case h.err != nil:
				g.err = h.err
			case !hasName:
				g.fail("user entry: want a name, have none")
			default:
				if m.User == nil {
					m.User = make(map[string]string)
				}
				if _, dup := m.User[name]; dup {
					g.fail("user entry %q: want unique names, have it twice", name)
				}
				m.User[name] = value
			}
		}
	}
	if g.err != nil {
		f.err = g.err
	}
}

// decodeBucket decodes a bucket record into b (all fields but Name).
func decodeBucket(data []byte, bk *Bucket) error {
	data, err := version("bucket record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "bucket record", b: data}
	for f.next() {
		switch f.tag {
		case bucketCreated:
			f.time(&bk.Created)
		case bucketRegion:
			f.str(&bk.Region)
		case bucketEncryptionOn:
			f.bool(&bk.EncryptionOn)
		case bucketMasterKeyID:
			f.str(&bk.MasterKeyID)
		case bucketReplication:
			f.bytes(&bk.Replication)
		}
	}
	return f.err
}

// decodeObject decodes an object record into o (all fields but Bucket and
// Key).
func decodeObject(data []byte, o *Object) error {
	data, v, err := objectVersion(data)
	if err != nil {
		return err
	}
	o.FormatVersion = v
	f := fields{rec: "object record", b: data}
	for f.next() {
		switch f.tag {
		case objectID:
			f.id((*[16]byte)(&o.ID))
		case objectSize:
			f.int64(&o.Size)
		case objectETag:
			f.str(&o.ETag)
		case objectChecksum:
			o.Checksums = append(o.Checksums, decodeChecksum(&f))
		case objectLastModified:
			f.time(&o.LastModified)
		case objectMeta:
			if f.once() {
				decodeObjectMeta(&f, &o.Meta)
			}
		case objectEncryption:
			if f.once() {
				o.Encryption = decodeEncryption(&f)
			}
		case objectBlob:
			var r BlobRef
			decodeBlobRef(&f, &r)
			o.Blobs = append(o.Blobs, r)
		case objectInline:
			f.bool(&o.Inline)
		case objectReplicationStatus:
			f.str(&o.ReplicationStatus)
		case objectReplicaSourceMod:
			f.time(&o.ReplicaSourceModified)
		}
	}
	if f.err == nil && o.EncodedVersion() != v {
		// Version 1 has no extents; version 2 is written only with them.
		return fmt.Errorf("%w: object record: version %d with%s extent fields", ErrCorruptRecord, v,
			map[bool]string{true: "", false: "out"}[o.Composed()])
	}
	return f.err
}

// decodeSummary decodes from an object record what a listing shows of the
// object (all of ObjectSummary but Key), skipping the rest.
func decodeSummary(data []byte, s *ObjectSummary) error {
	data, _, err := objectVersion(data)
	if err != nil {
		return err
	}
	f := fields{rec: "object record", b: data}
	for f.next() {
		switch f.tag {
		case objectSize:
			f.int64(&s.Size)
		case objectETag:
			f.str(&s.ETag)
		case objectChecksum:
			s.Checksums = append(s.Checksums, decodeChecksum(&f))
		case objectLastModified:
			f.time(&s.LastModified)
		}
	}
	return f.err
}

// objectVersion checks an object record's version byte: FormatVersion, or
// FormatVersionExtents for a record with extents.
func objectVersion(data []byte) ([]byte, uint8, error) {
	if len(data) > 0 && data[0] == FormatVersionExtents {
		return data[1:], FormatVersionExtents, nil
	}
	rest, err := version("object record", data, FormatVersion)
	return rest, FormatVersion, err
}

// decodeUpload decodes an upload record into u (all fields but Bucket, Key
// and ID).
func decodeUpload(data []byte, u *Upload) error {
	data, err := version("upload record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "upload record", b: data}
	for f.next() {
		switch f.tag {
		case uploadObjectID:
			f.id((*[16]byte)(&u.ObjectID))
		case uploadInitiated:
			f.time(&u.Initiated)
		case uploadMeta:
			if f.once() {
				decodeObjectMeta(&f, &u.Meta)
			}
		case uploadEncryption:
			if f.once() {
				u.Encryption = decodeEncryption(&f)
			}
		case uploadChecksumAlgorithm:
			f.str(&u.ChecksumAlgorithm)
		}
	}
	return f.err
}

// decodePart decodes a part record into p (all fields but Number).
func decodePart(data []byte, p *Part) error {
	data, err := version("part record", data, recordVersion)
	if err != nil {
		return err
	}
	f := fields{rec: "part record", b: data}
	for f.next() {
		switch f.tag {
		case partBlob:
			if f.once() {
				decodeBlobRef(&f, &p.Blob)
			}
		case partETag:
			f.str(&p.ETag)
		case partSize:
			f.int64(&p.Size)
		case partLastModified:
			f.time(&p.LastModified)
		case partChecksum:
			p.Checksums = append(p.Checksums, decodeChecksum(&f))
		}
	}
	return f.err
}

// objectRecordSize reads only the size of an object record.
func objectRecordSize(data []byte) (int64, error) {
	data, _, err := objectVersion(data)
	if err != nil {
		return 0, err
	}
	var size int64
	f := fields{rec: "object record", b: data}
	for f.next() {
		if f.tag == objectSize {
			f.int64(&size)
		}
	}
	return size, f.err
}

// objectRecordBlobs calls fn with the id of every blob of an object record.
func objectRecordBlobs(data []byte, fn func(BlobID) error) error {
	data, _, err := objectVersion(data)
	if err != nil {
		return err
	}
	f := fields{rec: "object record", b: data}
	for f.next() {
		if f.tag == objectBlob {
			var r BlobRef
			decodeBlobRef(&f, &r)
			if f.err != nil {
				break
			}
			if r.Hole {
				continue
			}
			if err := fn(r.ID); err != nil {
				return err
			}
		}
	}
	return f.err
}
