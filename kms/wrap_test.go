package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func testVersion(t *testing.T) *keyVersion {
	t.Helper()
	material := make([]byte, 32)
	rand.Read(material)
	v, err := newKeyVersion(material, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The associated data binds the header: the same material cannot open a
// wrapping whose header was rewritten, even where the material is shared.
func TestWrapBindsHeader(t *testing.T) {
	v := testVersion(t)
	encCtx := appendContext(nil, Context{"bucket": "b", "object": "o"})
	pt := []byte("0123456789abcdef0123456789abcdef")
	ct, err := wrap(v.material, "key-a", 1, encCtx, pt)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseWrapped(ct)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := unwrap(v, ct, h, encCtx); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap = %v", err)
	}
	tests := []struct {
		name   string
		offset int
		value  byte
	}{
		{name: "key id", offset: 2 + len("key-") /* a -> b */, value: 'b'},
		{name: "version", offset: 2 + len("key-a") + 3, value: 2},
		{name: "salt", offset: 2 + len("key-a") + 4 + 7, value: ct[2+len("key-a")+4+7] ^ 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forged := bytes.Clone(ct)
			forged[tc.offset] = tc.value
			h, err := parseWrapped(forged)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := unwrap(v, forged, h, encCtx); !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("header %s rewritten, same material: %v, want ErrInvalidCiphertext", tc.name, err)
			}
		})
	}
}

// specUnwrapV2 opens a format 2 wrapped key as the comment in wrap.go
// describes it, independently of the code under test.
func specUnwrapV2(t *testing.T, material, ct []byte, c Context) []byte {
	t.Helper()
	if ct[0] != 2 {
		t.Fatalf("wrapped key has format %d, want 2", ct[0])
	}
	n := int(ct[1])
	header := ct[:6+n]
	salt := ct[6+n : 38+n]
	key, err := hkdf.Key(sha256.New, material, salt, "sealfs kms wrap v2"+string(header), 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	ad := append([]byte("sealfs kms wrap v2"), ct[:38+n]...)
	ad = append(ad, appendContext(nil, c)...)
	pt, err := aead.Open(nil, make([]byte, 12), ct[38+n:], ad)
	if err != nil {
		t.Fatalf("spec unwrap: %v", err)
	}
	return pt
}

// Every wrap has a key of its own (item 9 of issue 9): GenerateDataKey and
// Encrypt write format 2, whose per-wrap key is HKDF of the master material
// and a fresh salt; no wrap is sealed under the master material itself.
func TestWrapPerWrapKey(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{CacheSize: -1})
	id := newKey(t, k)
	c := objectContext("b", "0011")
	material := k.keys[id].versions[0].material
	salts := map[string]bool{}
	for range 64 {
		d := generate(t, k, id, c)
		if got := specUnwrapV2(t, material, d.Ciphertext, c); !bytes.Equal(got, d.Plaintext) {
			t.Fatal("spec unwrap: wrong plaintext")
		}
		n := int(d.Ciphertext[1])
		salts[string(d.Ciphertext[6+n:38+n])] = true
		if len(d.Ciphertext) != 122 {
			t.Errorf("wrapped data key is %d bytes, want 122", len(d.Ciphertext))
		}
		// Not openable as a format 1 wrap under the material directly.
		forged := bytes.Clone(d.Ciphertext)
		forged[0] = 1
		if _, err := k.Decrypt(ctx, &DecryptRequest{Ciphertext: forged, Context: c}); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("format byte rewritten to 1: %v, want ErrInvalidCiphertext", err)
		}
	}
	if len(salts) != 64 {
		t.Errorf("%d distinct salts in 64 wraps", len(salts))
	}
	secret := []byte("a secret")
	ct, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: secret, Context: c})
	if err != nil {
		t.Fatal(err)
	}
	if got := specUnwrapV2(t, material, ct, c); !bytes.Equal(got, secret) {
		t.Fatal("spec unwrap of a secret: wrong plaintext")
	}
	if _, err := k.Decrypt(ctx, &DecryptRequest{Ciphertext: ct, Context: objectContext("b", "0012")}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("another context: %v, want ErrInvalidCiphertext", err)
	}
}

