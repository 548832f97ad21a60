package s3

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// maxKeys reads ?max-keys: 1000 when absent, at most 1000.
func maxKeysParam(q *request) (int, error) {
	vals, ok := q.query["max-keys"]
	if !ok {
		return 1000, nil
	}
	n, err := strconv.Atoi(vals[0])
	if err != nil || n < 0 {
		return 0, s3err.ErrInvalidArgument.WithMessage("Provided max-keys not an integer or within integer range")
	}
	return min(n, 1000), nil
}

// listRecords reads one page of a listing, its records left for the
// answer to check and decode as it goes. A page of zero keys only checks
// the bucket.
func (q *request) listRecords(opts cryptostore.ListOptions) (*cryptostore.RecordPage, error) {
	if opts.MaxKeys == 0 {
		if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
			return nil, err
		}
		return &cryptostore.RecordPage{}, nil
	}
	return q.h.store.ListRecords(q.ctx, q.bucket, opts)
}

// primaryChecksum returns the checksum S3 would report for an object: the
// one the client sent or asked for, else the one every object has (ok is
// false for an object with none). sealfs keeps both; S3 keeps one, and a
// client validating a GET uses the one it is given.
func primaryChecksum(sums []cryptostore.Checksum) (c cryptostore.Checksum, ok bool) {
	for _, s := range sums {
		if !ok || (c.Algorithm == cryptostore.DefaultChecksum && s.Algorithm != c.Algorithm) {
			c, ok = s, true
		}
	}
	return c, ok
}

// checksumType is FULL_OBJECT, or COMPOSITE for a multipart upload's
// checksum of checksums ("value-N").
func checksumType(c cryptostore.Checksum) string {
	if strings.Contains(c.Value, "-") {
		return "COMPOSITE"
	}
	return "FULL_OBJECT"
}

// checksumOf names the checksum a listing shows for an object with sums.
func checksumOf(sums []cryptostore.Checksum) (alg, typ string) {
	if c, ok := primaryChecksum(sums); ok {
		return c.Algorithm, checksumType(c)
	}
	return "", ""
}

func (q *request) listEntry(o *cryptostore.ObjectSummary, owner bool) s3xml.Object {
	alg, typ := checksumOf(o.Checksums)
	e := s3xml.Object{
		Key:               o.Key,
		LastModified:      s3xml.NewTime(o.LastModified),
		ETag:              quote(o.ETag),
		ChecksumAlgorithm: alg,
		ChecksumType:      typ,
		Size:              o.Size,
		StorageClass:      storageClass,
	}
	if owner {
		e.Owner = &q.h.owner
	}
	return e
}

func commonPrefixes(ps []string) []s3xml.CommonPrefix {
	if len(ps) == 0 {
		return nil
	}
	out := make([]s3xml.CommonPrefix, len(ps))
	for i, p := range ps {
		out[i].Prefix = p
	}
	return out
}

// listParams reads what every listing takes: encoding-type and max-keys.
func listParams(q *request) (urlEncode bool, maxKeys int, err error) {
	if urlEncode, err = encodingType(q); err != nil {
		return false, 0, err
	}
	maxKeys, err = maxKeysParam(q)
	return urlEncode, maxKeys, err
}

func listObjectsV1(q *request) error {
	enc, n, err := listParams(q)
	if err != nil {
		return err
	}
	res := s3xml.ListBucketResult{
		Name:      q.bucket,
		Prefix:    q.query.Get("prefix"),
		Marker:    q.query.Get("marker"),
		MaxKeys:   n,
		Delimiter: q.query.Get("delimiter"),
	}
	page, err := q.listRecords(cryptostore.ListOptions{Prefix: res.Prefix, Delimiter: res.Delimiter, After: res.Marker, MaxKeys: n})
	if err != nil {
		return err
	}
	res.IsTruncated = page.IsTruncated
	if page.IsTruncated {
		res.NextMarker = page.NextAfter
	}
	res.CommonPrefixes = commonPrefixes(page.CommonPrefixes)
	if enc {
		res.EncodeURL()
	}
	return q.writeListing(func(b []byte) []byte { return appendListV1Head(b, &res) }, page, true, enc, res.CommonPrefixes)
}

func listObjectsV2(q *request) error {
	enc, n, err := listParams(q)
	if err != nil {
		return err
	}
	res := s3xml.ListBucketResultV2{
		Name:              q.bucket,
		Prefix:            q.query.Get("prefix"),
		MaxKeys:           n,
		Delimiter:         q.query.Get("delimiter"),
		StartAfter:        q.query.Get("start-after"),
		ContinuationToken: q.query.Get("continuation-token"),
	}
	after := res.StartAfter
	// An empty continuation-token is no token: AWS lists from the start
	// (or from start-after), as SDK paginators expect when they pass the
	// empty NextContinuationToken of a previous page along.
	if res.ContinuationToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(res.ContinuationToken)
		if err != nil {
			return s3err.ErrInvalidArgument.WithMessage("The continuation token provided is incorrect")
		}
		after = string(raw)
	}
	page, err := q.listRecords(cryptostore.ListOptions{Prefix: res.Prefix, Delimiter: res.Delimiter, After: after, MaxKeys: n})
	if err != nil {
		return err
	}
	res.IsTruncated = page.IsTruncated
	if page.IsTruncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(page.NextAfter))
	}
	res.CommonPrefixes = commonPrefixes(page.CommonPrefixes)
	res.KeyCount = page.Len() + len(res.CommonPrefixes)
	if enc {
		res.EncodeURL()
	}
	owner := q.query.Get("fetch-owner") == "true"
	return q.writeListing(func(b []byte) []byte { return appendListV2Head(b, &res) }, page, owner, enc, res.CommonPrefixes)
}

