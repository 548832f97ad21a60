package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
	"github.com/sealfs/sealfs/s3/httprange"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// Size limits S3 sets.
const (
	maxPutSize  = 5 << 30 // one PutObject or UploadPart
	maxCopySize = 5 << 30 // one CopyObject or UploadPartCopy source
)

// getBufSize is the piece size a GET body is read (decrypted) and written
// in; a body under smallGet is read whole into a buffer of smallGet bytes.
const (
	getBufSize = 256 << 10
	smallGet   = 64 << 10
)

// dataBody opens the body of an object-data write (PutObject, UploadPart)
// and takes Content-MD5 over: it is checked against the MD5 the store
// computes (for a plain object's ETag anyway; for an encrypted one only
// when asked, and wantMD5 says whether to ask: only when Content-MD5 was
// sent). The returned Verify hook, for the store, passes only a payload
// verified to its end.
func (q *request) dataBody() (p *sigv4.Payload, verify func(*cryptostore.Sums) error, wantMD5 bool, err error) {
	var contentMD5 []byte
	if vals := q.r.Header.Values("Content-Md5"); len(vals) > 0 {
		sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(vals[0]))
		if len(vals) > 1 || err != nil || len(sum) != md5.Size {
			return nil, nil, false, s3err.ErrInvalidDigest
		}
		contentMD5 = sum
		delete(q.r.Header, "Content-Md5")
	}
	p, err = q.body()
	if err != nil {
		return nil, nil, false, err
	}
	size := p.ExpectedSize()
	switch {
	case size < 0:
		return nil, nil, false, s3err.ErrMissingContentLength
	case size > maxPutSize:
		return nil, nil, false, s3err.ErrEntityTooLarge.WithMessage("Your proposed upload exceeds the maximum allowed size of 5 GiB for one request; use a multipart upload.")
	}
	verify = func(s *cryptostore.Sums) error {
		if !p.Verified() {
			return s3err.ErrIncompleteBody
		}
		if contentMD5 != nil && !bytes.Equal(s.MD5, contentMD5) {
			return s3err.ErrBadDigest
		}
		// The checksums the client sent (or asked for) were computed and
		// verified by sigv4 as the body streamed: store them as they are.
		for alg, v := range p.Checksums() {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				continue
			}
			if s.Checksums == nil {
				s.Checksums = make(map[string][]byte)
			}
			s.Checksums[string(alg)] = raw
		}
		return nil
	}
	return p, verify, contentMD5 != nil, nil
}

// setClientChecksum echoes the checksum the client sent, as S3 does.
func (q *request) setClientChecksum(p *sigv4.Payload) {
	if alg, v := p.ClientChecksum(); alg != "" && v != "" {
		q.w.Header()[http.CanonicalHeaderKey(alg.Header())] = []string{v}
	}
}

// newObjectMeta checks what every request creating an object carries — its
// key, its metadata, any KMS key header — and returns the metadata.
func (q *request) newObjectMeta() (cryptostore.ObjectMeta, error) {
	if err := checkKey(q.key); err != nil {
		return cryptostore.ObjectMeta{}, err
	}
	m, err := objectMeta(q.r.Header)
	if err != nil {
		return cryptostore.ObjectMeta{}, err
	}
	return m, q.checkKMSKeyHeader(q.bucket)
}

func putObject(q *request) error {
	m, err := q.newObjectMeta()
	if err != nil {
		return err
	}
	p, verify, wantMD5, err := q.dataBody()
	if err != nil {
		return err
	}
	obj, err := q.h.store.Put(q.ctx, &cryptostore.PutInput{
		Bucket:    q.bucket,
		Key:       q.key,
		Body:      p,
		Size:      p.ExpectedSize(),
		Meta:      m,
		Verify:    verify,
		MD5:       wantMD5,
		Condition: putCondition(q.r.Header),
	})
	if err != nil {
		return err
	}
	hd := q.w.Header()
	hd["Etag"] = []string{quote(obj.ETag)}
	q.setSSE(obj.Encryption)
	q.noteUnencryptedSSE(obj.Encryption)
	q.setClientChecksum(p)
	return q.ok()
}

