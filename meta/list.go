package meta

import (
	"bytes"
	"fmt"
	"strings"
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
	if strings.IndexByte(bucket, 0) >= 0 || strings.IndexByte(opts.Prefix, 0) >= 0 {
		return page, nil // no key holds a NUL
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
			return page, nil
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
					page.IsTruncated = true
					break
				}
				cp := string(key[:len(opts.Prefix)+i+len(delim)])
				page.CommonPrefixes = append(page.CommonPrefixes, cp)
				page.NextAfter = cp
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
			page.IsTruncated = true
			break
		}
		o := &Object{Bucket: bucket, Key: string(key)}
		v, err := it.value()
		if err == nil {
			err = tx.itemRecord(k, v, func(v []byte) error { return decodeObject(v, o) })
		}
		if err != nil {
			return nil, fmt.Errorf("object %s/%s: %w", bucket, o.Key, err)
		}
		page.Objects = append(page.Objects, o)
		page.NextAfter = o.Key
		n++
		it.next()
	}
	if err := it.err(); err != nil {
		return nil, err
	}
	return page, nil
}