func TestParseWrappedRejects(t *testing.T) {
	validV1 := append([]byte{1, 1, 'k', 0, 0, 0, 1}, make([]byte, nonceSize+tagSize)...)
	validV2 := append([]byte{2, 1, 'k', 0, 0, 0, 1}, make([]byte, wrapSaltSize+tagSize)...)
	for _, valid := range [][]byte{validV1, validV2} {
		if _, err := parseWrapped(valid); err != nil {
			t.Fatalf("minimal wrapping: %v", err)
		}
	}
	tests := []struct {
		name string
		ct   []byte
	}{
		{name: "empty", ct: nil},
		{name: "format 3", ct: append([]byte{3}, validV2[1:]...)},
		{name: "format 0", ct: append([]byte{0}, validV2[1:]...)},
		{name: "empty key id", ct: append([]byte{1, 0}, validV1[2:]...)},
		{name: "version 0", ct: append([]byte{2, 1, 'k', 0, 0, 0, 0}, validV2[7:]...)},
		{name: "v1 no tag", ct: validV1[:len(validV1)-1]},
		{name: "v2 no tag", ct: validV2[:len(validV2)-1]},
		{name: "v2 short salt", ct: append([]byte{2}, validV1[1:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseWrapped(tc.ct); !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("parseWrapped: %v, want ErrInvalidCiphertext", err)
			}
		})
	}
}

type goldenVectors struct {
	RootKey  string `json:"root_key"`
	Disabled string `json:"disabled"`
	Vectors  []struct {
		KeyID      string            `json:"key_id"`
		Version    uint32            `json:"version"`
		Context    map[string]string `json:"context"`
		Plaintext  string            `json:"plaintext"`
		Ciphertext string            `json:"ciphertext"`
	} `json:"vectors"`
}

// openGolden copies the first release's keyring to a temporary directory.
func openGolden(t *testing.T) (dir string, root []byte, g goldenVectors) {
	t.Helper()
	js, err := os.ReadFile("testdata/golden-v1/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &g); err != nil {
		t.Fatal(err)
	}
	root, _ = hex.DecodeString(g.RootKey)
	data, err := os.ReadFile("testdata/golden-v1/keyring")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keyringName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, root, g
}

// The keyring and the wrapped keys written by the first release still work:
// the keyring is migrated to format 2 on open, every format 1 wrapped key
// still unwraps, and new wraps are format 2.
func TestGoldenV1(t *testing.T) {
	ctx := context.Background()
	dir, root, g := openGolden(t)
	orig, _ := os.ReadFile(filepath.Join(dir, keyringName))
	if !bytes.Contains(orig, []byte(`"format":1`)) {
		t.Fatal("golden keyring is not format 1")
	}
	for round := range 2 { // migrated on the first open, format 2 on the second
		k, err := OpenLocal(dir, root, LocalOptions{CacheSize: -1})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		mds, err := k.ListKeys(ctx)
		if err != nil || len(mds) != 2 {
			t.Fatalf("ListKeys = %d keys, %v", len(mds), err)
		}
		for _, v := range g.Vectors {
			ct, _ := hex.DecodeString(v.Ciphertext)
			want, _ := hex.DecodeString(v.Plaintext)
			if ct[0] != 1 {
				t.Fatalf("golden vector has format %d", ct[0])
			}
			_, err := k.Decrypt(ctx, &DecryptRequest{KeyID: v.KeyID, Ciphertext: ct, Context: v.Context})
			if v.KeyID == g.Disabled {
				if !errors.Is(err, ErrKeyDisabled) {
					t.Fatalf("disabled golden key: %v, want ErrKeyDisabled", err)
				}
				if err := k.EnableKey(ctx, &KeyRequest{KeyID: v.KeyID}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := k.Decrypt(ctx, &DecryptRequest{KeyID: v.KeyID, Ciphertext: ct, Context: v.Context})
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("golden vector (key %s version %d): %v", v.KeyID, v.Version, err)
			}
			other := map[string]string{"bucket": "golden", "object": "ffeeddccbbaa99887766554433221100"}
			if _, err := k.Decrypt(ctx, &DecryptRequest{Ciphertext: ct, Context: other}); !errors.Is(err, ErrInvalidCiphertext) {
				t.Fatalf("golden vector under another context: %v", err)
			}
			d, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: v.KeyID, Context: v.Context})
			if err != nil || d.Ciphertext[0] != 2 {
				t.Fatalf("new wrap under a golden key: %v", err)
			}
			if err := k.DisableKey(ctx, &KeyRequest{KeyID: g.Disabled}); err != nil {
				t.Fatal(err)
			}
		}
		k.Close()
		data, _ := os.ReadFile(filepath.Join(dir, keyringName))
		if !bytes.Contains(data, []byte(`"format":2`)) {
			t.Fatalf("after open %d the keyring is not format 2", round)
		}
		assertNotSealedByRoot(t, data, root)
	}
	// A wrong root key is still told apart from damage after migration.
	if _, err := OpenLocal(dir, randomRoot(t), LocalOptions{}); !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("wrong root key: %v, want ErrRootKeyMismatch", err)
	}
}

