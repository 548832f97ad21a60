package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// Wrapped key format, version 2.
//
// GenerateDataKey and Encrypt return this; Decrypt takes it. All integers are
// big-endian.
//
//	offset   size  field
//	0        1     format version, 2
//	1        1     n, length of the master key id (1..255)
//	2        n     master key id (bare id, not the ARN)
//	2+n      4     master key version (>= 1) that wrapped it
//	6+n      32    salt, random per wrap (crypto/rand)
//	38+n     L+16  AES-256-GCM ciphertext of the L-byte plaintext, then the tag
//
// Every wrap has a key of its own, derived as blobs derive theirs:
//
//	wrap key = HKDF-SHA256(secret = the 32-byte material of that master key
//	                                version,
//	                       salt   = the wrap's salt,
//	                       info   = "sealfs kms wrap v2" || bytes [0, 6+n),
//	                       length = 32)
//
// It seals exactly one message, so the nonce is fixed: 12 zero bytes. The
// associated data is
//
//	"sealfs kms wrap v2" || bytes [0, 38+n) of the wrapped key || context(ctx)
//
// where context(ctx) is the canonical encoding of the encryption context:
//
//	u32 number of pairs
//	for each pair, names in ascending byte order:
//	    u32 len(name) || name || u32 len(value) || value
//
// So the key id, the version, the salt and every context pair are
// authenticated: a wrapped key presented with another context (another
// bucket or object), or rewritten to name another key or version, fails to
// open. A wrapped data key (L = 32) with a UUID key id is 6 + 36 + 32 + 32 +
// 16 = 122 bytes.
//
// Why a key per wrap: version 1 sealed every wrap directly under the master
// key version with a random 96-bit nonce, and nothing counted the wraps. GCM
// with random nonces is safe for about 2^32 messages per key; a busy bucket
// writes that many objects. With a fresh 256-bit salt per wrap, two wraps
// share a key only if their salts collide, which does not happen in practice,
// and one master key version can wrap without a budget.
//
// Version 1 (the first release) is still unwrapped, never written:
//
//	0 version 1 · 1 n · 2 key id · 2+n u32 master key version ·
//	6+n 12-byte random nonce · 18+n AES-256-GCM ciphertext || tag
//
// with the master key version's material as the GCM key and associated data
// "sealfs kms wrap v1" || bytes [0, 6+n) || context(ctx).
const (
	wrapFormatV1   = 1
	wrapFormatV2   = 2
	wrapDomainV1   = "sealfs kms wrap v1"
	wrapDomainV2   = "sealfs kms wrap v2"
	nonceSize      = 12
	wrapSaltSize   = 32
	tagSize        = 16
	maxKeyIDLen    = 255
	dataKeySize    = 32
	maxSecretSize  = 4096
	wrapFixedBytes = 2 + 4 // format, id length, version
)

// wrapHeader is the parsed clear part of a wrapped key.
type wrapHeader struct {
	format  byte
	keyID   string
	version uint32
	n       int // bytes [0, n) are the format, key id and version
	body    int // where the sealed part (v1: the nonce; v2: the ciphertext) starts
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

// wrapAD returns the associated data for a wrapped key with the given
// domain, header bytes and encoded context.
func wrapAD(domain string, header, encCtx []byte) []byte {
	ad := make([]byte, 0, len(domain)+len(header)+len(encCtx))
	ad = append(ad, domain...)
	ad = append(ad, header...)
	return append(ad, encCtx...)
}

// zeroNonce is the nonce of every version 2 wrap: each wrap key seals once.
var zeroNonce [nonceSize]byte

// wrapKey derives the AES-256-GCM key of one version 2 wrap.
func wrapKey(material, salt, header []byte) (cipher.AEAD, error) {
	info := make([]byte, 0, len(wrapDomainV2)+len(header))
	info = append(append(info, wrapDomainV2...), header...)
	key, err := hkdf.Key(sha256.New, material, salt, string(info), 32)
	if err != nil {
		return nil, fmt.Errorf("kms: deriving wrap key: %w", err)
	}
	aead, err := newGCM(key)
	clear(key)
	return aead, err
}

// wrap seals plaintext under a key derived from material, the material of
// keyID's version, in format version 2.
func wrap(material []byte, keyID string, version uint32, encCtx, plaintext []byte) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > maxKeyIDLen {
		return nil, fmt.Errorf("kms: key id length %d out of range", len(keyID))
	}
	out := make([]byte, 0, wrapFixedBytes+len(keyID)+wrapSaltSize+len(plaintext)+tagSize)
	out = append(out, wrapFormatV2, byte(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint32(out, version)
	header := out
	out = out[:len(out)+wrapSaltSize]
	salt := out[len(header):]
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("kms: reading salt: %w", err)
	}
	aead, err := wrapKey(material, salt, header)
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, zeroNonce[:], plaintext, wrapAD(wrapDomainV2, out, encCtx)), nil
}

// parseWrapped reads the clear header of a wrapped key. Errors wrap
// ErrInvalidCiphertext.
func parseWrapped(ct []byte) (wrapHeader, error) {
	if len(ct) < 2 {
		return wrapHeader{}, fmt.Errorf("%w: %d bytes is too short", ErrInvalidCiphertext, len(ct))
	}
	var sealedPrefix int // bytes between the header and the ciphertext
	switch ct[0] {
	case wrapFormatV1:
		sealedPrefix = nonceSize
	case wrapFormatV2:
		sealedPrefix = wrapSaltSize
	default:
		return wrapHeader{}, fmt.Errorf("%w: unknown format version %d", ErrInvalidCiphertext, ct[0])
	}
	n := int(ct[1])
	if n == 0 {
		return wrapHeader{}, fmt.Errorf("%w: empty key id", ErrInvalidCiphertext)
	}
	if len(ct) < wrapFixedBytes+n+sealedPrefix+tagSize {
		return wrapHeader{}, fmt.Errorf("%w: %d bytes is too short", ErrInvalidCiphertext, len(ct))
	}
	version := binary.BigEndian.Uint32(ct[2+n:])
	if version == 0 {
		return wrapHeader{}, fmt.Errorf("%w: version 0", ErrInvalidCiphertext)
	}
	return wrapHeader{format: ct[0], keyID: string(ct[2 : 2+n]), version: version, n: 2 + n + 4, body: 2 + n + 4 + sealedPrefix}, nil
}

// unwrap opens a wrapped key whose header h was parsed from ct, with v, the
// master key version h names.
func unwrap(v *keyVersion, ct []byte, h wrapHeader, encCtx []byte) ([]byte, error) {
	var pt []byte
	var err error
	switch h.format {
	case wrapFormatV1:
		pt, err = v.aead.Open(nil, ct[h.n:h.body], ct[h.body:], wrapAD(wrapDomainV1, ct[:h.n], encCtx))
	default:
		var aead cipher.AEAD
		if aead, err = wrapKey(v.material, ct[h.n:h.body], ct[:h.n]); err != nil {
			return nil, err
		}
		pt, err = aead.Open(nil, zeroNonce[:], ct[h.body:], wrapAD(wrapDomainV2, ct[:h.body], encCtx))
	}
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
