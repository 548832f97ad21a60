package meta

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// ValidBucketName checks name against S3's bucket naming rules: 3 to 63
// characters; lower-case letters, digits, dots and hyphens; starting and
// ending with a letter or digit; no two adjacent dots; not shaped like an IP
// address; none of the prefixes and suffixes S3 reserves ("xn--", "sthree-",
// "amzn-s3-demo-", "-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3").
// The error wraps ErrInvalidBucketName.
func ValidBucketName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidBucketName, name, why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad(fmt.Sprintf("want 3 to 63 characters, have %d", len(name)))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '.' || c == '-':
			if i == 0 || i == len(name)-1 {
				return bad("want a letter or digit at both ends")
			}
		default:
			return bad("want only lower-case letters, digits, dots and hyphens")
		}
	}
	if strings.Contains(name, "..") {
		return bad("want no two adjacent dots")
	}
	if looksLikeIPv4(name) {
		return bad("want a name, have an IP address")
	}
	for _, p := range [...]string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad(fmt.Sprintf("prefix %q is reserved", p))
		}
	}
	for _, s := range [...]string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad(fmt.Sprintf("suffix %q is reserved", s))
		}
	}
	return nil
}

// looksLikeIPv4 reports whether s is four dot-separated runs of digits.
func looksLikeIPv4(s string) bool {
	groups := strings.Split(s, ".")
	if len(groups) != 4 {
		return false
	}
	for _, g := range groups {
		if g == "" {
			return false
		}
		for i := 0; i < len(g); i++ {
			if g[i] < '0' || g[i] > '9' {
				return false
			}
		}
	}
	return true
}

// ValidKey checks an object key: not empty, at most MaxKeyLen bytes, valid
// UTF-8, no NUL byte. The error wraps ErrInvalidKey.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: want a non-empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: want at most %d bytes, have %d", ErrInvalidKey, MaxKeyLen, len(key))
	case !utf8.ValidString(key):
		return fmt.Errorf("%w %q: want valid UTF-8", ErrInvalidKey, key)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w %q: want no NUL byte", ErrInvalidKey, key)
	}
	return nil
}

// maxUploadIDLen bounds upload ids accepted from clients.
const maxUploadIDLen = 256

// validUploadID reports whether id can be part of a key.
func validUploadID(id string) bool {
	return id != "" && len(id) <= maxUploadIDLen && strings.IndexByte(id, 0) < 0
}

// NewUploadID returns a fresh multipart upload id: 32 lower-case hex digits,
// the creation time in nanoseconds (big endian) then 8 random bytes, so ids
// are URL-safe, unique, and sort by creation time (ids made within the same
// nanosecond sort at random).
func NewUploadID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	if _, err := rand.Read(b[8:]); err != nil {
		panic(fmt.Sprintf("meta: reading random upload id: %v", err))
	}
	return hex.EncodeToString(b[:])
}
