package s3

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// maxCompleteBody bounds a CompleteMultipartUpload body: 10000 parts, each
// with an ETag and a checksum, fit comfortably.
const maxCompleteBody = 4 << 20

// storageClass is the only storage class sealfs has.
const storageClass = "STANDARD"

func createUpload(q *request) error {
	m, err := q.newObjectMeta()
	if err != nil {
		return err
	}
	var alg sigv4.ChecksumAlgorithm
	if s := q.r.Header.Get("X-Amz-Checksum-Algorithm"); s != "" {
		a, ok := sigv4.ParseChecksumAlgorithm(s)
		if !ok {
			return s3err.ErrInvalidRequest.WithMessage("Checksum algorithm " + strconv.Quote(s) + " is not supported.")
		}
		alg = a
	}
	if t := q.r.Header.Get("X-Amz-Checksum-Type"); t != "" && !strings.EqualFold(t, "COMPOSITE") {
		return s3err.ErrNotImplemented.WithMessage("sealfs computes multipart checksums as COMPOSITE checksums only.")
	}
	u, err := q.h.store.CreateMultipart(q.ctx, q.bucket, q.key, m, string(alg))
	if err != nil {
		return err
	}
	q.setSSE(u.Encryption)
	q.noteUnencryptedSSE(u.Encryption)
	if alg != "" {
		hd := q.w.Header()
		hd["X-Amz-Checksum-Algorithm"] = []string{string(alg)}
		hd["X-Amz-Checksum-Type"] = []string{"COMPOSITE"}
	}
	return q.writeXML(s3xml.InitiateMultipartUploadResult{Bucket: q.bucket, Key: q.key, UploadID: u.ID})
}

// partNumber parses ?partNumber.
func (q *request) partNumber() (int32, error) {
	n, err := strconv.Atoi(q.query.Get("partNumber"))
	if err != nil || n < 1 || n > s3xml.MaxPartNumber {
		return 0, errPartNumber
	}
	return int32(n), nil
}

// upload returns the upload a request names (?uploadId).
func (q *request) upload() (*cryptostore.Upload, error) {
	if err := checkKey(q.key); err != nil {
		return nil, err
	}
	id := q.query.Get("uploadId")
	if id == "" {
		return nil, s3err.ErrNoSuchUpload
	}
	return q.h.store.GetUpload(q.ctx, q.bucket, q.key, id)
}

func uploadPart(q *request) error {
	n, err := q.partNumber()
	if err != nil {
		return err
	}
	u, err := q.upload()
	if err != nil {
		return err
	}
	p, verify, wantMD5, err := q.dataBody()
	if err != nil {
		return err
	}
	part, err := q.h.store.UploadPart(q.ctx, &cryptostore.PartInput{
		Bucket:   q.bucket,
		Key:      q.key,
		UploadID: u.ID,
		Number:   n,
		Body:     p,
		Size:     p.ExpectedSize(),
		Verify:   verify,
		MD5:      wantMD5,
	})
	if err != nil {
		return err
	}
	q.w.Header()["Etag"] = []string{quote(part.ETag)}
	q.setSSE(u.Encryption)
	q.setClientChecksum(p)
	return q.ok()
}

