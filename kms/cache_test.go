package kms

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

func TestCacheServesSecondDecrypt(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	c := objectContext("b", "o")
	dek := generate(t, k, id, c)
	if n := k.unwraps.Load(); n != 0 {
		t.Fatalf("unwraps before any Decrypt = %d", n)
	}
	first, err := decrypt(k, id, dek, c)
	if err != nil {
		t.Fatal(err)
	}
	if n := k.unwraps.Load(); n != 1 {
		t.Fatalf("unwraps after the first Decrypt = %d, want 1", n)
	}
	// The caller owns what it gets: scribbling on it, cached or not, must
	// not reach the cache.
	clear(first)
	for i := range 2 {
		got, err := decrypt(k, id, dek, c)
		if err != nil {
			t.Fatal(err)
		}
		if n := k.unwraps.Load(); n != 1 {
			t.Fatalf("unwraps after Decrypt %d = %d, want 1 (served from the cache)", i+2, n)
		}
		if !bytes.Equal(got, dek.Plaintext) {
			t.Fatal("cached Decrypt returned another key (the cached slice was handed out?)")
		}
		clear(got)
	}
	// Same ciphertext, other context: not a hit, and fails.
	if _, err := decrypt(k, id, dek, objectContext("b", "other")); err == nil {
		t.Fatal("cache hit across contexts")
	}
	// Secrets from Encrypt are not cached.
	secret, err := k.Encrypt(context.Background(), &EncryptRequest{KeyID: id, Plaintext: []byte("secret"), Context: c})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := k.Decrypt(context.Background(), &DecryptRequest{KeyID: id, Ciphertext: secret, Context: c}); err != nil {
			t.Fatal(err)
		}
	}
	if n := k.unwraps.Load(); n != 3 {
		t.Fatalf("unwraps after two secret Decrypts = %d, want 3", n)
	}
}

func TestCacheBoundedLRU(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{CacheSize: 2})
	id := newKey(t, k)
	var deks []DEK
	var ctxs []Context
	for i := range 3 {
		c := objectContext("b", fmt.Sprint(i))
		ctxs = append(ctxs, c)
		deks = append(deks, generate(t, k, id, c))
	}
	step := func(i int, wantUnwraps uint64) {
		t.Helper()
		mustDecrypt(t, k, id, deks[i], ctxs[i])
		if n := k.unwraps.Load(); n != wantUnwraps {
			t.Fatalf("after Decrypt of %d: unwraps = %d, want %d", i, n, wantUnwraps)
		}
	}
	step(0, 1)
	step(1, 2)
	step(0, 2) // hit; 1 is now least recently used
	step(2, 3) // evicts 1
	step(0, 3)
	step(2, 3)
	step(1, 4)
	if n := k.cache.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{CacheSize: -1})
	id := newKey(t, k)
	c := objectContext("b", "o")
	dek := generate(t, k, id, c)
	for i := range 3 {
		mustDecrypt(t, k, id, dek, c)
		if n := k.unwraps.Load(); n != uint64(i+1) {
			t.Fatalf("unwraps = %d, want %d with no cache", n, i+1)
		}
	}
	if k.cache != nil || k.cache.len() != 0 {
		t.Fatal("negative CacheSize still built a cache")
	}
}

func TestCacheKeyCoversContextEncoding(t *testing.T) {
	ct := []byte("ciphertext")
	tests := []struct {
		name string
		a, b Context
		same bool
	}{
		{name: "equal", a: Context{"a": "1", "b": "2"}, b: Context{"b": "2", "a": "1"}, same: true},
		{name: "nil and empty", a: nil, b: Context{}, same: true},
		{name: "boundary", a: Context{"ab": "c"}, b: Context{"a": "bc"}},
		{name: "value", a: Context{"a": "1"}, b: Context{"a": "2"}},
		{name: "empty value", a: Context{"a": ""}, b: Context{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka := makeCacheKey(ct, appendContext(nil, tc.a))
			kb := makeCacheKey(ct, appendContext(nil, tc.b))
			if (ka == kb) != tc.same {
				t.Fatalf("cache keys equal = %v, want %v", ka == kb, tc.same)
			}
		})
	}
	// The ciphertext is length-prefixed: moving bytes between it and the
	// context changes the key.
	encCtx := appendContext(nil, Context{"a": "1"})
	if makeCacheKey(ct, encCtx) == makeCacheKey(append(bytes.Clone(ct), encCtx[0]), encCtx[1:]) {
		t.Fatal("cache key ambiguous between ciphertext and context")
	}
}
