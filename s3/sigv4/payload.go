package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/s3/s3err"
)

// BodyOption configures Auth.Body.
type BodyOption func(*bodyConfig)

type bodyConfig struct {
	md5       bool
	checksums []ChecksumAlgorithm
}

// WithMD5 asks for the MD5 of the decoded payload (Payload.MD5), for an
// ETag. Without it MD5 is computed only to check a Content-MD5 header.
func WithMD5() BodyOption {
	return func(c *bodyConfig) { c.md5 = true }
}

// WithChecksums asks for checksums of the decoded payload in addition to
// those the client sent (Payload.Checksums).
func WithChecksums(algs ...ChecksumAlgorithm) BodyOption {
	return func(c *bodyConfig) { c.checksums = append(c.checksums, algs...) }
}

// Payload is the decoded request payload. It verifies as it streams: see the
// package documentation for the rule that nothing read may be committed
// before Read returns io.EOF.
type Payload struct {
	src  io.ReadCloser
	r    io.Reader // src, or the aws-chunked decoder over it
	cr   *chunkReader
	mode PayloadMode

	n       int64 // decoded bytes so far
	wantLen int64 // declared decoded length, -1 if unknown

	hashers []hash.Hash // every hash fed with decoded bytes, each once
	sums    map[ChecksumAlgorithm]hash.Hash
	report  []ChecksumAlgorithm // algorithms Checksums reports
	md5     hash.Hash
	sha     hash.Hash // whole-payload SHA-256 for PayloadSHA256

	wantSHA     [sha256.Size]byte
	wantMD5     []byte
	clientAlg   ChecksumAlgorithm
	clientValue string // base64, from a header (known up front)
	trailerAlg  ChecksumAlgorithm
	reportMD5   bool

	err       error // sticky; io.EOF once verified
	checksums map[ChecksumAlgorithm]string
	md5Sum    []byte
}

// Body returns the decoded payload of r, verifying it against everything
// the request declares about it (see the package documentation). It fails at
// once, before reading, on malformed declarations: a Content-MD5 that is not
// a base64 MD5 (InvalidDigest), a bad or duplicated x-amz-checksum-* value,
// an unknown x-amz-sdk-checksum-algorithm or x-amz-trailer (InvalidRequest,
// as AWS answers a checksum value that is not base64 of the algorithm's
// size), an x-amz-sdk-checksum-algorithm naming another algorithm than the
// x-amz-checksum-* header sent (BadDigest, as AWS documents), a bad
// x-amz-decoded-content-length (InvalidArgument). A well-formed checksum,
// header or trailer, that does not match the body is BadDigest.
//
// A nil *Auth (an anonymous request a handler chose to allow) reads the
// payload as UNSIGNED-PAYLOAD, or per an x-amz-content-sha256 digest or
// STREAMING-UNSIGNED-PAYLOAD-TRAILER header; signed streaming needs an Auth.
func (a *Auth) Body(r *http.Request, opts ...BodyOption) (*Payload, error) {
	var cfg bodyConfig
	for _, o := range opts {
		o(&cfg)
	}
	src := r.Body
	if src == nil {
		src = http.NoBody
	}
	mode, payloadHash := PayloadUnsigned, UnsignedPayload
	if a != nil {
		mode, payloadHash = a.Payload, a.PayloadHash
	} else if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		m, ok := parsePayloadHash(h)
		if !ok || m.chunkSigned() {
			return nil, s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 is not valid for an unsigned request.")
		}
		mode, payloadHash = m, h
	}
	p := &Payload{
		src:     src,
		r:       src,
		mode:    mode,
		wantLen: -1,
		sums:    make(map[ChecksumAlgorithm]hash.Hash),
	}

	// Declared length.
	if mode.Chunked() {
		if s := r.Header.Get("X-Amz-Decoded-Content-Length"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return nil, s3err.ErrInvalidArgument.WithMessage("x-amz-decoded-content-length is not a valid length.")
			}
			p.wantLen = n
		}
	} else if r.ContentLength >= 0 {
		p.wantLen = r.ContentLength
	}

	// Digests the request declares.
	if mode == PayloadSHA256 {
		if _, err := hex.Decode(p.wantSHA[:], []byte(payloadHash)); err != nil {
			return nil, s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 is not a valid sha256 value.")
		}
		p.sha = p.hashFor(SHA256)
	}
	if vals := r.Header.Values("Content-Md5"); len(vals) > 0 {
		sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(vals[0]))
		if len(vals) > 1 || err != nil || len(sum) != md5.Size {
			return nil, s3err.ErrInvalidDigest
		}
		p.wantMD5 = sum
	}
	if err := p.declareChecksums(r, mode); err != nil {
		return nil, err
	}
	if cfg.md5 || p.wantMD5 != nil {
		p.md5 = md5.New()
		p.hashers = append(p.hashers, p.md5)
		p.reportMD5 = cfg.md5 || p.wantMD5 != nil
	}
	for _, alg := range cfg.checksums {
		if alg.New() == nil {
			return nil, fmt.Errorf("sigv4: unknown checksum algorithm %q", alg)
		}
		p.hashFor(alg)
		p.addReport(alg)
	}

	if mode.Chunked() {
		var signer *chunkSigner
		if mode.chunkSigned() {
			if a == nil {
				return nil, s3err.ErrInvalidArgument.WithMessage("signed streaming payloads need a signed request.")
			}
			signer = newChunkSigner(a.key, a.amzDate, a.scope, a.seed)
		}
		p.cr = newChunkReader(src, mode, signer, p.wantLen)
		p.r = p.cr
	}
	return p, nil
}