// copyRange parses x-amz-copy-source-range: "bytes=first-last", inside an
// object of size bytes.
func copyRange(v string, size int64) (start, length int64, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	a, err1 := strconv.ParseInt(first, 10, 64)
	b, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil || a < 0 || b < a {
		return 0, 0, s3err.ErrInvalidArgument.WithMessage("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
	}
	if b >= size {
		// AWS answers a range that goes past the end of the source with
		// InvalidRange (416), like a GET's unsatisfiable Range; a range
		// that is not of the form bytes=first-last stays InvalidArgument.
		return 0, 0, s3err.ErrInvalidRange
	}
	return a, b - a + 1, nil
}

func uploadPartCopy(q *request) error {
	n, err := q.partNumber()
	if err != nil {
		return err
	}
	u, err := q.upload()
	if err != nil {
		return err
	}
	srcBucket, srcKey, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	src, err := q.h.store.Open(q.ctx, srcBucket, srcKey)
	if err != nil {
		return err
	}
	defer src.Close()
	obj := src.Object()
	if err := checkConditions(q.r.Header, copyConditions, obj.ETag, obj.LastModified); err != nil {
		return err
	}
	start, length := int64(0), obj.Size
	if v := q.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		if start, length, err = copyRange(v, obj.Size); err != nil {
			return err
		}
	}
	if length > maxCopySize {
		return errCopyTooLarge
	}
	part, err := q.h.store.UploadPart(q.ctx, &cryptostore.PartInput{
		Bucket:   q.bucket,
		Key:      q.key,
		UploadID: u.ID,
		Number:   n,
		Body:     src.Reader(start, length),
		Size:     length,
	})
	if err != nil {
		return err
	}
	q.setSSE(u.Encryption)
	res := s3xml.CopyPartResult{ETag: quote(part.ETag), LastModified: s3xml.NewTime(part.LastModified)}
	fillChecksums(&res.Checksums, part.Checksums, string(u.ChecksumAlgorithm))
	return q.writeXML(res)
}

// uploadSealed: a part of, or the completion of, an encrypted upload.
func uploadSealed(q *request) bool {
	u, err := q.upload()
	return err == nil && u.Encryption != nil
}

// uploadPartCopySealed: a part copy into an encrypted upload or out of an
// encrypted object.
func uploadPartCopySealed(q *request) bool {
	return uploadSealed(q) || copySourceSealed(q)
}

func completeUpload(q *request) error {
	u, err := q.upload()
	if err != nil && !errors.Is(err, cryptostore.ErrNoSuchUpload) {
		return err
	}
	data, rerr := q.readSmallBody(maxCompleteBody)
	if rerr != nil {
		return rerr
	}
	var req s3xml.CompleteMultipartUpload
	if err := s3xml.DecodeBytes(data, &req); err != nil {
		return err
	}
	parts := make([]cryptostore.CompletePart, len(req.Parts))
	withSums := false
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > s3xml.MaxPartNumber {
			return errPartNumber
		}
		parts[i] = cryptostore.CompletePart{Number: int32(p.PartNumber), ETag: unquote(p.ETag)}
		withSums = withSums || p.Checksums != (s3xml.Checksums{})
	}
	if u == nil {
		return q.completedAgain(parts, err)
	}
	if withSums {
		if err := q.checkPartChecksums(u, req.Parts); err != nil {
			return err
		}
	}
	obj, err := q.h.store.CompleteMultipart(q.ctx, q.bucket, q.key, u.ID, parts, putCondition(q.r.Header))
	if errors.Is(err, cryptostore.ErrNoSuchUpload) {
		// A concurrent request (the client's retry, or its first try)
		// completed it meanwhile.
		return q.completedAgain(parts, err)
	}
	if err != nil {
		return err
	}
	return q.completeResult(obj)
}

// completedAgain answers a CompleteMultipartUpload naming an upload that is
// not in progress. AWS answers the repeat of a completion that succeeded
// with 200 and the same result (clients retry a completion that timed
// out), so the store remembers completions for a while
// (cryptostore.CompletedUploadTTL): a repeat with the same parts, while the
// object it made is still there, gets that object's result. Anything else
// gets notFound (NoSuchUpload).
func (q *request) completedAgain(parts []cryptostore.CompletePart, notFound error) error {
	obj, err := q.h.store.CompletedMultipart(q.ctx, q.bucket, q.key, q.query.Get("uploadId"), parts)
	if err != nil {
		if errors.Is(err, cryptostore.ErrNoSuchUpload) {
			return notFound
		}
		return err
	}
	if obj.Encryption != nil && q.r.TLS == nil {
		return s3err.ErrKMSRequiresSecureConnection // design rule 6
	}
	return q.completeResult(obj)
}

