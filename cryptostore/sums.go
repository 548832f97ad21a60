package cryptostore

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
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
	MD5  [md5.Size]byte
	// Checksums holds raw digests by algorithm (upper case).
	Checksums map[string][]byte
}

// ETag is the S3 ETag of a single-part object: the hex MD5, unquoted.
func (s *Sums) ETag() string { return hex.EncodeToString(s.MD5[:]) }

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

// hasher computes MD5 and the requested checksums in one pass.
type hasher struct {
	size int64
	md5  hash.Hash
	algs []string
	hs   []hash.Hash
}

func newHasher(algs []string) (*hasher, error) {
	h := &hasher{md5: md5.New()}
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

func (h *hasher) Write(p []byte) (int, error) {
	h.size += int64(len(p))
	h.md5.Write(p)
	for _, c := range h.hs {
		c.Write(p)
	}
	return len(p), nil
}

func (h *hasher) sums() Sums {
	s := Sums{Size: h.size, Checksums: make(map[string][]byte, len(h.hs))}
	if h.md5 == nil {
		return s // a rewrite of data whose sums are known
	}
	h.md5.Sum(s.MD5[:0])
	for i, c := range h.hs {
		s.Checksums[h.algs[i]] = c.Sum(nil)
	}
	return s
}
