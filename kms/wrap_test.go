package kms

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// The associated data binds the header: the same material cannot open a
// wrapping whose header was rewritten, even where the material is shared.
func TestWrapBindsHeader(t *testing.T) {
	material := make([]byte, 32)
	rand.Read(material)
	aead, err := newGCM(material)
	if err != nil {
		t.Fatal(err)
	}
	encCtx := appendContext(nil, Context{"bucket": "b", "object": "o"})
	pt := []byte("0123456789abcdef0123456789abcdef")
	ct, err := wrap(aead, "key-a", 1, encCtx, pt)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseWrapped(ct)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unwrap(aead, ct, h, encCtx); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap = %v", err)
	}
	tests := []struct {
		name   string
		offset int
		value  byte
	}{
		{name: "key id", offset: 2 + len("key-") /* a -> b */, value: 'b'},
		{name: "version", offset: 2 + len("key-a") + 3, value: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forged := bytes.Clone(ct)
			forged[tc.offset] = tc.value
			h, err := parseWrapped(forged)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := unwrap(aead, forged, h, encCtx); !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("header %s rewritten, same material: %v, want ErrInvalidCiphertext", tc.name, err)
			}
		})
	}
}

func TestParseWrappedRejects(t *testing.T) {
	valid := append([]byte{1, 1, 'k', 0, 0, 0, 1}, make([]byte, nonceSize+tagSize)...)
	if _, err := parseWrapped(valid); err != nil {
		t.Fatalf("minimal wrapping: %v", err)
	}
	tests := []struct {
		name string
		ct   []byte
	}{
		{name: "empty", ct: nil},
		{name: "format 2", ct: append([]byte{2}, valid[1:]...)},
		{name: "empty key id", ct: append([]byte{1, 0}, valid[2:]...)},
		{name: "version 0", ct: append([]byte{1, 1, 'k', 0, 0, 0, 0}, valid[7:]...)},
		{name: "no tag", ct: valid[:len(valid)-1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseWrapped(tc.ct); !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("parseWrapped: %v, want ErrInvalidCiphertext", err)
			}
		})
	}
}