// completeResult answers a completion with the object it made.
func (q *request) completeResult(obj *cryptostore.Object) error {
	q.setSSE(obj.Encryption)
	res := s3xml.CompleteMultipartUploadResult{
		Location: q.location(),
		Bucket:   q.bucket,
		Key:      q.key,
		ETag:     quote(obj.ETag),
	}
	if len(obj.Checksums) > 0 {
		fillChecksums(&res.Checksums, obj.Checksums, "")
		res.ChecksumType = "COMPOSITE"
	}
	return q.writeXML(res)
}

// checkPartChecksums compares the checksums a Complete request gives for
// its parts with those the parts were stored with: a mismatch is
// InvalidPart, as in S3.
func (q *request) checkPartChecksums(u *cryptostore.Upload, want []s3xml.CompletePart) error {
	stored := make(map[int32][]cryptostore.Checksum)
	var after int32
	for {
		ps, more, err := q.h.store.ListParts(q.ctx, q.bucket, q.key, u.ID, after, 1000)
		if err != nil {
			return err
		}
		for _, p := range ps {
			stored[p.Number] = p.Checksums
			after = p.Number
		}
		if !more || len(ps) == 0 {
			break
		}
	}
	for _, p := range want {
		var have s3xml.Checksums
		fillChecksums(&have, stored[int32(p.PartNumber)], "")
		for _, pair := range [...][2]string{
			{p.ChecksumCRC32, have.ChecksumCRC32},
			{p.ChecksumCRC32C, have.ChecksumCRC32C},
			{p.ChecksumCRC64NVME, have.ChecksumCRC64NVME},
			{p.ChecksumSHA1, have.ChecksumSHA1},
			{p.ChecksumSHA256, have.ChecksumSHA256},
		} {
			if pair[0] != "" && pair[1] != "" && pair[0] != pair[1] {
				return s3err.ErrInvalidPart.WithMessage("The checksum given for part " + strconv.Itoa(p.PartNumber) + " does not match the part's.")
			}
		}
	}
	return nil
}

// location is the URL of the object a request addresses.
func (q *request) location() string {
	scheme := "https"
	if q.r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + q.r.Host + "/" + url.PathEscape(q.bucket) + "/" + escapeKey(q.key)
}

// escapeKey escapes each segment of a key, keeping its slashes.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// fillChecksums puts stored checksums into their XML fields. With only set,
// only that algorithm's.
func fillChecksums(c *s3xml.Checksums, sums []cryptostore.Checksum, only string) {
	for _, s := range sums {
		if only != "" && s.Algorithm != only {
			continue
		}
		switch s.Algorithm {
		case "CRC32":
			c.ChecksumCRC32 = s.Value
		case "CRC32C":
			c.ChecksumCRC32C = s.Value
		case "CRC64NVME":
			c.ChecksumCRC64NVME = s.Value
		case "SHA1":
			c.ChecksumSHA1 = s.Value
		case "SHA256":
			c.ChecksumSHA256 = s.Value
		}
	}
}

func abortUpload(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if err := q.h.store.AbortMultipart(q.ctx, q.bucket, q.key, q.query.Get("uploadId")); err != nil {
		return err
	}
	return q.noContent()
}

