package cryptostore

import (
	"github.com/minio/crc64nvme"
)

// CRC-64/NVME algebra: a composed version's full-object checksum
// (compose.go) is derived from its base's checksum and the bytes that
// changed, without reading the bytes that did not, and a hole's checksum
// costs O(log size). The arithmetic is that of zlib's crc32_combine, over
// CRC-64/NVME's reflected polynomial: polynomials mod P over GF(2), bit 63
// holding x^0.

// crcNVMEPoly is CRC-64/NVME's polynomial, reflected.
const crcNVMEPoly = crc64nvme.NVME

// crcMulMod returns a·b mod P.
func crcMulMod(a, b uint64) uint64 {
	var p uint64
	for m := uint64(1) << 63; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcNVMEPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// crcXPow8n returns x^(8n) mod P: what appending n bytes does to a CRC
// register.
func crcXPow8n(n int64) uint64 {
	p := uint64(1) << 63  // x^0
	sq := uint64(1) << 55 // x^8
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = crcMulMod(sq, p)
		}
		sq = crcMulMod(sq, sq)
	}
	return p
}

// crcShift returns the raw CRC (zero initial value, no final xor) of
// X followed by n zero bytes, given X's raw CRC r.
func crcShift(r uint64, n int64) uint64 {
	if n == 0 || r == 0 {
		return r
	}
	return crcMulMod(crcXPow8n(n), r)
}

// crcZeros returns CRC-64/NVME of n zero bytes.
func crcZeros(n int64) uint64 { return crcShift(^uint64(0), n) ^ ^uint64(0) }

// crcCombine returns CRC-64/NVME of A followed by B, given crcA, crcB and
// B's length.
func crcCombine(crcA, crcB uint64, lenB int64) uint64 { return crcShift(crcA, lenB) ^ crcB }

// crcRaw returns the raw CRC of X (zero initial value, no final xor) from
// its CRC-64/NVME and length; the raw CRC is linear: raw(X⊕Y) =
// raw(X)⊕raw(Y) for X, Y of one length.
func crcRaw(crc uint64, n int64) uint64 { return crc ^ crcZeros(n) }