func getObject(q *request) error  { return q.serveObject(true) }
func headObject(q *request) error { return q.serveObject(false) }

// serveObject answers GetObject (withBody) and HeadObject.
func (q *request) serveObject(withBody bool) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if v := q.query.Get("versionId"); v != "" && v != "null" {
		return s3err.ErrNoSuchVersion
	}
	var obj *cryptostore.Object
	var hdl *cryptostore.Handle
	var err error
	if withBody {
		if hdl, err = q.h.store.Open(q.ctx, q.bucket, q.key); err != nil {
			return err
		}
		defer hdl.Close()
		obj = hdl.Object()
	} else if obj, err = q.h.store.Head(q.ctx, q.bucket, q.key); err != nil {
		return err
	}
	hd := q.w.Header()
	if err := checkConditions(q.r.Header, readConditions, obj.ETag, obj.LastModified); err != nil {
		if errors.Is(err, s3err.ErrNotModified) {
			hd["Etag"] = []string{quote(obj.ETag)}
			hd["Last-Modified"] = []string{obj.LastModified.UTC().Format(http.TimeFormat)}
		}
		return err
	}

	start, length, status := int64(0), obj.Size, http.StatusOK
	if pn := q.query.Get("partNumber"); pn != "" {
		s, n, count, err := partRange(obj, pn)
		if err != nil {
			return err
		}
		hd["X-Amz-Mp-Parts-Count"] = []string{strconv.Itoa(count)}
		if count > 1 {
			start, length, status = s, n, http.StatusPartialContent
		}
	} else if rh := q.r.Header.Get("Range"); rh != "" {
		s, n, err := httprange.Parse(rh, obj.Size)
		switch {
		case err == nil:
			start, length, status = s, n, http.StatusPartialContent
		case errors.Is(err, httprange.ErrNoRange):
		default:
			hd["Content-Range"] = []string{httprange.Unsatisfiable(obj.Size)}
			return err
		}
	}

	// Read (and verify) the first piece before answering, so that damaged
	// data is an error response rather than a cut connection whenever the
	// object fits in one piece.
	var firstBuf []byte
	if withBody && length > 0 {
		pool := &q.h.bufs
		if length < smallGet {
			pool = &q.h.small
		}
		bufp := pool.Get().(*[]byte)
		defer pool.Put(bufp)
		firstBuf = (*bufp)[:min(int64(len(*bufp)), length)]
		if k, err := hdl.ReadAt(firstBuf, start); k < len(firstBuf) {
			return dataError(err)
		}
	}

	if status == http.StatusOK {
		q.setObjectHeaders(obj, true)
	} else {
		q.setObjectHeaders(obj, false)
		hd["Content-Range"] = []string{httprange.ContentRange(start, length, obj.Size)}
	}
	hd["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	q.w.WriteHeader(status)
	if !withBody || length == 0 {
		return nil
	}
	if err := q.writeBody(firstBuf); err != nil {
		return nil // the client went away; the log line shows the bytes sent
	}
	if off, err := q.streamRest(hdl, start+int64(len(firstBuf)), start+length); err != nil {
		// The status is sent: cut the connection so the client sees a
		// short body (Content-Length is set) instead of a silent end.
		q.h.log.Error("s3 object read failed mid-body", "id", q.id, "bucket", q.bucket, "key", q.key, "offset", off, "err", err)
		q.w.errCode = "InternalError"
		panic(http.ErrAbortHandler)
	}
	return nil
}

// piece is a decrypted run of object bytes on its way to the client.
type piece struct {
	buf *[]byte
	n   int
	err error // set when fewer bytes than asked for could be read
}

