package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
)

// Wrapped key format, version 1.
//
// GenerateDataKey and Encrypt return this; Decrypt takes it. All integers are
// big-endian.
//
//	offset   size  field
//	0        1     format version, 1
//	1        1     n, length of the master key id (1..255)
//	2        n     master key id (bare id, not the ARN)
//	2+n      4     master key version (>= 1) that wrapped it
//	6+n      12    nonce, random per wrap
//	18+n     L+16  AES-256-GCM ciphertext of the L-byte plaintext, then the tag
//
// The GCM key is the 32-byte material of that master key version. The
// associated data is
//
//	"sealfs kms wrap v1" || bytes [0, 6+n) of the wrapped key || context(ctx)
//
// where context(ctx) is the canonical encoding of the encryption context:
//
//	u32 number of pairs
//	for each pair, names in ascending byte order:
//	    u32 len(name) || name || u32 len(value) || value
//
// So the key id, the version and every context pair are authenticated: a
// wrapped key presented with another context (another bucket or object), or
// rewritten to name another key or version, fails to open. A wrapped data key
// (L = 32) with a UUID key id is 18 + 36 + 32 + 16 = 102 bytes.
const (
	wrapFormatV1   = 1
	wrapDomain     = "sealfs kms wrap v1"
	nonceSize      = 12
	tagSize        = 16
	maxKeyIDLen    = 255
	dataKeySize    = 32
	maxSecretSize  = 4096
	wrapFixedBytes = 2 + 4 + nonceSize // format, id length, version, nonce
)

// wrapHeader is the parsed clear part of a wrapped key.
type wrapHeader struct {
	keyID   string
	version uint32
	n       int // bytes [0, n) are the header covered by the associated data
}

// appendContext appends the canonical encoding of c to b.
func appendContext(b []byte, c Context) []byte {
	var small [4]string // sealfs uses two pairs: no allocation for names
	names := small[:0]
	size := 4
	for name, value := range c {
		names = append(names, name)
		size += 8 + len(name) + len(value)
	}
	slices.Sort(names)
	b = slices.Grow(b, size)
	b = binary.BigEndian.AppendUint32(b, uint32(len(names)))
	for _, name := range names {
		b = appendLengthPrefixed(b, name)
		b = appendLengthPrefixed(b, c[name])
	}
	return b
}

func appendLengthPrefixed(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// wrapAD returns the associated data for a wrapped key with the given header
// bytes and encoded context.
func wrapAD(header, encCtx []byte) []byte {
	ad := make([]byte, 0, len(wrapDomain)+len(header)+len(encCtx))
	ad = append(ad, wrapDomain...)
	ad = append(ad, header...)
	return append(ad, encCtx...)
}

// wrap seals plaintext under aead, the material of keyID's version.
func wrap(aead cipher.AEAD, keyID string, version uint32, encCtx, plaintext []byte) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > maxKeyIDLen {
		return nil, fmt.Errorf("kms: key id length %d out of range", len(keyID))
	}
	out := make([]byte, 0, wrapFixedBytes+len(keyID)+len(plaintext)+tagSize)
	out = append(out, wrapFormatV1, byte(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint32(out, version)
	header := out
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("kms: reading nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, wrapAD(header, encCtx)), nil
}

// parseWrapped reads the clear header of a wrapped key. Errors wrap
// ErrInvalidCiphertext.
func parseWrapped(ct []byte) (wrapHeader, error) {
	if len(ct) < 2 {
		return wrapHeader{}, fmt.Errorf("%w: %d bytes is too short", ErrInvalidCiphertext, len(ct))
	}
	if ct[0] != wrapFormatV1 {
		return wrapHeader{}, fmt.Errorf("%w: unknown format version %d", ErrInvalidCiphertext, ct[0])
	}
	n := int(ct[1])
	if n == 0 {
		return wrapHeader{}, fmt.Errorf("%w: empty key id", ErrInvalidCiphertext)
	}
	if len(ct) < wrapFixedBytes+n+tagSize {
		return wrapHeader{}, fmt.Errorf("%w: %d bytes is too short", ErrInvalidCiphertext, len(ct))
	}
	version := binary.BigEndian.Uint32(ct[2+n:])
	if version == 0 {
		return wrapHeader{}, fmt.Errorf("%w: version 0", ErrInvalidCiphertext)
	}
	return wrapHeader{keyID: string(ct[2 : 2+n]), version: version, n: 2 + n + 4}, nil
}

// unwrap opens a wrapped key whose header h was parsed from ct.
func unwrap(aead cipher.AEAD, ct []byte, h wrapHeader, encCtx []byte) ([]byte, error) {
	nonce := ct[h.n : h.n+nonceSize]
	pt, err := aead.Open(nil, nonce, ct[h.n+nonceSize:], wrapAD(ct[:h.n], encCtx))
	if err != nil {
		return nil, fmt.Errorf("%w: key %s version %d", ErrInvalidCiphertext, h.keyID, h.version)
	}
	return pt, nil
}

// newGCM returns AES-256-GCM keyed with key (32 bytes).
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("kms: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return aead, nil
}
