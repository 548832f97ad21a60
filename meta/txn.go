package meta

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Txn is a transaction, valid only inside the Update, View or UpdateBulk
// callback that received it, and not safe for concurrent use. Writes in a
// View transaction fail with an error wrapping ErrReadOnlyTxn.
//
// Every engine detects conflicts on the keys a transaction has read. Callers that
// add a record under a parent read the parent in the same transaction
// (GetBucket before PutObject or PutUpload, GetUpload before PutPart), so
// that the write conflicts with a concurrent deletion of the parent; the
// write fences described in keys.go cover the other order.
type Txn struct {
	kv   kvTxn
	auth *recordAuth // seals and checks records (recordauth.go); nil: off
	// fences: write and read keys.go's write fences. Off on engines that
	// detect conflicts on scanned ranges themselves (PostgreSQL), where
	// concurrent blind writes of one fence row would conflict with each
	// other and serialize every writer of a bucket.
	fences bool
	// reads counts the records scans have visited, so that tests can check
	// that a listing seeks instead of walking.
	reads int
	// wroteBuckets: the transaction wrote or deleted a bucket record
	// (DB.GetBucket's cache is dropped after its commit).
	wroteBuckets bool
}

// maxPage is the largest page List, ListUploads and ListParts return.
const maxPage = 1000

func pageSize(n int) int {
	if n <= 0 || n > maxPage {
		return maxPage
	}
	return n
}

// value calls fn with the value stored under key; ok is false if there is
// none. fn must not keep the slice.
func (tx *Txn) value(key []byte, fn func(v []byte) error) (ok bool, err error) {
	v, ok, err := tx.kv.get(key)
	if err != nil || !ok {
		return false, err
	}
	return true, fn(v)
}

// exists reports whether key is present.
func (tx *Txn) exists(key []byte) (bool, error) {
	_, ok, err := tx.kv.get(key)
	return ok, err
}

// readFence reads a fence key, for its side effect: the read makes this
// transaction conflict with any writer of the fence that commits after this
// transaction's snapshot.
func (tx *Txn) readFence(key []byte) error {
	if !tx.fences {
		return nil
	}
	_, err := tx.exists(key)
	return err
}

// touchFence writes a fence key (blindly: writers never read it, so on the
// engines that need fences they do not conflict with each other).
func (tx *Txn) touchFence(key []byte) error {
	if !tx.fences {
		return nil
	}
	return tx.kv.set(key, nil)
}

// scan visits the keys under prefix in order, from seek (or the start of
// prefix when seek is nil), with their values, until fn returns false or
// an error. k and v are valid only during fn.
func (tx *Txn) scan(prefix, seek []byte, fn func(k, v []byte) (bool, error)) error {
	it := tx.kv.iterate(prefix, false)
	defer it.close()
	if seek == nil {
		seek = prefix
	}
	for it.seek(seek); it.valid(); it.next() {
		tx.reads++
		v, err := it.value()
		if err != nil {
			return err
		}
		if more, err := fn(it.key(), v); err != nil || !more {
			return err
		}
	}
	return it.err()
}

// scanKeys is scan without the values: the engine need not fetch them.
func (tx *Txn) scanKeys(prefix, seek []byte, fn func(k []byte) (bool, error)) error {
	it := tx.kv.iterate(prefix, true)
	defer it.close()
	if seek == nil {
		seek = prefix
	}
	for it.seek(seek); it.valid(); it.next() {
		tx.reads++
		more, err := fn(it.key())
		if err != nil || !more {
			return err
		}
	}
	return it.err()
}

// ---- buckets ----

// GetBucket returns the bucket's record, or an error wrapping
// ErrNoSuchBucket.
func (tx *Txn) GetBucket(name string) (*Bucket, error) {
	b := &Bucket{Name: name}
	ok := false
	var err error
	if strings.IndexByte(name, 0) < 0 {
		ok, err = tx.record(bucketKey(name), func(v []byte) error { return decodeBucket(v, b) })
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("bucket %q: %w", name, ErrNoSuchBucket)
	}
	return b, nil
}

// CreateBucket stores a new bucket record. The name must pass
// ValidBucketName (else ErrInvalidBucketName); a bucket of that name must not
// exist (else ErrBucketExists).
func (tx *Txn) CreateBucket(b *Bucket) error {
	if err := ValidBucketName(b.Name); err != nil {
		return err
	}
	k := bucketKey(b.Name)
	ok, err := tx.exists(k)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("bucket %q: %w", b.Name, ErrBucketExists)
	}
	tx.wroteBuckets = true
	return tx.kv.set(k, tx.seal(k, encodeBucket(nil, b)))
}