func listParts(q *request) error {
	u, err := q.upload()
	if err != nil {
		return err
	}
	marker := 0
	if s := q.query.Get("part-number-marker"); s != "" {
		if marker, err = strconv.Atoi(s); err != nil || marker < 0 || marker > s3xml.MaxPartNumber {
			return s3err.ErrInvalidArgument.WithMessage("part-number-marker must be an integer between 0 and 10000.")
		}
	}
	maxParts := 1000
	if s := q.query.Get("max-parts"); s != "" {
		if maxParts, err = strconv.Atoi(s); err != nil || maxParts < 0 {
			return s3err.ErrInvalidArgument.WithMessage("max-parts must be a non-negative integer.")
		}
		maxParts = min(maxParts, 1000)
	}
	res := s3xml.ListPartsResult{
		Bucket:            q.bucket,
		Key:               q.key,
		UploadID:          u.ID,
		Initiator:         &s3xml.Initiator{ID: q.h.owner.ID, DisplayName: q.h.owner.DisplayName},
		Owner:             &q.h.owner,
		StorageClass:      storageClass,
		PartNumberMarker:  marker,
		MaxParts:          maxParts,
		ChecksumAlgorithm: u.ChecksumAlgorithm,
	}
	if u.ChecksumAlgorithm != "" {
		res.ChecksumType = "COMPOSITE"
	}
	if maxParts > 0 {
		ps, more, err := q.h.store.ListParts(q.ctx, q.bucket, q.key, u.ID, int32(marker), maxParts)
		if err != nil {
			return err
		}
		res.IsTruncated = more
		for _, p := range ps {
			xp := s3xml.Part{PartNumber: int(p.Number), LastModified: s3xml.NewTime(p.LastModified), ETag: quote(p.ETag), Size: p.Size}
			fillChecksums(&xp.Checksums, p.Checksums, u.ChecksumAlgorithm)
			res.Parts = append(res.Parts, xp)
			res.NextPartNumberMarker = int(p.Number)
		}
	}
	return q.writeXML(res)
}

func listUploads(q *request) error {
	enc, err := encodingType(q)
	if err != nil {
		return err
	}
	maxUploads := 1000
	if s := q.query.Get("max-uploads"); s != "" {
		if maxUploads, err = strconv.Atoi(s); err != nil || maxUploads < 0 {
			return s3err.ErrInvalidArgument.WithMessage("max-uploads must be a non-negative integer.")
		}
		maxUploads = min(maxUploads, 1000)
	}
	prefix, delim := q.query.Get("prefix"), q.query.Get("delimiter")
	res := s3xml.ListMultipartUploadsResult{
		Bucket:         q.bucket,
		KeyMarker:      q.query.Get("key-marker"),
		UploadIDMarker: q.query.Get("upload-id-marker"),
		Delimiter:      delim,
		Prefix:         prefix,
		MaxUploads:     maxUploads,
	}
	if maxUploads == 0 {
		if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
			return err
		}
	} else {
		page, err := q.h.store.ListUploads(q.ctx, q.bucket, cryptostore.UploadListOptions{
			Prefix:         prefix,
			KeyMarker:      res.KeyMarker,
			UploadIDMarker: res.UploadIDMarker,
			MaxUploads:     maxUploads,
		})
		if err != nil {
			return err
		}
		res.IsTruncated = page.IsTruncated
		res.NextKeyMarker, res.NextUploadIDMarker = page.NextKeyMarker, page.NextUploadIDMarker
		// With a delimiter, uploads whose key goes on past it roll up into
		// a common prefix (within the page).
		seen := make(map[string]bool)
		for _, u := range page.Uploads {
			if delim != "" {
				if i := strings.Index(u.Key[len(prefix):], delim); i >= 0 {
					cp := u.Key[:len(prefix)+i+len(delim)]
					if !seen[cp] {
						seen[cp] = true
						res.CommonPrefixes = append(res.CommonPrefixes, s3xml.CommonPrefix{Prefix: cp})
					}
					continue
				}
			}
			res.Uploads = append(res.Uploads, s3xml.Upload{
				Key:               u.Key,
				UploadID:          u.ID,
				Initiator:         &s3xml.Initiator{ID: q.h.owner.ID, DisplayName: q.h.owner.DisplayName},
				Owner:             &q.h.owner,
				StorageClass:      storageClass,
				Initiated:         s3xml.NewTime(u.Initiated),
				ChecksumAlgorithm: u.ChecksumAlgorithm,
			})
		}
	}
	if enc {
		res.EncodeURL()
	}
	return q.writeXML(res)
}

// encodingType reads ?encoding-type: "url" or nothing.
func encodingType(q *request) (bool, error) {
	switch v := q.query.Get("encoding-type"); v {
	case "":
		return false, nil
	case "url":
		return true, nil
	}
	return false, s3err.ErrInvalidArgument.WithMessage("Invalid Encoding Method specified in Request")
}
