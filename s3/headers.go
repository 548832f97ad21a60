package s3

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// maxUserMeta is S3's limit on user metadata: the names (without
// x-amz-meta-) and values together, in bytes.
const maxUserMeta = 2 << 10

const userMetaPrefix = "X-Amz-Meta-"

// defaultContentType is what S3 answers for an object stored without one.
const defaultContentType = "binary/octet-stream"

// objectMeta reads the content headers and user metadata of a PUT, a
// CopyObject with REPLACE, or a CreateMultipartUpload.
func objectMeta(hd http.Header) (cryptostore.ObjectMeta, error) {
	m := cryptostore.ObjectMeta{
		ContentType:        hd.Get("Content-Type"),
		ContentEncoding:    sigv4.StripAWSChunked(strings.Join(hd.Values("Content-Encoding"), ", ")),
		ContentDisposition: hd.Get("Content-Disposition"),
		ContentLanguage:    hd.Get("Content-Language"),
		CacheControl:       hd.Get("Cache-Control"),
		Expires:            hd.Get("Expires"),
	}
	size := 0
	for name, vals := range hd {
		if len(name) <= len(userMetaPrefix) || !strings.EqualFold(name[:len(userMetaPrefix)], userMetaPrefix) {
			continue
		}
		if m.User == nil {
			m.User = make(map[string]string)
		}
		k := strings.ToLower(name[len(userMetaPrefix):])
		v := decodeMetaValue(strings.Join(vals, ","))
		m.User[k] = v
		size += len(k) + len(v)
	}
	if size > maxUserMeta {
		return m, s3err.ErrMetadataTooLarge.WithMessage("Your metadata headers exceed the maximum allowed metadata size: " +
			strconv.Itoa(size) + " bytes of user metadata, at most " + strconv.Itoa(maxUserMeta) + ".")
	}
	return m, nil
}

// User metadata values that are not US-ASCII. AWS: "When using non-US-ASCII
// characters in your metadata values, the provided Unicode string is
// examined for non-US-ASCII characters. Values of such headers are character
// decoded as per RFC 2047 before storing and encoded as per RFC 2047 to make
// them mail-safe before returning. If the string contains only US-ASCII
// characters, it is presented as is."
//
// So a value is stored as the Unicode text the client meant — what the
// mount's user.x-amz-meta-* xattr shows, in UTF-8 — and a GET or HEAD
// returns a value with any non-ASCII character as RFC 2047 encoded words
// (=?UTF-8?B?...?=, as AWS sends them). A client that sent an encoded word
// gets the same text back; one that sent raw bytes (botocore sends the
// UTF-8 of the text) gets the encoded form, which email.header (Python) or
// mime.WordDecoder (Go) decodes, instead of bytes its HTTP stack would
// misread as Latin-1.
//
// One deliberate difference: AWS reads raw header bytes as ISO-8859-1
// whatever they are, so raw UTF-8 comes back double-encoded ("é" as "Ã©").
// sealfs takes raw bytes that are valid UTF-8 as UTF-8, and only other raw
// bytes as ISO-8859-1.

// decodeMetaValue turns a user metadata header value into the text stored.
func decodeMetaValue(v string) string {
	if !utf8.ValidString(v) {
		r := make([]rune, len(v))
		for i := 0; i < len(v); i++ {
			r[i] = rune(v[i]) // ISO-8859-1: each byte is its code point
		}
		v = string(r)
	}
	if strings.Contains(v, "=?") {
		if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
			v = d
		}
	}
	return v
}

// encodeMetaValue returns a stored user metadata value as a GET or HEAD
// sends it: as it is when it is printable US-ASCII, else RFC 2047 encoded.
func encodeMetaValue(v string) string {
	// Go writes the encoding letter in lower case; AWS writes "B".
	return strings.ReplaceAll(mime.BEncoding.Encode("UTF-8", v), "=?UTF-8?b?", "=?UTF-8?B?")
}

// setObjectHeaders sets the headers that describe an object on a GET or
// HEAD response (not Content-Length, which depends on the range). Checksums
// (asked for with x-amz-checksum-mode: ENABLED) are sent only for the whole
// object.
func (q *request) setObjectHeaders(obj *cryptostore.Object, whole bool) {
	hd := q.w.Header()
	m := &obj.Meta
	ct := m.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	hd["Content-Type"] = []string{ct}
	hd["Etag"] = []string{quote(obj.ETag)}
	hd["Last-Modified"] = []string{obj.LastModified.UTC().Format(http.TimeFormat)}
	hd["Accept-Ranges"] = []string{"bytes"}
	setIf := func(name, v string) {
		if v != "" {
			hd[name] = []string{v}
		}
	}
	setIf("Content-Encoding", m.ContentEncoding)
	setIf("Content-Disposition", m.ContentDisposition)
	setIf("Content-Language", m.ContentLanguage)
	setIf("Cache-Control", m.CacheControl)
	setIf("Expires", m.Expires)
	setIf("X-Amz-Replication-Status", obj.ReplicationStatus)
	for k, v := range m.User {
		// Lower case on the wire, as S3 sends them: clients show the
		// names as they arrive.
		hd["x-amz-meta-"+k] = []string{encodeMetaValue(v)}
	}
	q.setSSE(obj.Encryption)
	if whole && strings.EqualFold(q.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		setChecksum(hd, obj.Checksums)
	}
	// response-* query parameters override what the object says.
	for _, o := range [...]struct{ param, header string }{
		{"response-content-type", "Content-Type"},
		{"response-content-language", "Content-Language"},
		{"response-expires", "Expires"},
		{"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"},
		{"response-content-encoding", "Content-Encoding"},
	} {
		if v := q.query.Get(o.param); v != "" {
			hd[o.header] = []string{v}
		}
	}
}

