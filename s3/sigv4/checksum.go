package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"hash/crc32"
	"strings"

	"github.com/minio/crc64nvme"
)

// ChecksumAlgorithm names one of S3's additional checksums. Values travel
// base64-encoded in x-amz-checksum-<algorithm> headers and trailers; CRCs
// are big-endian.
type ChecksumAlgorithm string

// The checksum algorithms S3 supports.
const (
	CRC32     ChecksumAlgorithm = "CRC32"
	CRC32C    ChecksumAlgorithm = "CRC32C"
	CRC64NVME ChecksumAlgorithm = "CRC64NVME"
	SHA1      ChecksumAlgorithm = "SHA1"
	SHA256    ChecksumAlgorithm = "SHA256"
)

// ChecksumAlgorithms returns every supported algorithm.
func ChecksumAlgorithms() []ChecksumAlgorithm {
	return []ChecksumAlgorithm{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}
}

// ParseChecksumAlgorithm maps a name as it appears in
// x-amz-sdk-checksum-algorithm or x-amz-checksum-algorithm (any case) to an
// algorithm.
func ParseChecksumAlgorithm(s string) (ChecksumAlgorithm, bool) {
	a := ChecksumAlgorithm(strings.ToUpper(strings.TrimSpace(s)))
	switch a {
	case CRC32, CRC32C, CRC64NVME, SHA1, SHA256:
		return a, true
	}
	return "", false
}

// Header returns the header (and trailer) name carrying the checksum,
// lower case: x-amz-checksum-crc32 and so on.
func (a ChecksumAlgorithm) Header() string {
	return "x-amz-checksum-" + strings.ToLower(string(a))
}

// Size returns the length in bytes of the raw checksum.
func (a ChecksumAlgorithm) Size() int {
	switch a {
	case CRC32, CRC32C:
		return 4
	case CRC64NVME:
		return 8
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	}
	return 0
}

// New returns a hash computing the checksum; Sum gives the raw big-endian
// bytes.
func (a ChecksumAlgorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// algorithmFromHeader maps x-amz-checksum-<alg> (any case) to its algorithm.
func algorithmFromHeader(name string) (ChecksumAlgorithm, bool) {
	const prefix = "x-amz-checksum-"
	if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return "", false
	}
	return ParseChecksumAlgorithm(name[len(prefix):])
}