// PutBucket overwrites an existing bucket record (ErrNoSuchBucket if there
// is none).
func (tx *Txn) PutBucket(b *Bucket) error {
	ok := false
	var err error
	k := bucketKey(b.Name)
	if strings.IndexByte(b.Name, 0) < 0 {
		ok, err = tx.exists(k)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bucket %q: %w", b.Name, ErrNoSuchBucket)
	}
	tx.wroteBuckets = true
	return tx.kv.set(k, tx.seal(k, encodeBucket(nil, b)))
}

// DeleteBucket deletes an empty bucket (ErrNoSuchBucket, ErrBucketNotEmpty),
// with its multipart uploads in progress and their parts. The blobs of those
// parts are left to the orphan collector.
func (tx *Txn) DeleteBucket(name string) error {
	if _, err := tx.GetBucket(name); err != nil {
		return err
	}
	if err := tx.readFence(bucketFenceKey(name)); err != nil {
		return err
	}
	nonEmpty, err := tx.HasObjects(name, "")
	if err != nil {
		return err
	}
	if nonEmpty {
		return fmt.Errorf("bucket %q: %w", name, ErrBucketNotEmpty)
	}
	type upload struct{ key, id string }
	var uploads []upload
	err = tx.scanKeys(uploadsPrefix(name, ""), nil, func(k []byte) (bool, error) {
		if _, key, id, ok := parseUploadKey(k); ok {
			uploads = append(uploads, upload{key: key, id: id})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, u := range uploads {
		if err := tx.deleteUpload(name, u.key, u.id); err != nil {
			return err
		}
	}
	if err := tx.kv.delete(bucketFenceKey(name)); err != nil {
		return err
	}
	tx.wroteBuckets = true
	return tx.kv.delete(bucketKey(name))
}

// ListBuckets returns every bucket, sorted by name.
func (tx *Txn) ListBuckets() ([]*Bucket, error) {
	var out []*Bucket
	err := tx.scan(bucketsPrefix(), nil, func(k, v []byte) (bool, error) {
		name, ok := parseBucketKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad bucket key %q", ErrCorruptRecord, k)
		}
		b := &Bucket{Name: name}
		if err := tx.itemRecord(k, v, func(v []byte) error { return decodeBucket(v, b) }); err != nil {
			return false, fmt.Errorf("bucket %q: %w", name, err)
		}
		out = append(out, b)
		return true, nil
	})
	return out, err
}

// ---- objects ----

// GetObject returns the object's record, or an error wrapping ErrNoSuchKey.
// Whether the bucket exists is the caller's question.
func (tx *Txn) GetObject(bucket, key string) (*Object, error) {
	o := &Object{Bucket: bucket, Key: key}
	ok := false
	var err error
	if strings.IndexByte(bucket, 0) < 0 && strings.IndexByte(key, 0) < 0 {
		ok, err = tx.record(objectKey(bucket, key), func(v []byte) error { return decodeObject(v, o) })
	}
	if err != nil {
		return nil, fmt.Errorf("object %s/%s: %w", bucket, key, err)
	}
	if !ok {
		return nil, fmt.Errorf("object %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return o, nil
}

// GetObjectInBucket is GetObject for a caller that must also tell a
// missing bucket (an error wrapping ErrNoSuchBucket) from a missing key. It
// reads the bucket's record only when the object is absent: a bucket is
// deleted only while it holds no object, by a transaction that conflicts
// with any object written into it, so a transaction that sees an object
// sees its bucket too.
func (tx *Txn) GetObjectInBucket(bucket, key string) (*Object, error) {
	o, err := tx.GetObject(bucket, key)
	if errors.Is(err, ErrNoSuchKey) {
		if _, berr := tx.GetBucket(bucket); berr != nil {
			return nil, berr
		}
	}
	return o, err
}

// PutObject stores o under o.Bucket and o.Key, replacing any record there,
// and sets o.FormatVersion. It checks the key (ErrInvalidKey) and the bucket
// name (ErrInvalidBucketName), not that the bucket exists. Inline data is
// stored separately (PutInline).
func (tx *Txn) PutObject(o *Object) error {
	if err := ValidBucketName(o.Bucket); err != nil {
		return err
	}
	if err := ValidKey(o.Key); err != nil {
		return err
	}
	o.FormatVersion = o.EncodedVersion()
	k := objectKey(o.Bucket, o.Key)
	if err := tx.kv.set(k, tx.seal(k, encodeObject(nil, o))); err != nil {
		return err
	}
	return tx.touchFence(bucketFenceKey(o.Bucket))
}

// DeleteObject deletes an object's record (ErrNoSuchKey if there is none).
// Its inline data, if any, is the caller's to delete (DeleteInline).
func (tx *Txn) DeleteObject(bucket, key string) error {
	ok := false
	var err error
	k := objectKey(bucket, key)
	if strings.IndexByte(bucket, 0) < 0 && strings.IndexByte(key, 0) < 0 {
		ok, err = tx.exists(k)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("object %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return tx.kv.delete(k)
}

// HasObjects reports whether bucket holds an object whose key starts with
// prefix ("" asks whether the bucket holds any object).
func (tx *Txn) HasObjects(bucket, prefix string) (bool, error) {
	found := false
	err := tx.scanKeys(objectPrefix(bucket, prefix), nil, func([]byte) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

// CountObjects returns how many objects bucket holds and the sum of their
// sizes. It reads every object record of the bucket (only the size field is
// decoded).
func (tx *Txn) CountObjects(bucket string) (n int64, total int64, err error) {
	err = tx.scan(objectPrefix(bucket, ""), nil, func(k, v []byte) (bool, error) {
		size, err := objectRecordSize(v)
		if err != nil {
			_, key, _ := parseObjectKey(k)
			return false, fmt.Errorf("object %s/%s: %w", bucket, key, err)
		}
		n++
		total += size
		return true, nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n, total, nil
}

// ---- inline data ----

// PutInline stores an object's data (blob bytes) in the metadata store.
// The data is not copied: it must not change until the transaction ends.
func (tx *Txn) PutInline(id ObjectID, data []byte) error {
	return tx.kv.set(inlineKey(id), data)
}

// GetInline returns a copy of an object's inline data, or an error wrapping
// ErrNoSuchKey.
func (tx *Txn) GetInline(id ObjectID) ([]byte, error) {
	v, ok, err := tx.kv.get(inlineKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("inline data of object %s: %w", id, ErrNoSuchKey)
	}
	return append([]byte{}, v...), nil
}

// DeleteInline deletes an object's inline data; deleting absent data is not
// an error.
func (tx *Txn) DeleteInline(id ObjectID) error {
	return tx.kv.delete(inlineKey(id))
}

// ---- multipart uploads ----

func uploadIDError(id string) error {
	return fmt.Errorf("upload id %q: want 1 to %d bytes without NUL: %w", id, maxUploadIDLen, ErrNoSuchUpload)
}

// PutUpload stores an upload record under u.Bucket, u.Key and u.ID,
// replacing any there. It checks the bucket name and the key, not that the
// bucket exists; an id that cannot be part of a key (empty, longer than 256
// bytes, or containing NUL) is refused with an error wrapping
// ErrNoSuchUpload.
func (tx *Txn) PutUpload(u *Upload) error {
	if err := ValidBucketName(u.Bucket); err != nil {
		return err
	}
	if err := ValidKey(u.Key); err != nil {
		return err
	}
	if !validUploadID(u.ID) {
		return uploadIDError(u.ID)
	}
	k := uploadKey(u.Bucket, u.Key, u.ID)
	if err := tx.kv.set(k, tx.seal(k, encodeUpload(nil, u))); err != nil {
		return err
	}
	return tx.touchFence(bucketFenceKey(u.Bucket))
}

// GetUpload returns an upload's record, or an error wrapping
// ErrNoSuchUpload.
func (tx *Txn) GetUpload(bucket, key, uploadID string) (*Upload, error) {
	u := &Upload{Bucket: bucket, Key: key, ID: uploadID}
	ok := false
	var err error
	if validUploadID(uploadID) && strings.IndexByte(bucket, 0) < 0 && strings.IndexByte(key, 0) < 0 {
		ok, err = tx.record(uploadKey(bucket, key, uploadID), func(v []byte) error { return decodeUpload(v, u) })
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	if !ok {
		return nil, fmt.Errorf("upload %s of %s/%s: %w", uploadID, bucket, key, ErrNoSuchUpload)
	}
	return u, nil
}

// DeleteUpload deletes an upload's record and its parts' records
// (ErrNoSuchUpload if there is none). The parts' blobs are the caller's.
func (tx *Txn) DeleteUpload(bucket, key, uploadID string) error {
	if _, err := tx.GetUpload(bucket, key, uploadID); err != nil {
		return err
	}
	return tx.deleteUpload(bucket, key, uploadID)
}

func (tx *Txn) deleteUpload(bucket, key, uploadID string) error {
	if err := tx.readFence(partFenceKey(uploadID)); err != nil {
		return err
	}
	// One range deletion, however many parts: on etcd a transaction's
	// writes are bounded (--max-txn-ops), and S3 allows 10,000 parts.
	if err := tx.kv.deletePrefix(partsPrefix(uploadID)); err != nil {
		return err
	}
	if err := tx.kv.delete(partFenceKey(uploadID)); err != nil {
		return err
	}
	return tx.kv.delete(uploadKey(bucket, key, uploadID))
}

// UploadListOptions selects a page of ListUploads, as S3
// ListMultipartUploads does.
type UploadListOptions struct {
	Prefix string
	// KeyMarker and UploadIDMarker are exclusive: the page starts after the
	// upload (KeyMarker, UploadIDMarker), or, without an UploadIDMarker,
	// after every upload of KeyMarker. UploadIDMarker alone is ignored.
	KeyMarker, UploadIDMarker string
	MaxUploads                int // 0 means 1000; at most 1000
}

// UploadPage is one page of ListUploads.
type UploadPage struct {
	Uploads     []*Upload
	IsTruncated bool
	// NextKeyMarker and NextUploadIDMarker name the last upload of a
	// truncated page: pass them as markers to get the next page.
	NextKeyMarker, NextUploadIDMarker string
}

// ListUploads returns a page of bucket's uploads in progress, sorted by key,
// then by upload id (initiation order for ids from NewUploadID).
func (tx *Txn) ListUploads(bucket string, opts UploadListOptions) (*UploadPage, error) {
	limit := pageSize(opts.MaxUploads)
	prefix := uploadsPrefix(bucket, opts.Prefix)
	start := prefix
	if opts.KeyMarker != "" {
		var after []byte
		if opts.UploadIDMarker != "" {
			after = append(uploadKey(bucket, opts.KeyMarker, opts.UploadIDMarker), sep)
		} else {
			after = uploadKeyAfter(bucket, opts.KeyMarker)
		}
		if bytes.Compare(after, start) > 0 {
			start = after
		}
	}
	page := &UploadPage{}
	err := tx.scan(prefix, start, func(k, v []byte) (bool, error) {
		if len(page.Uploads) == limit {
			page.IsTruncated = true
			return false, nil
		}
		b, key, id, ok := parseUploadKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad upload key %q", ErrCorruptRecord, k)
		}
		u := &Upload{Bucket: b, Key: key, ID: id}
		if err := tx.itemRecord(k, v, func(v []byte) error { return decodeUpload(v, u) }); err != nil {
			return false, fmt.Errorf("upload %s of %s/%s: %w", id, b, key, err)
		}
		page.Uploads = append(page.Uploads, u)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if page.IsTruncated {
		last := page.Uploads[len(page.Uploads)-1]
		page.NextKeyMarker, page.NextUploadIDMarker = last.Key, last.ID
	}
	return page, nil
}

// PutPart stores a part record of an upload, replacing any part of the same
// number. The number must be at least 1 (else ErrInvalidPartNumber); that
// the upload exists is the caller's check (GetUpload, in the same
// transaction).
func (tx *Txn) PutPart(uploadID string, p *Part) error {
	if !validUploadID(uploadID) {
		return uploadIDError(uploadID)
	}
	if p.Number < 1 {
		return fmt.Errorf("part %d: want at least 1: %w", p.Number, ErrInvalidPartNumber)
	}
	k := partKey(uploadID, p.Number)
	if err := tx.kv.set(k, tx.seal(k, encodePart(nil, p))); err != nil {
		return err
	}
	return tx.touchFence(partFenceKey(uploadID))
}

// GetPart returns a part's record, or an error wrapping ErrNoSuchKey.
func (tx *Txn) GetPart(uploadID string, number int32) (*Part, error) {
	p := &Part{Number: number}
	ok := false
	var err error
	if validUploadID(uploadID) && number >= 1 {
		ok, err = tx.record(partKey(uploadID, number), func(v []byte) error { return decodePart(v, p) })
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s part %d: %w", uploadID, number, err)
	}
	if !ok {
		return nil, fmt.Errorf("upload %s part %d: %w", uploadID, number, ErrNoSuchKey)
	}
	return p, nil
}

// ListParts returns up to max parts (0 means 1000; at most 1000) of an
// upload with numbers above after, in number order, and whether more
// follow.
func (tx *Txn) ListParts(uploadID string, after int32, max int) (parts []*Part, truncated bool, err error) {
	limit := pageSize(max)
	if !validUploadID(uploadID) || after == math.MaxInt32 {
		return nil, false, nil
	}
	prefix := partsPrefix(uploadID)
	start := prefix
	if after >= 0 {
		start = partKey(uploadID, after+1)
	}
	err = tx.scan(prefix, start, func(k, v []byte) (bool, error) {
		if len(parts) == limit {
			truncated = true
			return false, nil
		}
		_, n, ok := parsePartKey(k)
		if !ok {
			return false, fmt.Errorf("%w: bad part key %q", ErrCorruptRecord, k)
		}
		p := &Part{Number: n}
		if err := tx.itemRecord(k, v, func(v []byte) error { return decodePart(v, p) }); err != nil {
			return false, fmt.Errorf("upload %s part %d: %w", uploadID, n, err)
		}
		parts = append(parts, p)
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	return parts, truncated, nil
}
