package kms

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sealfs/sealfs/internal/localkms"
)

// TestReWrap: a data key wrapped by version 1 comes back wrapped by the
// current version, the same data key under the same context; a current one
// is left as it is; the context and the key's state are checked as Decrypt
// checks them.
func TestReWrap(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	c := objectContext("b", "0000000000000007")
	dek := generate(t, k, id, c)
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	rw, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: id, Ciphertext: dek.Ciphertext, Context: c})
	if err != nil {
		t.Fatal(err)
	}
	if !rw.Changed || rw.Version != 3 || rw.KeyID != id || bytes.Equal(rw.Ciphertext, dek.Ciphertext) {
		t.Fatalf("ReWrap: %+v", rw)
	}
	mustDecrypt(t, k, id, DEK{Ciphertext: rw.Ciphertext, Plaintext: dek.Plaintext}, c)
	again, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: id, Ciphertext: rw.Ciphertext, Context: c})
	if err != nil || again.Changed || !bytes.Equal(again.Ciphertext, rw.Ciphertext) || again.Version != 3 {
		t.Fatalf("ReWrap of a current wrap: %+v, %v", again, err)
	}
	if _, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: id, Ciphertext: dek.Ciphertext, Context: objectContext("b", "0000000000000008")}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("ReWrap under another context: %v, want ErrInvalidCiphertext", err)
	}
	other := newKey(t, k)
	if _, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: other, Ciphertext: dek.Ciphertext, Context: c}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("ReWrap naming another key: %v, want ErrInvalidCiphertext", err)
	}
	if err := k.DisableKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: id, Ciphertext: dek.Ciphertext, Context: c}); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("ReWrap under a disabled key: %v, want ErrKeyDisabled", err)
	}
}

// TestAWSReWrap: ReEncrypt in the service gives a new wrapping of the same
// data key under the same context.
func TestAWSReWrap(t *testing.T) {
	srv := localkms.Start(t)
	k, err := OpenAWS(srv.URL(), AWSOptions{Credentials: credentials.NewStaticCredentialsProvider("t", "t", "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := k.CreateKey(ctx, &CreateKeyRequest{Alias: "rw"})
	if err != nil {
		t.Fatal(err)
	}
	c := objectContext("rw", "1")
	dek, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c})
	if err != nil || !rw.Changed || rw.KeyID != md.KeyID {
		t.Fatalf("ReWrap: %+v, %v", rw, err)
	}
	pt, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: rw.Ciphertext, Context: c})
	if err != nil || !bytes.Equal(pt, dek.Plaintext) {
		t.Fatalf("Decrypt of the new wrapping: %v", err)
	}
	if _, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: objectContext("rw", "2")}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("ReWrap under another context: %v, want ErrInvalidCiphertext", err)
	}
}

// TestRetireVersion: a retired version unwraps nothing any more, cached
// data keys included, and stays retired when the keyring is opened again;
// the current version cannot be retired; later versions keep working.
func TestRetireVersion(t *testing.T) {
	ctx := context.Background()
	dir, root := t.TempDir(), randomRoot(t)
	k, err := OpenLocal(dir, root, LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := newKey(t, k)
	c := objectContext("b", "1")
	old := generate(t, k, id, c)
	mustDecrypt(t, k, id, old, c) // cached now
	if _, err := k.RetireVersion(ctx, &RetireVersionRequest{KeyID: id, Version: 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("retiring the current version: %v, want ErrInvalidArgument", err)
	}
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	cur := generate(t, k, id, c)
	md, err := k.RetireVersion(ctx, &RetireVersionRequest{KeyID: id, Version: 1})
	if err != nil || len(md.RetiredVersions) != 1 || md.RetiredVersions[0] != 1 || md.CurrentVersion != 2 {
		t.Fatalf("RetireVersion: %+v, %v", md, err)
	}
	if _, err := decrypt(k, id, old, c); !errors.Is(err, ErrVersionRetired) || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Decrypt under a retired version: %v, want ErrVersionRetired", err)
	}
	if _, err := k.ReWrap(ctx, &ReWrapRequest{KeyID: id, Ciphertext: old.Ciphertext, Context: c}); !errors.Is(err, ErrVersionRetired) {
		t.Fatalf("ReWrap from a retired version: %v, want ErrVersionRetired", err)
	}
	mustDecrypt(t, k, id, cur, c)
	if _, err := k.RetireVersion(ctx, &RetireVersionRequest{KeyID: id, Version: 1}); err != nil {
		t.Fatalf("retiring it again: %v", err)
	}
	k.Close()

	k = openTest(t, dir, root, LocalOptions{})
	if _, err := decrypt(k, id, old, c); !errors.Is(err, ErrVersionRetired) {
		t.Fatalf("after reopening: %v, want ErrVersionRetired", err)
	}
	mustDecrypt(t, k, id, cur, c)
	if md := describe(t, k, id); len(md.RetiredVersions) != 1 {
		t.Fatalf("after reopening: %+v", md)
	}
	ring, err := os.ReadFile(filepath.Join(dir, keyringName))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(ring, []byte(`"sealed":""`)) + bytes.Count(ring, []byte(`"sealed":null`)); n != 1 {
		t.Fatalf("the keyring keeps material of the retired version:\n%s", ring)
	}
}