// streamRest writes the object bytes [off, end) to the client. A reader
// goroutine decrypts the next piece while the current one is written, so a
// single stream keeps both cores busy. It returns a read failure and the
// offset it happened at; a client that goes away ends it quietly.
func (q *request) streamRest(hdl *cryptostore.Handle, off, end int64) (int64, error) {
	if off >= end {
		return off, nil
	}
	free := make(chan *[]byte, 2)
	ready := make(chan piece, 1)
	stop := make(chan struct{})
	for i := 0; i < 2; i++ {
		free <- q.h.bufs.Get().(*[]byte)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ready)
		for pos := off; pos < end; {
			var b *[]byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n := int(min(int64(len(*b)), end-pos))
			k, err := hdl.ReadAt((*b)[:n], pos)
			p := piece{buf: b, n: k}
			if k < n {
				p.err = dataError(err)
			}
			select {
			case ready <- p:
			case <-stop:
				free <- b
				return
			}
			if p.err != nil {
				return
			}
			pos += int64(k)
		}
	}()
	var failed error
	failedAt := off
	gone := false
	for p := range ready {
		if !gone && p.n > 0 {
			if err := q.writeBody((*p.buf)[:p.n]); err != nil {
				gone = true // the client went away: stop reading
				close(stop)
			}
		}
		off += int64(p.n)
		if p.err != nil && !gone {
			failed, failedAt = p.err, off
		}
		free <- p.buf
	}
	if !gone {
		close(stop)
	}
	wg.Wait()
	for len(free) > 0 {
		q.h.bufs.Put(<-free)
	}
	return failedAt, failed
}

// writeBody writes a piece of a GET body, its TLS records gathered into one
// write to the socket (batchconn.go).
func (q *request) writeBody(p []byte) error {
	return gathered(q.r.Context(), func() error {
		_, err := q.w.Write(p)
		return err
	})
}