// assertNotSealedByRoot checks a format 2 keyring as keyring.go documents
// it: the check value and every version open under the HKDF-derived sealing
// key, and nothing opens under the root key used directly.
func assertNotSealedByRoot(t *testing.T, data, root []byte) {
	t.Helper()
	var env keyringEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	var body keyringBody
	if err := json.Unmarshal(env.Keyring, &body); err != nil {
		t.Fatal(err)
	}
	direct, _ := newGCM(root)
	sealKey, _ := hkdf.Key(sha256.New, root, nil, "sealfs kms keyring seal v2", 32)
	derived, _ := newGCM(sealKey)
	open := func(aead cipher.AEAD, sealed, ad []byte) error {
		_, err := aead.Open(nil, sealed[:12], sealed[12:], ad)
		return err
	}
	if open(derived, body.Check, []byte("sealfs kms root check v2")) != nil {
		t.Error("check value does not open under the derived sealing key")
	}
	if open(direct, body.Check, []byte("sealfs kms root check v1")) == nil || open(direct, body.Check, []byte("sealfs kms root check v2")) == nil {
		t.Error("check value opens under the root key used directly")
	}
	macKey, _ := hkdf.Key(sha256.New, root, nil, "sealfs kms keyring mac v2", 32)
	if got := (&keyringScheme{macKey: macKey, macDomain: "sealfs kms keyring v2"}).mac(env.Keyring); hex.EncodeToString(got) != env.MAC {
		t.Error("mac is not HMAC-SHA256 under the v2 mac key")
	}
	for _, r := range body.Keys {
		for _, v := range r.Versions {
			ad := binary.BigEndian.AppendUint32(append(append([]byte("sealfs kms master v2"), byte(len(r.ID))), r.ID...), v.Version)
			if open(derived, v.Sealed, ad) != nil {
				t.Errorf("key %s version %d does not open under the derived sealing key", r.ID, v.Version)
			}
			adV1 := slices.Concat([]byte("sealfs kms master v1"), ad[len("sealfs kms master v2"):])
			if open(direct, v.Sealed, adV1) == nil {
				t.Errorf("key %s version %d opens under the root key used directly", r.ID, v.Version)
			}
		}
	}
}

// A new keyring never uses the root key directly as a cipher key.
func TestKeyringDerivesFromRoot(t *testing.T) {
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{})
	id := newKey(t, k)
	if _, err := k.RotateKey(context.Background(), &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, keyringName))
	if err != nil {
		t.Fatal(err)
	}
	assertNotSealedByRoot(t, data, root)
}

// A golden keyring whose MAC fails is refused, not migrated.
func TestGoldenV1TamperedNotMigrated(t *testing.T) {
	dir, root, _ := openGolden(t)
	path := filepath.Join(dir, keyringName)
	orig, _ := os.ReadFile(path)
	edited := bytes.Replace(orig, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
	if bytes.Equal(edited, orig) {
		t.Fatal("test setup: state not found")
	}
	os.WriteFile(path, edited, 0o600)
	if _, err := OpenLocal(dir, root, LocalOptions{}); !errors.Is(err, errKeyringIntegrity) {
		t.Fatalf("edited format 1 keyring: %v, want an integrity error", err)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, edited) {
		t.Fatal("a keyring that failed verification was rewritten")
	}
}