// declareChecksums reads x-amz-checksum-*, x-amz-sdk-checksum-algorithm
// and x-amz-trailer.
func (p *Payload) declareChecksums(r *http.Request, mode PayloadMode) error {
	for name, vals := range r.Header {
		alg, ok := algorithmFromHeader(name)
		if !ok {
			continue
		}
		if p.clientAlg != "" || len(vals) != 1 {
			return s3err.ErrInvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if !validChecksumValue(alg, vals[0]) {
			return s3err.ErrInvalidRequest.WithMessage("Value for " + alg.Header() + " header is invalid.")
		}
		p.clientAlg, p.clientValue = alg, strings.TrimSpace(vals[0])
	}
	if tr := r.Header.Values("X-Amz-Trailer"); len(tr) > 0 {
		if !mode.Trailer() {
			return s3err.ErrInvalidRequest.WithMessage("x-amz-trailer is only valid with a STREAMING-...-TRAILER x-amz-content-sha256.")
		}
		for _, v := range tr {
			for name := range strings.SplitSeq(v, ",") {
				name = strings.TrimSpace(name)
				if name == "" {
					continue
				}
				alg, ok := algorithmFromHeader(name)
				if !ok {
					return s3err.ErrInvalidRequest.WithMessage("The value specified in the x-amz-trailer header is not supported.")
				}
				if p.clientAlg != "" {
					return s3err.ErrInvalidRequest.WithMessage("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
				}
				p.clientAlg, p.trailerAlg = alg, alg
			}
		}
	}
	// x-amz-sdk-checksum-algorithm names the algorithm of the checksum
	// the SDK sends; minio-go sends x-amz-checksum-algorithm with no value
	// to have the server compute one. Either way it is computed.
	for _, h := range []string{"X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Algorithm"} {
		s := r.Header.Get(h)
		if s == "" {
			continue
		}
		alg, ok := ParseChecksumAlgorithm(s)
		if !ok {
			return s3err.ErrInvalidRequest.WithMessage("Value for " + strings.ToLower(h) + " header is invalid.")
		}
		if p.clientAlg != "" && p.clientAlg != alg {
			// AWS: "If the individual checksum value you provide through
			// x-amz-checksum-algorithm doesn't match the checksum
			// algorithm you set through x-amz-sdk-checksum-algorithm,
			// Amazon S3 fails the request with a BadDigest error."
			return s3err.ErrBadDigest.WithMessage("The " + strings.ToLower(p.clientAlg.Header()) + " checksum does not match the algorithm " + string(alg) + " named in " + strings.ToLower(h) + ".")
		}
		p.hashFor(alg)
		p.addReport(alg)
	}
	if p.clientAlg != "" {
		p.hashFor(p.clientAlg)
		p.addReport(p.clientAlg)
	}
	return nil
}

// hashFor returns the hash computing alg, creating it once.
func (p *Payload) hashFor(alg ChecksumAlgorithm) hash.Hash {
	if h, ok := p.sums[alg]; ok {
		return h
	}
	h := alg.New()
	p.sums[alg] = h
	p.hashers = append(p.hashers, h)
	return h
}

func (p *Payload) addReport(alg ChecksumAlgorithm) {
	for _, a := range p.report {
		if a == alg {
			return
		}
	}
	p.report = append(p.report, alg)
}

func validChecksumValue(alg ChecksumAlgorithm, v string) bool {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	return err == nil && len(raw) == alg.Size()
}

// Read reads decoded payload bytes. It returns io.EOF only after every
// check has passed; a failed check is returned instead, and sticks.
func (p *Payload) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	if n > 0 {
		for _, h := range p.hashers {
			h.Write(b[:n])
		}
		p.n += int64(n)
		if p.cr == nil && p.wantLen >= 0 && p.n > p.wantLen {
			p.err = s3err.ErrIncompleteBody.WithMessage("The request body is longer than its Content-Length.")
			return n, nil
		}
	}
	switch {
	case err == io.EOF:
		p.err = p.finish()
	case err != nil:
		if p.cr == nil {
			err = bodyReadError(err)
		}
		p.err = err
	}
	if n > 0 {
		// Any verdict reaches the caller on the next call, before io.EOF.
		return n, nil
	}
	return 0, p.err
}

// finish runs the end-of-payload checks and records the results.
func (p *Payload) finish() error {
	if p.wantLen >= 0 && p.n != p.wantLen {
		if p.cr != nil {
			return s3err.ErrIncompleteBody.WithMessage("The decoded body length does not match x-amz-decoded-content-length.")
		}
		return s3err.ErrIncompleteBody
	}
	if p.sha != nil {
		var got [sha256.Size]byte
		p.sha.Sum(got[:0])
		if got != p.wantSHA {
			return s3err.ErrXAmzContentSHA256Mismatch
		}
	}
	if p.md5 != nil {
		p.md5Sum = p.md5.Sum(nil)
		if p.wantMD5 != nil && !bytes.Equal(p.md5Sum, p.wantMD5) {
			return s3err.ErrBadDigest
		}
	}
	values := make(map[ChecksumAlgorithm]string, len(p.sums))
	for alg, h := range p.sums {
		values[alg] = base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	if p.clientAlg != "" {
		want := p.clientValue
		if p.trailerAlg != "" {
			v, err := p.trailerValue(p.trailerAlg)
			if err != nil {
				return err
			}
			want = v
		}
		if !checksumEqual(p.clientAlg, want, values[p.clientAlg]) {
			return s3err.ErrBadDigest.WithMessage("The " + string(p.clientAlg) + " you specified did not match the calculated checksum.")
		}
	}
	// Trailing checksums the request did not declare cannot have been
	// computed: refuse rather than store an unverified value.
	if p.cr != nil {
		for _, t := range p.cr.trailers {
			if alg, ok := algorithmFromHeader(t.name); ok && alg != p.trailerAlg {
				return s3err.ErrInvalidRequest.WithMessage("The trailer " + t.name + " was not declared in x-amz-trailer.")
			}
		}
	}
	p.checksums = make(map[ChecksumAlgorithm]string, len(p.report))
	for _, alg := range p.report {
		p.checksums[alg] = values[alg]
	}
	if !p.reportMD5 {
		p.md5Sum = nil
	}
	return io.EOF
}

// trailerValue returns the value of the trailing checksum for alg.
func (p *Payload) trailerValue(alg ChecksumAlgorithm) (string, error) {
	name := alg.Header()
	var found []string
	for _, t := range p.cr.trailers {
		if t.name == name {
			found = append(found, t.value)
		}
	}
	switch {
	case len(found) == 0:
		return "", s3err.ErrIncompleteBody.WithMessage("The trailer " + name + " declared in x-amz-trailer was not sent.")
	case len(found) > 1 || !validChecksumValue(alg, found[0]):
		return "", s3err.ErrInvalidRequest.WithMessage("Value for " + name + " trailing header is invalid.")
	}
	return found[0], nil
}

// checksumEqual compares two base64 checksums by their decoded bytes.
func checksumEqual(alg ChecksumAlgorithm, a, b string) bool {
	ra, err1 := base64.StdEncoding.DecodeString(strings.TrimSpace(a))
	rb, err2 := base64.StdEncoding.DecodeString(strings.TrimSpace(b))
	return err1 == nil && err2 == nil && len(ra) == alg.Size() && bytes.Equal(ra, rb)
}

// Close closes the request body.
func (p *Payload) Close() error { return p.src.Close() }

// Mode returns the payload mode the body is read in.
func (p *Payload) Mode() PayloadMode { return p.mode }

// ExpectedSize returns the decoded size the request declares
// (x-amz-decoded-content-length for aws-chunked bodies, Content-Length
// otherwise), or -1 if it declares none (a Transfer-Encoding: chunked body
// without x-amz-decoded-content-length).
func (p *Payload) ExpectedSize() int64 { return p.wantLen }

// Size returns the number of decoded bytes read so far.
func (p *Payload) Size() int64 { return p.n }

// Verified reports whether the payload has been read to its end and every
// check passed.
func (p *Payload) Verified() bool { return p.err == io.EOF }

// Checksums returns, once Verified, the base64 checksums of the decoded
// payload: the one the client sent (header or trailer), the one named by
// x-amz-sdk-checksum-algorithm or x-amz-checksum-algorithm, and those asked
// for with WithChecksums.
// Before that it returns nil.
func (p *Payload) Checksums() map[ChecksumAlgorithm]string {
	if !p.Verified() {
		return nil
	}
	out := make(map[ChecksumAlgorithm]string, len(p.checksums))
	for k, v := range p.checksums {
		out[k] = v
	}
	return out
}

// ClientChecksum returns the algorithm of the checksum the client sent, as
// a header or a trailer, and its base64 value once Verified (empty before).
// It returns "" when the client sent none.
func (p *Payload) ClientChecksum() (ChecksumAlgorithm, string) {
	if p.clientAlg == "" {
		return "", ""
	}
	if !p.Verified() {
		return p.clientAlg, ""
	}
	return p.clientAlg, p.checksums[p.clientAlg]
}

// MD5 returns, once Verified, the MD5 of the decoded payload if it was
// asked for with WithMD5 or computed to check Content-MD5; nil otherwise.
func (p *Payload) MD5() []byte {
	if !p.Verified() || p.md5Sum == nil {
		return nil
	}
	return bytes.Clone(p.md5Sum)
}

// StripAWSChunked removes the aws-chunked coding from a Content-Encoding
// value, leaving what the object itself is encoded with ("aws-chunked,gzip"
// gives "gzip"; "aws-chunked" gives ""). What is left is byte-exact, as S3
// stores and returns it: "deflate, gzip" stays "deflate, gzip", and a value
// without aws-chunked is returned as it is.
func StripAWSChunked(contentEncoding string) string {
	var kept []string
	found := false
	for v := range strings.SplitSeq(contentEncoding, ",") {
		if strings.EqualFold(strings.TrimSpace(v), "aws-chunked") {
			found = true
			continue
		}
		kept = append(kept, v)
	}
	if !found {
		return contentEncoding
	}
	return strings.TrimSpace(strings.Join(kept, ","))
}