// dataError is the error of a short read of object data.
func dataError(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// partRange returns the byte range of part pn of obj (GetObject and
// HeadObject with ?partNumber) and how many parts obj has. An object
// written in one piece has one part.
func partRange(obj *cryptostore.Object, pn string) (start, length int64, count int, err error) {
	n, perr := strconv.Atoi(pn)
	if perr != nil || n < 1 || n > s3xml.MaxPartNumber {
		return 0, 0, 0, errPartNumber
	}
	// A composed version (edited in place through the mount) lists
	// extents, not parts, even where it shares a multipart object's blobs.
	multipart := !obj.Inline && len(obj.Blobs) > 0 && obj.Blobs[0].Index > 0 && !obj.Composed()
	if !multipart {
		if n != 1 {
			return 0, 0, 0, s3err.ErrInvalidRange.WithMessage("The requested partnumber is not satisfiable")
		}
		return 0, obj.Size, 1, nil
	}
	var off int64
	for i, b := range obj.Blobs {
		if i == n-1 {
			return off, b.Size, len(obj.Blobs), nil
		}
		off += b.Size
	}
	return 0, 0, 0, s3err.ErrInvalidRange.WithMessage("The requested partnumber is not satisfiable")
}

func deleteObject(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if v := q.query.Get("versionId"); v != "" && v != "null" {
		return s3err.ErrNoSuchVersion
	}
	err := q.h.store.Delete(q.ctx, q.bucket, q.key)
	if err != nil && !errors.Is(err, cryptostore.ErrNoSuchKey) {
		return err
	}
	return q.noContent()
}

func deleteObjects(q *request) error {
	data, err := q.readSmallBody(s3xml.DefaultMaxBodySize)
	if err != nil {
		return err
	}
	var req s3xml.Delete
	if err := s3xml.DecodeBytes(data, &req); err != nil {
		return err
	}
	// A user's policy is asked about each key (s3:DeleteObject) before the
	// bucket is looked at; a request allowed for none of them is refused
	// whole.
	denied := make([]error, len(req.Objects))
	allowed := len(req.Objects) == 0
	for i, o := range req.Objects {
		denied[i] = q.check(&iam.Request{Action: "s3:DeleteObject", Resource: iam.S3ObjectARN(q.bucket, o.Key)})
		allowed = allowed || denied[i] == nil
	}
	if !allowed {
		return denied[0]
	}
	if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
		return err
	}
	// The deletes commit without waiting for a sync each; one sync makes
	// them all durable (and any key found absent, see Store.Delete)
	// before the answer reports any of them done.
	unsynced := cryptostore.WithoutSync(q.ctx)
	var res s3xml.DeleteResult
	for i, o := range req.Objects {
		var err error
		switch {
		case denied[i] != nil:
			err = denied[i]
		case o.VersionID != "" && o.VersionID != "null":
			err = s3err.ErrNoSuchVersion
		default:
			if err = checkKey(o.Key); err == nil {
				err = q.h.store.Delete(unsynced, q.bucket, o.Key)
			}
		}
		if err == nil || errors.Is(err, cryptostore.ErrNoSuchKey) {
			if !req.Quiet {
				res.Deleted = append(res.Deleted, s3xml.DeletedObject{Key: o.Key, VersionID: o.VersionID})
			}
			continue
		}
		if errors.Is(err, cryptostore.ErrNoSuchBucket) {
			return err
		}
		e := q.h.toS3(q, err)
		if e.HTTPStatus >= 500 {
			q.h.log.Error("s3 delete failed", "id", q.id, "bucket", q.bucket, "key", o.Key, "err", err)
		}
		res.Errors = append(res.Errors, s3xml.DeleteError{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
	}
	if err := q.h.store.Sync(q.ctx); err != nil {
		return err
	}
	return q.writeXML(res)
}

// copySource parses x-amz-copy-source: "[/]bucket/key[?versionId=null]",
// URL-encoded.
func copySource(v string) (bucket, key string, err error) {
	v, query, _ := strings.Cut(v, "?")
	if query != "" {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return "", "", s3err.ErrInvalidArgument.WithMessage("The x-amz-copy-source query is not valid.")
		}
		if id := vals.Get("versionId"); id != "" && id != "null" {
			return "", "", s3err.ErrNoSuchVersion
		}
	}
	s, err := url.PathUnescape(v)
	if err != nil {
		return "", "", s3err.ErrInvalidArgument.WithMessage("Invalid copy source encoding.")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if bucket == "" || key == "" {
		return "", "", s3err.ErrInvalidArgument.WithMessage("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

func copyObject(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	srcBucket, srcKey, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	var m *cryptostore.ObjectMeta
	switch d := q.r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
		if srcBucket == q.bucket && srcKey == q.key && q.r.Header.Get("X-Amz-Server-Side-Encryption") == "" && q.r.Header.Get("X-Amz-Storage-Class") == "" {
			return s3err.ErrInvalidRequest.WithMessage("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	case "REPLACE":
		rm, err := objectMeta(q.r.Header)
		if err != nil {
			return err
		}
		m = &rm
	default:
		return s3err.ErrInvalidArgument.WithMessage("Unknown metadata directive.")
	}
	if err := q.checkKMSKeyHeader(q.bucket); err != nil {
		return err
	}
	obj, err := q.h.store.Copy(q.ctx, &cryptostore.CopyInput{
		SrcBucket: srcBucket,
		SrcKey:    srcKey,
		DstBucket: q.bucket,
		DstKey:    q.key,
		Meta:      m,
		SrcCondition: func(src *cryptostore.Object) error {
			if src.Size > maxCopySize {
				return errCopyTooLarge
			}
			return checkConditions(q.r.Header, copyConditions, src.ETag, src.LastModified)
		},
		Condition: putCondition(q.r.Header),
	})
	if err != nil {
		return err
	}
	q.setSSE(obj.Encryption)
	q.noteUnencryptedSSE(obj.Encryption)
	return q.writeXML(s3xml.CopyObjectResult{ETag: quote(obj.ETag), LastModified: s3xml.NewTime(obj.LastModified)})
}

var errCopyTooLarge = s3err.ErrInvalidRequest.WithMessage("The specified copy source is larger than the maximum allowable size for a copy source: 5368709120")

// copySealed: a copy out of an encrypted object or into an encrypting
// bucket.
func copySealed(q *request) bool {
	if bucketSealed(q) {
		return true
	}
	return copySourceSealed(q)
}

func copySourceSealed(q *request) bool {
	b, k, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return false
	}
	obj, err := q.h.store.Head(q.ctx, b, k)
	return err == nil && obj.Encryption != nil
}
