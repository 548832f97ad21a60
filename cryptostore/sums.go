package cryptostore

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"strings"

	"github.com/minio/crc64nvme"

	"github.com/sealfs/sealfs/meta"
)

// Checksum algorithms, as S3 names them.
const (
	CRC32     = "CRC32"
	CRC32C    = "CRC32C"
	CRC64NVME = "CRC64NVME"
	SHA1      = "SHA1"
	SHA256    = "SHA256"
)

// DefaultChecksum is computed for every object, whether asked for or not
// (S3 does the same for new objects).
const DefaultChecksum = CRC64NVME

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newChecksum(alg string) (hash.Hash, error) {
	switch strings.ToUpper(alg) {
	case CRC32:
		return crc32.NewIEEE(), nil
	case CRC32C:
		return crc32.New(castagnoli), nil
	case CRC64NVME:
		return crc64nvme.New(), nil
	case SHA1:
		return sha1.New(), nil
	case SHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("unknown checksum algorithm %q", alg)
}

// Sums are what a write computed over the plaintext, in the same pass as it
// sealed and wrote it.
type Sums struct {
	Size int64
	// MD5 is the plaintext's MD5, or nil where it was not computed. It is
	// computed for data stored plain (a plain object's ETag is its MD5)
	// and, for data stored encrypted, only when the writer asked for it
	// (PutInput.MD5, PartInput.MD5: to check a client's Content-MD5). It
	// is never stored for an encrypted object.
	MD5 []byte
	// Checksums holds raw digests by algorithm (upper case).
	Checksums map[string][]byte
}

// Base64 returns a checksum as S3 transmits it, or "" if not computed.
func (s *Sums) Base64(alg string) string {
	d, ok := s.Checksums[strings.ToUpper(alg)]
	if !ok {
		return ""
	}
	return base64.StdEncoding.EncodeToString(d)
}

// list returns the checksums as records, sorted by algorithm.
func (s *Sums) list() []meta.Checksum {
	out := make([]meta.Checksum, 0, len(s.Checksums))
	for alg := range s.Checksums {
		out = append(out, meta.Checksum{Algorithm: alg, Value: s.Base64(alg)})
	}
	slices.SortFunc(out, func(a, b meta.Checksum) int { return strings.Compare(a.Algorithm, b.Algorithm) })
	return out
}

// ETags.
//
// A plain object's ETag is S3's: the hex MD5 of its data, or for an object
// assembled from N parts, the hex MD5 of the parts' binary MD5s followed by
// "-N".
//
// An encrypted object's ETag must reveal nothing about its plaintext (an
// MD5 would confirm a guessed content; S3 says the same of SSE-KMS objects:
// their ETags are not an MD5 of their data). It is 16 random bytes in hex,
// chosen when the version is committed and stored in its record, so it is
// stable for that version and serves If-Match and If-None-Match like any
// other; it is followed by "-N", N the number of parts, and by "-1" for an
// object written in one piece.
//
// Why "-1" for one piece: clients compare an ETag that looks like an MD5
// (32 hex digits, no "-") with the MD5 of what they sent or received.
// rclone does so unless its own configuration says the bucket uses SSE-KMS:
// with a bare random ETag it reports "corrupted on transfer" and deletes
// the object it uploaded (integration/s3_cli_test.go showed it). s3cmd
// skips the check for an ETag with a "-" or a response with the SSE-KMS
// header. Every client that checks takes the "-" form for "not an MD5 of
// the data", so encrypted objects read and write cleanly without extra
// configuration. A part's ETag in an encrypting upload is 16 random bytes
// in hex alone (S3's part form; the UploadPart response carries the SSE-KMS
// header), and CompleteMultipartUpload compares it as given.
//
// What no ETag form can satisfy: a client that recomputes a multipart
// ETag as the MD5 of its parts' MD5s and refuses a different one (rclone
// with providers AWS, Minio, ... unless told server_side_encryption =
// aws:kms; s3fs with enable_content_md5 unless given use_sse=kmsid). They
// need the same setting against AWS's own SSE-KMS buckets.

// etagRandomBytes is the length of the random part of an encrypted ETag.
const etagRandomBytes = 16

// md5ETag is the ETag of a plain object written in one piece.
func md5ETag(sum []byte) string { return hex.EncodeToString(sum) }

// multipartETag is the ETag of a plain object assembled from parts with
// these MD5s.
func multipartETag(partMD5s [][]byte) string {
	h := md5.New()
	for _, p := range partMD5s {
		h.Write(p)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(partMD5s))
}

// randomETag returns random hex for an encrypted version (parts ≥ 1: its
// number of parts, 1 for one piece) or, with parts = 0, for a part.
func randomETag(parts int) string {
	var b [etagRandomBytes]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	if parts == 0 {
		return hex.EncodeToString(b[:])
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(b[:]), parts)
}

// hasher computes the requested checksums, and the MD5 if asked for, in
// one pass.
type hasher struct {
	size int64
	md5  hash.Hash // nil: not computed
	algs []string
	hs   []hash.Hash
	also io.Writer // if set, sees every byte too
}

// newHasher returns a hasher of DefaultChecksum and algs, without MD5
// (withMD5 adds it).
func newHasher(algs []string) (*hasher, error) {
	h := &hasher{}
	want := append([]string{DefaultChecksum}, algs...)
	for _, a := range want {
		a = strings.ToUpper(a)
		if slices.Contains(h.algs, a) {
			continue
		}
		c, err := newChecksum(a)
		if err != nil {
			return nil, err
		}
		h.algs = append(h.algs, a)
		h.hs = append(h.hs, c)
	}
	return h, nil
}

// withMD5 makes h compute the MD5 too.
func (h *hasher) withMD5() {
	if h.md5 == nil {
		h.md5 = md5.New()
	}
}

func (h *hasher) Write(p []byte) (int, error) {
	h.size += int64(len(p))
	if h.md5 != nil {
		h.md5.Write(p)
	}
	for _, c := range h.hs {
		c.Write(p)
	}
	if h.also != nil {
		h.also.Write(p)
	}
	return len(p), nil
}

// active reports whether h computes anything (a restage's hasher may not).
func (h *hasher) active() bool { return h.md5 != nil || len(h.hs) > 0 || h.also != nil }

func (h *hasher) sums() Sums {
	s := Sums{Size: h.size}
	if h.md5 != nil {
		s.MD5 = h.md5.Sum(nil)
	}
	if len(h.hs) > 0 {
		s.Checksums = make(map[string][]byte, len(h.hs))
		for i, c := range h.hs {
			s.Checksums[h.algs[i]] = c.Sum(nil)
		}
	}
	return s
}

// partMD5s computes the MD5 of each part of data streamed through it whole,
// the parts' sizes given: what a plain object assembled from the parts of
// an encrypting upload needs for its ETag when it is rewritten plain.
type partMD5s struct {
	sizes []int64
	sums  [][]byte
	cur   hash.Hash
	left  int64
}

func newPartMD5s(sizes []int64) *partMD5s {
	return &partMD5s{sizes: sizes}
}

func (p *partMD5s) Write(b []byte) (int, error) {
	n := len(b)
	for {
		for p.cur == nil || p.left == 0 {
			if p.cur != nil {
				p.sums = append(p.sums, p.cur.Sum(nil))
				p.cur = nil
			}
			if len(p.sums) == len(p.sizes) {
				return n, nil // more data than parts: done() reports it
			}
			p.cur, p.left = md5.New(), p.sizes[len(p.sums)]
		}
		if len(b) == 0 {
			return n, nil
		}
		k := min(int64(len(b)), p.left)
		p.cur.Write(b[:k])
		p.left -= k
		b = b[k:]
	}
}

// done returns one MD5 per part, or nil if the data did not match the
// sizes.
func (p *partMD5s) done() [][]byte {
	p.Write(nil) // closes a last part that ended exactly, and empty parts
	if len(p.sums) != len(p.sizes) {
		return nil
	}
	return p.sums
}