// A listing document is sent a piece at a time: a 1000-key page is about
// 250 KB, and the client parses the first pieces while the daemon checks and
// decodes the records of the next. The first piece is small, so the client
// starts early.
const (
	firstListPiece = 16 << 10
	listPiece      = 64 << 10
)

// listBufs holds the buffers listing documents are built in.
var listBufs = sync.Pool{New: func() any { b := make([]byte, 0, listPiece+8<<10); return &b }}

// writeListing answers a V1 or V2 listing: the document's head (head
// appends it), an entry for each of page's objects, then prefixes (already
// URL-encoded when urlEncode is set) and the document's end. The bytes are
// those appendListV1 or appendListV2 would build whole, sent in pieces as
// the records are checked and decoded. A document that fits in the first
// piece goes out with its Content-Length, a longer one chunked.
//
// A record that fails its check (a tampered store) or its decoding before
// the first piece is sent is an error response. After, the connection is
// cut, as for a GET whose data fails mid-body: the client sees an unfinished
// document, never a shorter listing or an unchecked record.
func (q *request) writeListing(head func([]byte) []byte, page *cryptostore.RecordPage, owner, urlEncode bool, prefixes []s3xml.CommonPrefix) error {
	bufp := listBufs.Get().(*[]byte)
	defer func() {
		if cap(*bufp) <= 2*listPiece {
			listBufs.Put(bufp)
		}
	}()
	doc := head((*bufp)[:0])
	defer page.Release()
	sent := false
	var o cryptostore.ObjectSummary
	for i := 0; i < page.Len(); i++ {
		if err := page.Summary(i, &o); err != nil {
			if !sent {
				return err
			}
			q.h.log.Error("s3 listing failed mid-document", "id", q.id, "bucket", q.bucket, "err", err)
			q.w.errCode = "InternalError"
			panic(http.ErrAbortHandler)
		}
		e := q.listEntry(&o, owner)
		if urlEncode {
			e.Key = s3xml.URLEncode(e.Key)
		}
		doc = appendObject(doc, &e)
		if len(doc) >= listPiece || !sent && len(doc) >= firstListPiece {
			if !sent {
				q.w.Header()["Content-Type"] = []string{"application/xml"}
				q.w.WriteHeader(http.StatusOK)
				sent = true
			}
			if err := q.writeBody(doc); err != nil {
				return nil // the client went away
			}
			q.w.Flush()
			doc = doc[:0]
		}
	}
	doc = appendListTail(doc, prefixes)
	*bufp = doc[:0]
	if !sent {
		q.writeXMLBytes(doc)
		return nil
	}
	q.writeBody(doc)
	return nil
}

// listVersions answers ListObjectVersions: sealfs keeps one version of each
// key, whose version id is "null" (as in a bucket never versioned). Its
// document is built whole, not sent in pieces as writeListing's are.
func listVersions(q *request) error {
	enc, n, err := listParams(q)
	if err != nil {
		return err
	}
	res := s3xml.ListVersionsResult{
		Name:            q.bucket,
		Prefix:          q.query.Get("prefix"),
		KeyMarker:       q.query.Get("key-marker"),
		VersionIDMarker: q.query.Get("version-id-marker"),
		MaxKeys:         n,
		Delimiter:       q.query.Get("delimiter"),
	}
	page, err := q.listRecords(cryptostore.ListOptions{Prefix: res.Prefix, Delimiter: res.Delimiter, After: res.KeyMarker, MaxKeys: n})
	if err != nil {
		return err
	}
	defer page.Release()
	res.IsTruncated = page.IsTruncated
	if page.IsTruncated {
		res.NextKeyMarker = page.NextAfter
		res.NextVersionIDMarker = "null"
	}
	var o cryptostore.ObjectSummary
	for i := range page.Len() {
		if err := page.Summary(i, &o); err != nil {
			return err
		}
		alg, typ := checksumOf(o.Checksums)
		res.Versions = append(res.Versions, s3xml.ObjectVersion{
			Key:               o.Key,
			VersionID:         "null",
			IsLatest:          true,
			LastModified:      s3xml.NewTime(o.LastModified),
			ETag:              quote(o.ETag),
			ChecksumAlgorithm: alg,
			ChecksumType:      typ,
			Size:              o.Size,
			StorageClass:      storageClass,
			Owner:             &q.h.owner,
		})
	}
	res.CommonPrefixes = commonPrefixes(page.CommonPrefixes)
	if enc {
		res.EncodeURL()
	}
	return q.writeXML(res)
}