// setSSE sets the encryption headers of an encrypted object (design rule 5).
func (q *request) setSSE(enc *cryptostore.Encryption) {
	if enc == nil {
		return
	}
	hd := q.w.Header()
	hd["X-Amz-Server-Side-Encryption"] = []string{cryptostore.Algorithm}
	hd["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] = []string{q.h.store.KeyARN(enc.KeyID)}
}

// setChecksum sets x-amz-checksum-<alg> and x-amz-checksum-type for the
// object's primary checksum (see primaryChecksum).
func setChecksum(hd http.Header, sums []cryptostore.Checksum) {
	c, ok := primaryChecksum(sums)
	if !ok {
		return
	}
	alg, ok := sigv4.ParseChecksumAlgorithm(c.Algorithm)
	if !ok {
		return
	}
	hd[http.CanonicalHeaderKey(alg.Header())] = []string{c.Value}
	hd["X-Amz-Checksum-Type"] = []string{checksumType(c)}
}

// quote returns an ETag as HTTP sends it.
func quote(etag string) string { return `"` + etag + `"` }

// unquote strips the quotes (and a weak marker) from a client-given ETag.
func unquote(etag string) string {
	etag = strings.TrimSpace(etag)
	etag = strings.TrimPrefix(etag, "W/")
	if len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"' {
		etag = etag[1 : len(etag)-1]
	}
	return etag
}

// etagMatches reports whether list (an If-Match / If-None-Match value: "*"
// or comma-separated ETags) names etag.
func etagMatches(list, etag string) bool {
	for v := range strings.SplitSeq(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || (v != "" && unquote(v) == etag) {
			return true
		}
	}
	return false
}

// conditionHeaders names the four conditional headers of a request, plain
// (GetObject, HeadObject) or for a copy source.
type conditionHeaders struct {
	ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince string
	// notModified is the error for a failed If-None-Match or
	// If-Modified-Since: 304 for reads, 412 for copy sources.
	notModified *s3err.Error
}

var (
	readConditions = conditionHeaders{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", s3err.ErrNotModified}
	copyConditions = conditionHeaders{
		"X-Amz-Copy-Source-If-Match", "X-Amz-Copy-Source-If-None-Match",
		"X-Amz-Copy-Source-If-Modified-Since", "X-Amz-Copy-Source-If-Unmodified-Since",
		s3err.ErrPreconditionFailed,
	}
)

// checkConditions evaluates conditional headers against an object, the way
// S3 (and RFC 9110 §13.2.2) orders them: If-Match, else If-Unmodified-Since;
// then If-None-Match, else If-Modified-Since. Dates compare at one-second
// resolution; an unparsable date is ignored.
func checkConditions(hd http.Header, c conditionHeaders, etag string, modified time.Time) error {
	mod := modified.Truncate(time.Second)
	if v := hd.Get(c.ifMatch); v != "" {
		if !etagMatches(v, etag) {
			return s3err.ErrPreconditionFailed
		}
	} else if v := hd.Get(c.ifUnmodifiedSince); v != "" {
		if t, err := http.ParseTime(v); err == nil && mod.After(t) {
			return s3err.ErrPreconditionFailed
		}
	}
	if v := hd.Get(c.ifNoneMatch); v != "" {
		if etagMatches(v, etag) {
			return c.notModified
		}
	} else if v := hd.Get(c.ifModifiedSince); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mod.After(t) {
			return c.notModified
		}
	}
	return nil
}

// putCondition builds the store condition of a conditional write
// (If-None-Match: * or If-Match on PutObject, CopyObject and
// CompleteMultipartUpload).
func putCondition(hd http.Header) func(*cryptostore.Object) error {
	match, noneMatch := hd.Get("If-Match"), hd.Get("If-None-Match")
	if match == "" && noneMatch == "" {
		return nil
	}
	return func(cur *cryptostore.Object) error {
		if match != "" {
			if cur == nil {
				return s3err.ErrNoSuchKey
			}
			if !etagMatches(match, cur.ETag) {
				return s3err.ErrPreconditionFailed
			}
		}
		if noneMatch != "" && cur != nil && etagMatches(noneMatch, cur.ETag) {
			return s3err.ErrPreconditionFailed
		}
		return nil
	}
}

// checkKMSKeyHeader refuses a request naming a KMS key other than the
// bucket's own: sealfs encrypts with the bucket's key or not at all (design
// rules 1 and 4). Naming no key, or the bucket's, changes nothing.
func (q *request) checkKMSKeyHeader(bucket string) error {
	want := q.r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	if want == "" {
		return nil
	}
	b, err := q.h.store.GetBucket(q.ctx, bucket)
	if err != nil {
		return err
	}
	if b.MasterKeyID != "" && (want == b.MasterKeyID || want == q.h.store.KeyARN(b.MasterKeyID)) {
		return nil
	}
	return errOnlyServiceKey
}

var errOnlyServiceKey = s3err.ErrInvalidArgument.WithMessage("sealfs supports only SSE-KMS with its service-managed key: an encrypting bucket uses its own KMS key, which cannot be chosen.")
