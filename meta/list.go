package meta

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// List returns a page of bucket's objects whose keys start with
// opts.Prefix, in byte order of their keys, as S3 ListObjects does.
//
// With a Delimiter, a key whose remainder after Prefix contains the
// delimiter rolls up into a common prefix (Prefix, the remainder up to and
// including the delimiter's first occurrence). The listing then seeks past
// every key under that common prefix instead of visiting them, so a page
// costs O(page) record reads however many keys the prefixes hold. Objects
// and common prefixes interleave in byte order and MaxKeys (0 means 1000; at
// most 1000) counts both.
//
// After is exclusive. When After is itself a common prefix (its remainder
// after Prefix contains the delimiter only at its end) everything under it
// is skipped too, which is what continuing from a page's NextAfter needs.
func (tx *Txn) List(bucket string, opts ListOptions) (*ListPage, error) {
	page := &ListPage{}
	var err error
	page.CommonPrefixes, page.IsTruncated, page.NextAfter, err = tx.scanPage(bucket, opts, func(k []byte, key string, v []byte) error {
		o := &Object{Bucket: bucket, Key: key}
		if err := tx.itemRecord(k, v, func(rec []byte) error { return decodeObject(rec, o) }); err != nil {
			return err
		}
		page.Objects = append(page.Objects, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// RecordPage is a page of a listing whose object records are copied out of
// the transaction as stored: checking a record's MAC and decoding it are
// most of a page's cost, and a listing that does them as it answers sends
// its first objects while it works on the later ones.
type RecordPage struct {
	CommonPrefixes []string
	IsTruncated    bool
	NextAfter      string

	auth   *recordAuth
	bucket string
	base   []byte // the database key of the bucket's objects, without a key
	keys   []string
	ends   []int   // (*recs)[ends[i-1]:ends[i]] is object i's record
	recs   *[]byte // the records as stored, MACs included, back to back
	dbKey  []byte  // scratch for Summary
}

// recordBufs holds RecordPage's record buffers: a 1000-key page is a few
// hundred KB, which a fresh buffer would take in several doublings.
var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// Len is the number of objects in the page.
func (p *RecordPage) Len() int { return len(p.keys) }

// Summary checks object i's record (0 <= i < Len()) and decodes into s
// what a listing shows of it, overwriting s (and reusing its Checksums). A
// record that fails its MAC is ErrRecordTampered, as in List. Summary is not
// safe for concurrent use.
func (p *RecordPage) Summary(i int, s *ObjectSummary) error {
	start := 0
	if i > 0 {
		start = p.ends[i-1]
	}
	*s = ObjectSummary{Key: p.keys[i], Checksums: s.Checksums[:0]}
	p.dbKey = append(append(p.dbKey[:0], p.base...), s.Key...)
	rec, err := p.auth.open(p.dbKey, (*p.recs)[start:p.ends[i]])
	if err == nil {
		err = decodeSummary(rec, s)
	}
	if err != nil {
		return fmt.Errorf("object %s/%s: %w", p.bucket, s.Key, err)
	}
	return nil
}

// Release lets the page's buffers go; the page must not be used after.
func (p *RecordPage) Release() {
	if p.recs != nil && cap(*p.recs) <= 1<<20 {
		*p.recs = (*p.recs)[:0]
		recordBufs.Put(p.recs)
	}
	p.recs, p.keys, p.ends = nil, nil, nil
}

// ListRecords reads the page List would, leaving its objects' records to be
// checked and decoded by RecordPage.Summary. Release the page when done.
func (tx *Txn) ListRecords(bucket string, opts ListOptions) (*RecordPage, error) {
	page := &RecordPage{auth: tx.auth, bucket: bucket, base: objectPrefix(bucket, ""), recs: recordBufs.Get().(*[]byte)}
	var err error
	page.CommonPrefixes, page.IsTruncated, page.NextAfter, err = tx.scanPage(bucket, opts, func(_ []byte, key string, v []byte) error {
		page.keys = append(page.keys, key)
		*page.recs = append(*page.recs, v...)
		page.ends = append(page.ends, len(*page.recs))
		return nil
	})
	if err != nil {
		page.Release()
		return nil, err
	}
	return page, nil
}

// scanPage walks the page List describes. It calls fn with each object's
// database key, key and record as stored (the slices valid only until fn
// returns), in key order, and returns the page's common prefixes, whether it is
// truncated and the last key or common prefix in it.
func (tx *Txn) scanPage(bucket string, opts ListOptions, fn func(k []byte, key string, v []byte) error) (prefixes []string, truncated bool, nextAfter string, err error) {
	if strings.IndexByte(bucket, 0) >= 0 || strings.IndexByte(opts.Prefix, 0) >= 0 {
		return nil, false, "", nil // no key holds a NUL
	}
	limit := pageSize(opts.MaxKeys)
	baseLen := len(objectPrefix(bucket, ""))
	prefix := objectPrefix(bucket, opts.Prefix)
	start := prefix
	if opts.After != "" {
		// The smallest key after After is After followed by a NUL byte.
		after := append(objectPrefix(bucket, opts.After), sep)
		if opts.Delimiter != "" && strings.HasPrefix(opts.After, opts.Prefix) {
			rest := opts.After[len(opts.Prefix):]
			if i := strings.Index(rest, opts.Delimiter); i >= 0 && i+len(opts.Delimiter) == len(rest) {
				after = successor(objectPrefix(bucket, opts.After))
			}
		}
		if after == nil {
			return nil, false, "", nil
		}
		if bytes.Compare(after, start) > 0 {
			start = after
		}
	}
	delim := []byte(opts.Delimiter)

	it := tx.kv.iterate(prefix, false)
	defer it.close()
	n := 0
	for it.seek(start); it.valid(); {
		tx.reads++
		k := it.key()
		key := k[baseLen:] // valid until the next seek or next
		if len(delim) > 0 {
			if i := bytes.Index(key[len(opts.Prefix):], delim); i >= 0 {
				if n == limit {
					truncated = true
					break
				}
				cp := string(key[:len(opts.Prefix)+i+len(delim)])
				prefixes = append(prefixes, cp)
				nextAfter = cp
				n++
				next := successor(objectPrefix(bucket, cp))
				if next == nil {
					break
				}
				it.seek(next)
				continue
			}
		}
		if n == limit {
			truncated = true
			break
		}
		ks := string(key)
		v, err := it.value()
		if err == nil {
			err = fn(k, ks, v)
		}
		if err != nil {
			return nil, false, "", fmt.Errorf("object %s/%s: %w", bucket, ks, err)
		}
		nextAfter = ks
		n++
		it.next()
	}
	if err := it.err(); err != nil {
		return nil, false, "", err
	}
	return prefixes, truncated, nextAfter, nil
}
