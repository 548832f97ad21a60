package kms

import (
	"bytes"
	"context"
	"errors"
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
