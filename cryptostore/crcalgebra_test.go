package cryptostore

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/minio/crc64nvme"
)

func TestCRCAlgebra(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 64, 1000, 70000} {
		z := make([]byte, n)
		if got, want := crcZeros(int64(n)), crc64nvme.Checksum(z); got != want {
			t.Fatalf("crcZeros(%d) = %x, want %x", n, got, want)
		}
	}
	for i := 0; i < 50; i++ {
		a := make([]byte, r.IntN(3000))
		b := make([]byte, r.IntN(3000))
		for j := range a {
			a[j] = byte(r.Uint32())
		}
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		ab := append(bytes.Clone(a), b...)
		if got, want := crcCombine(crc64nvme.Checksum(a), crc64nvme.Checksum(b), int64(len(b))), crc64nvme.Checksum(ab); got != want {
			t.Fatalf("combine: %x, want %x", got, want)
		}
		// Linearity: patch a range of ab and derive the new CRC.
		if len(ab) < 10 {
			continue
		}
		off := r.IntN(len(ab) - 5)
		patch := []byte{1, 2, 3, 4, 5}
		nb := bytes.Clone(ab)
		copy(nb[off:], patch)
		d := make([]byte, 5)
		for j := range d {
			d[j] = ab[off+j] ^ patch[j]
		}
		rawD := crcShift(crcRaw(crc64nvme.Checksum(d), 5), int64(len(ab)-off-5))
		if got, want := crc64nvme.Checksum(ab)^rawD, crc64nvme.Checksum(nb); got != want {
			t.Fatalf("delta: %x, want %x", got, want)
		}
	}
	// A hole of 4 GiB costs nothing.
	_ = crcZeros(4 << 30)
}
