package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for deletion windows.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func randomRoot(t testing.TB) []byte {
	t.Helper()
	root := make([]byte, RootKeySize)
	if _, err := rand.Read(root); err != nil {
		t.Fatal(err)
	}
	return root
}

// openTest opens a Local and closes it when the test ends.
func openTest(t testing.TB, dir string, root []byte, opts LocalOptions) *Local {
	t.Helper()
	k, err := OpenLocal(dir, root, opts)
	if err != nil {
		t.Fatalf("OpenLocal: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func newKey(t testing.TB, k *Local) string {
	t.Helper()
	md, err := k.CreateKey(context.Background(), &CreateKeyRequest{Description: "test key"})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return md.KeyID
}

func objectContext(bucket, object string) Context {
	return Context{"bucket": bucket, "object": object}
}

func generate(t testing.TB, k *Local, keyID string, c Context) DEK {
	t.Helper()
	dek, err := k.GenerateDataKey(context.Background(), &GenerateDataKeyRequest{KeyID: keyID, Context: c})
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	return dek
}

func decrypt(k *Local, keyID string, dek DEK, c Context) ([]byte, error) {
	return k.Decrypt(context.Background(), &DecryptRequest{KeyID: keyID, Ciphertext: dek.Ciphertext, Context: c})
}

func mustDecrypt(t testing.TB, k *Local, keyID string, dek DEK, c Context) {
	t.Helper()
	pt, err := decrypt(k, keyID, dek, c)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(pt, dek.Plaintext) {
		t.Fatal("Decrypt returned another data key")
	}
}

func describe(t testing.TB, k *Local, keyID string) *KeyMetadata {
	t.Helper()
	md, err := k.DescribeKey(context.Background(), &KeyRequest{KeyID: keyID})
	if err != nil {
		t.Fatalf("DescribeKey: %v", err)
	}
	return md
}

func TestGenerateDecryptRoundTrip(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	c := objectContext("photos", "0a1b2c")
	dek := generate(t, k, id, c)
	if dek.KeyID != id || dek.Version != 1 || len(dek.Plaintext) != 32 {
		t.Fatalf("DEK = {KeyID: %q, Version: %d, %d-byte plaintext}, want {%q, 1, 32}", dek.KeyID, dek.Version, len(dek.Plaintext), id)
	}
	if bytes.Contains(dek.Ciphertext, dek.Plaintext) {
		t.Fatal("ciphertext contains the plaintext data key")
	}
	// Empty KeyID accepts the key the ciphertext names; the ARN works too.
	for _, name := range []string{id, "", k.ARN(id)} {
		mustDecrypt(t, k, name, dek, c)
	}
	// The context's map order does not matter; nil and empty are the same.
	mustDecrypt(t, k, id, dek, Context{"object": "0a1b2c", "bucket": "photos"})
	empty := generate(t, k, id, nil)
	mustDecrypt(t, k, id, empty, Context{})
	if other := generate(t, k, id, c); bytes.Equal(other.Plaintext, dek.Plaintext) || bytes.Equal(other.Ciphertext, dek.Ciphertext) {
		t.Fatal("two GenerateDataKey calls returned the same key")
	}
}

func TestWrapFormat(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	dek := generate(t, k, id, objectContext("b", "o"))
	ct := dek.Ciphertext
	if len(ct) != 122 {
		t.Fatalf("wrapped data key is %d bytes, want 122", len(ct))
	}
	if ct[0] != 2 || int(ct[1]) != len(id) || string(ct[2:2+len(id)]) != id {
		t.Fatalf("header = % x, want format 2 and key id %s", ct[:2+len(id)], id)
	}
	if v := binary.BigEndian.Uint32(ct[2+len(id):]); v != 1 {
		t.Fatalf("version field = %d, want 1", v)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("key id %q is not a version 4 UUID", id)
	}
}

func TestDecryptContextMismatch(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	dek := generate(t, k, id, objectContext("photos", "object-1"))
	mustDecrypt(t, k, id, dek, objectContext("photos", "object-1")) // now cached
	tests := []struct {
		name string
		ctx  Context
	}{
		{name: "other object", ctx: objectContext("photos", "object-2")},
		{name: "other bucket", ctx: objectContext("videos", "object-1")},
		{name: "extra pair", ctx: Context{"bucket": "photos", "object": "object-1", "x": ""}},
		{name: "missing pair", ctx: Context{"bucket": "photos"}},
		{name: "nil", ctx: nil},
		{name: "name and value boundary moved", ctx: Context{"bucke": "tphotos", "object": "object-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := decrypt(k, id, dek, tc.ctx)
			if !errors.Is(err, ErrInvalidCiphertext) || pt != nil {
				t.Fatalf("Decrypt = %v, %v; want ErrInvalidCiphertext", pt, err)
			}
		})
	}
}

func TestDecryptWrongKey(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	a, b := newKey(t, k), newKey(t, k)
	c := objectContext("bucket", "obj")
	dek := generate(t, k, a, c)

	if _, err := decrypt(k, b, dek, c); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("A's data key presented as B: %v, want ErrInvalidCiphertext", err)
	}
	if _, err := decrypt(k, k.ARN(b), dek, c); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("A's data key presented as B's ARN: %v, want ErrInvalidCiphertext", err)
	}
	// Rewriting the header to name B does not make B's material open it.
	forged := DEK{Ciphertext: bytes.Clone(dek.Ciphertext)}
	copy(forged.Ciphertext[2:], b)
	if _, err := decrypt(k, b, forged, c); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("header rewritten to B: %v, want ErrInvalidCiphertext", err)
	}
	// Nor does naming another version of A.
	if _, err := k.RotateKey(context.Background(), &KeyRequest{KeyID: a}); err != nil {
		t.Fatal(err)
	}
	forged = DEK{Ciphertext: bytes.Clone(dek.Ciphertext)}
	binary.BigEndian.PutUint32(forged.Ciphertext[2+len(a):], 2)
	if _, err := decrypt(k, a, forged, c); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("version rewritten to 2: %v, want ErrInvalidCiphertext", err)
	}
	// A key from another keyring (another root key) does not open it either.
	k2 := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	if _, err := decrypt(k2, "", dek, c); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("data key from another keyring: %v, want ErrKeyNotFound", err)
	}
}

func TestDecryptEveryByteFlip(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	c := objectContext("bucket", "obj")
	dek := generate(t, k, id, c)
	mustDecrypt(t, k, id, dek, c) // cached: a flipped copy must not hit the cache
	for i := range dek.Ciphertext {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			flipped := DEK{Ciphertext: bytes.Clone(dek.Ciphertext)}
			flipped.Ciphertext[i] ^= mask
			if pt, err := decrypt(k, id, flipped, c); !errors.Is(err, ErrInvalidCiphertext) || pt != nil {
				t.Fatalf("byte %d ^ %#x with KeyID: Decrypt = %x, %v; want ErrInvalidCiphertext", i, mask, pt, err)
			}
			// Without KeyID a flip in the key id names a key that does
			// not exist; anything else is an invalid ciphertext.
			if pt, err := decrypt(k, "", flipped, c); err == nil || pt != nil {
				t.Fatalf("byte %d ^ %#x without KeyID: Decrypt succeeded", i, mask)
			}
		}
	}
	for n := range len(dek.Ciphertext) {
		if _, err := decrypt(k, id, DEK{Ciphertext: dek.Ciphertext[:n]}, c); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("truncated to %d bytes: %v, want ErrInvalidCiphertext", n, err)
		}
	}
	if _, err := decrypt(k, id, DEK{Ciphertext: append(bytes.Clone(dek.Ciphertext), 0)}, c); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("one byte appended: %v, want ErrInvalidCiphertext", err)
	}
	mustDecrypt(t, k, id, dek, c)
}

func TestDisableEnable(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id, other := newKey(t, k), newKey(t, k)
	c := objectContext("b", "o")
	dek := generate(t, k, id, c)
	otherDEK := generate(t, k, other, c)
	mustDecrypt(t, k, id, dek, c)
	mustDecrypt(t, k, id, dek, c) // served from the cache
	mustDecrypt(t, k, other, otherDEK, c)
	secret, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: []byte("s3cret"), Context: c})
	if err != nil {
		t.Fatal(err)
	}

	if err := k.DisableKey(ctx, &KeyRequest{KeyID: k.ARN(id)}); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, k, id).State; got != KeyDisabled {
		t.Fatalf("state = %s, want Disabled", got)
	}
	checkDisabled := func(err error, op string) {
		t.Helper()
		if !errors.Is(err, ErrKeyDisabled) || errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("%s on a disabled key: %v, want ErrKeyDisabled", op, err)
		}
	}
	pt, err := decrypt(k, id, dek, c)
	checkDisabled(err, "cached Decrypt")
	if pt != nil {
		t.Fatal("Decrypt on a disabled key returned bytes")
	}
	_, err = decrypt(k, "", dek, c)
	checkDisabled(err, "Decrypt without KeyID")
	_, err = k.Decrypt(ctx, &DecryptRequest{KeyID: id, Ciphertext: secret, Context: c})
	checkDisabled(err, "Decrypt of a secret")
	_, err = k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: id, Context: c})
	checkDisabled(err, "GenerateDataKey")
	_, err = k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: []byte("x"), Context: c})
	checkDisabled(err, "Encrypt")
	_, err = k.RotateKey(ctx, &KeyRequest{KeyID: id})
	checkDisabled(err, "RotateKey")
	if err := k.DisableKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatalf("disabling twice: %v", err)
	}
	// The other key is untouched, cache included.
	before := k.unwraps.Load()
	mustDecrypt(t, k, other, otherDEK, c)
	if k.unwraps.Load() != before {
		t.Fatal("disabling one key evicted another key's cached data keys")
	}

	if err := k.EnableKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	before = k.unwraps.Load()
	mustDecrypt(t, k, id, dek, c)
	if k.unwraps.Load() != before+1 {
		t.Fatal("the disabled key's cache entries survived DisableKey")
	}
	generate(t, k, id, c)
	got, err := k.Decrypt(ctx, &DecryptRequest{KeyID: id, Ciphertext: secret, Context: c})
	if err != nil || string(got) != "s3cret" {
		t.Fatalf("secret after enable = %q, %v", got, err)
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{})
	id := newKey(t, k)
	c := objectContext("b", "o")
	v1 := generate(t, k, id, c)
	md, err := k.RotateKey(ctx, &KeyRequest{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != 2 {
		t.Fatalf("CurrentVersion after rotate = %d, want 2", md.CurrentVersion)
	}
	v2 := generate(t, k, id, c)
	if v2.Version != 2 {
		t.Fatalf("new DEK version = %d, want 2", v2.Version)
	}
	if h, err := parseWrapped(v2.Ciphertext); err != nil || h.version != 2 {
		t.Fatalf("new ciphertext carries version %d (%v), want 2", h.version, err)
	}
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	v3 := generate(t, k, id, c)
	k.Close()

	k = openTest(t, dir, root, LocalOptions{})
	if got := describe(t, k, id).CurrentVersion; got != 3 {
		t.Fatalf("CurrentVersion after reopen = %d, want 3", got)
	}
	for _, dek := range []DEK{v1, v2, v3} {
		mustDecrypt(t, k, id, dek, c)
	}
	if v := k.keys[id].versions; bytes.Equal(v[0].material, v[1].material) || bytes.Equal(v[1].material, v[2].material) {
		t.Fatal("rotation reused key material")
	}
}

func TestScheduleDeletion(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	k := openTest(t, dir, randomRoot(t), LocalOptions{Now: clk.Now})
	id, keep := newKey(t, k), newKey(t, k)
	c := objectContext("b", "o")
	dek := generate(t, k, id, c)
	keepDEK := generate(t, k, keep, c)
	mustDecrypt(t, k, id, dek, c)

	md, err := k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: id, PendingDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(7 * 24 * time.Hour); md.State != KeyPendingDeletion || !md.DeletionDate.Equal(want) {
		t.Fatalf("after schedule: state %s, deletion %s; want PendingDeletion, %s", md.State, md.DeletionDate, want)
	}
	pending := func(err error, op string) {
		t.Helper()
		if !errors.Is(err, ErrKeyPendingDeletion) {
			t.Fatalf("%s on a key pending deletion: %v, want ErrKeyPendingDeletion", op, err)
		}
	}
	_, err = decrypt(k, id, dek, c)
	pending(err, "cached Decrypt")
	_, err = k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: id, Context: c})
	pending(err, "GenerateDataKey")
	_, err = k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: []byte("x")})
	pending(err, "Encrypt")
	pending(k.EnableKey(ctx, &KeyRequest{KeyID: id}), "EnableKey")
	pending(k.DisableKey(ctx, &KeyRequest{KeyID: id}), "DisableKey")
	_, err = k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: id})
	pending(err, "ScheduleKeyDeletion")

	if err := k.CancelKeyDeletion(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if md := describe(t, k, id); md.State != KeyDisabled || !md.DeletionDate.IsZero() {
		t.Fatalf("after cancel: state %s, deletion %s; want Disabled, none", md.State, md.DeletionDate)
	}
	if _, err := decrypt(k, id, dek, c); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("Decrypt after cancel: %v, want ErrKeyDisabled", err)
	}
	if err := k.CancelKeyDeletion(ctx, &KeyRequest{KeyID: id}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("cancel on a disabled key: %v, want ErrInvalidArgument", err)
	}

	// Scheduled again with the default window, from Disabled.
	md, err = k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: k.ARN(id)})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(30 * 24 * time.Hour); !md.DeletionDate.Equal(want) {
		t.Fatalf("default deletion date %s, want %s", md.DeletionDate, want)
	}
	versions := k.keys[id].versions
	sealed := versions[0].sealed
	clk.Advance(30*24*time.Hour - time.Second)
	if got := describe(t, k, id).State; got != KeyPendingDeletion {
		t.Fatalf("a second before the date: state %s", got)
	}
	clk.Advance(time.Second)

	if _, err := decrypt(k, id, dek, c); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Decrypt after the deletion date: %v, want ErrKeyNotFound", err)
	}
	if _, err := k.DescribeKey(ctx, &KeyRequest{KeyID: id}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("DescribeKey after the deletion date: %v, want ErrKeyNotFound", err)
	}
	if err := k.CancelKeyDeletion(ctx, &KeyRequest{KeyID: id}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("cancel after the deletion date: %v, want ErrKeyNotFound", err)
	}
	list, err := k.ListKeys(ctx)
	if err != nil || len(list) != 1 || list[0].KeyID != keep {
		t.Fatalf("ListKeys = %v, %v; want only %s", list, err, keep)
	}
	if !bytes.Equal(versions[0].material, make([]byte, 32)) {
		t.Fatal("deleted key's material was not wiped from memory")
	}
	file, err := os.ReadFile(filepath.Join(dir, keyringName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, []byte(id)) || bytes.Contains(file, []byte(base64.StdEncoding.EncodeToString(sealed))) {
		t.Fatal("the keyring file still holds the deleted key")
	}
	if !bytes.Contains(file, []byte(keep)) {
		t.Fatal("the keyring file lost the other key")
	}
	mustDecrypt(t, k, keep, keepDEK, c)
}

func TestDeletionDateCheckedOnOpen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{Now: clk.Now})
	id := newKey(t, k)
	if _, err := k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: id, PendingDays: 10}); err != nil {
		t.Fatal(err)
	}
	k.Close()
	clk.Advance(10 * 24 * time.Hour)
	k = openTest(t, dir, root, LocalOptions{Now: clk.Now})
	// Read the file before making any call: OpenLocal itself removed it.
	file, err := os.ReadFile(filepath.Join(dir, keyringName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, []byte(id)) {
		t.Fatal("OpenLocal kept a key past its deletion date in the keyring")
	}
	if _, err := k.DescribeKey(ctx, &KeyRequest{KeyID: id}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("DescribeKey: %v, want ErrKeyNotFound", err)
	}
}

func TestScheduleDeletionWindow(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{Now: newClock().Now})
	tests := []struct {
		days     int
		wantDays int // 0: refused
	}{
		{days: 0, wantDays: 30},
		{days: 7, wantDays: 7},
		{days: 30, wantDays: 30},
		{days: 6},
		{days: 31},
		{days: -7},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.days), func(t *testing.T) {
			id := newKey(t, k)
			md, err := k.ScheduleKeyDeletion(context.Background(), &ScheduleDeletionRequest{KeyID: id, PendingDays: tc.days})
			if tc.wantDays == 0 {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("PendingDays %d: %v, want ErrInvalidArgument", tc.days, err)
				}
				if got := describe(t, k, id).State; got != KeyEnabled {
					t.Fatalf("refused schedule changed the state to %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := md.DeletionDate.Sub(md.Created); got != time.Duration(tc.wantDays)*24*time.Hour {
				t.Fatalf("window %s, want %d days", got, tc.wantDays)
			}
		})
	}
}

// TestScheduleDeletionPending: a waiting period given as Pending (tests
// only) overrides PendingDays, whatever its length, and the key is gone
// once it has passed.
func TestScheduleDeletionPending(t *testing.T) {
	clock := newClock()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{Now: clock.Now})
	id := newKey(t, k)
	md, err := k.ScheduleKeyDeletion(context.Background(), &ScheduleDeletionRequest{KeyID: id, PendingDays: 99, Pending: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := md.DeletionDate.Sub(clock.Now()); got != 3*time.Second {
		t.Fatalf("window %s, want 3s", got)
	}
	clock.Advance(4 * time.Second)
	if _, err := k.DescribeKey(context.Background(), &KeyRequest{KeyID: id}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("after the deletion date: %v, want ErrKeyNotFound", err)
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir, root := t.TempDir(), randomRoot(t)
	opts := LocalOptions{Now: clk.Now, Region: "eu-west-1", Account: "123456789012"}
	k := openTest(t, dir, root, opts)
	a, b, p := newKey(t, k), newKey(t, k), newKey(t, k)
	c := objectContext("b", "o")
	deks := []DEK{generate(t, k, a, c)}
	for range 2 {
		clk.Advance(time.Hour)
		if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: a}); err != nil {
			t.Fatal(err)
		}
		deks = append(deks, generate(t, k, a, c))
	}
	if err := k.DisableKey(ctx, &KeyRequest{KeyID: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: p, PendingDays: 9}); err != nil {
		t.Fatal(err)
	}
	secret, err := k.Encrypt(ctx, &EncryptRequest{KeyID: a, Plaintext: []byte("replication secret"), Context: Context{"target": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	before, err := k.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}

	k = openTest(t, dir, root, opts)
	after, err := k.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("keys after reopen differ:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := describe(t, k, a).ARN; got != "arn:aws:kms:eu-west-1:123456789012:key/"+a {
		t.Fatalf("ARN = %s", got)
	}
	for _, dek := range deks {
		mustDecrypt(t, k, a, dek, c)
	}
	got, err := k.Decrypt(ctx, &DecryptRequest{Ciphertext: secret, Context: Context{"target": "eu"}})
	if err != nil || string(got) != "replication secret" {
		t.Fatalf("secret after reopen = %q, %v", got, err)
	}
	if md := describe(t, k, b); md.State != KeyDisabled {
		t.Fatalf("b state %s, want Disabled", md.State)
	}
	if md := describe(t, k, p); md.State != KeyPendingDeletion || md.DeletionDate.IsZero() {
		t.Fatalf("p state %s deletion %s, want PendingDeletion", md.State, md.DeletionDate)
	}
	if md := describe(t, k, a); md.CurrentVersion != 3 || md.Description != "test key" {
		t.Fatalf("a = %+v, want version 3 and its description", md)
	}
}

func TestWrongRootKey(t *testing.T) {
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{})
	newKey(t, k)
	k.Close()
	path := filepath.Join(dir, keyringName)
	was, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = OpenLocal(dir, randomRoot(t), LocalOptions{})
	if !errors.Is(err, ErrRootKeyMismatch) || !strings.Contains(err.Error(), "root key does not match this keyring") {
		t.Fatalf("OpenLocal with another root key: %v, want ErrRootKeyMismatch", err)
	}
	now, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(was, now) {
		t.Fatalf("a failed open changed the keyring (%v)", err)
	}
	// An empty keyring is protected too.
	empty := t.TempDir()
	openTest(t, empty, root, LocalOptions{}).Close()
	if _, err := OpenLocal(empty, randomRoot(t), LocalOptions{}); !errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("empty keyring, another root key: %v, want ErrRootKeyMismatch", err)
	}
	if _, err := OpenLocal(dir, root[:31], LocalOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("31-byte root key: %v, want ErrInvalidArgument", err)
	}
	openTest(t, dir, root, LocalOptions{})
}

func TestKeyringTampering(t *testing.T) {
	ctx := context.Background()
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{})
	a, b := newKey(t, k), newKey(t, k)
	if err := k.DisableKey(ctx, &KeyRequest{KeyID: a}); err != nil {
		t.Fatal(err)
	}
	k.Close()
	path := filepath.Join(dir, keyringName)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An edit that re-enables the disabled key fails the MAC.
	edited := bytes.Replace(orig, []byte(`"state":"Disabled"`), []byte(`"state":"Enabled"`), 1)
	if bytes.Equal(edited, orig) {
		t.Fatal("test setup: state not found in the keyring file")
	}
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenLocal(dir, root, LocalOptions{})
	if !errors.Is(err, errKeyringIntegrity) || errors.Is(err, ErrRootKeyMismatch) {
		t.Fatalf("edited keyring: %v, want an integrity error", err)
	}

	// Sealed material swapped between keys fails to unseal even under a
	// valid MAC (computed here with the root key's MAC key).
	var env keyringEnvelope
	if err := json.Unmarshal(orig, &env); err != nil {
		t.Fatal(err)
	}
	var body keyringBody
	if err := json.Unmarshal(env.Keyring, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Keys) != 2 || !(body.Keys[0].ID == a && body.Keys[1].ID == b || body.Keys[0].ID == b && body.Keys[1].ID == a) {
		t.Fatal("test setup: unexpected keys in the keyring")
	}
	body.Keys[0].Versions[0].Sealed, body.Keys[1].Versions[0].Sealed = body.Keys[1].Versions[0].Sealed, body.Keys[0].Versions[0].Sealed
	forger := &Local{scheme: k.scheme}
	data, err := forger.encodeKeyring(&body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = OpenLocal(dir, root, LocalOptions{}); !errors.Is(err, errKeyringIntegrity) || !strings.Contains(err.Error(), "does not unseal") {
		t.Fatalf("swapped sealed material: %v, want an unseal error", err)
	}

	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, root, LocalOptions{})
}

func TestFileModesAndNoClearMaterial(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	root, source, err := LoadRootKey("", "", data)
	if err != nil || source != RootKeyGenerated {
		t.Fatalf("LoadRootKey = %s, %v", source, err)
	}
	k := openTest(t, Dir(data), root, LocalOptions{})
	id := newKey(t, k)
	c := objectContext("b", "o")
	deks := []DEK{generate(t, k, id, c)}
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	deks = append(deks, generate(t, k, id, c))
	secret := []byte("a replication secret key 0123456789")
	if _, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: secret}); err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]os.FileMode{
		Dir(data):                           0o700 | os.ModeDir,
		filepath.Join(Dir(data), "keyring"): 0o600,
		RootKeyPath(data):                   0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}

	file, err := os.ReadFile(filepath.Join(Dir(data), "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{root, secret}
	for _, v := range k.keys[id].versions {
		secrets = append(secrets, v.material)
	}
	for _, dek := range deks {
		secrets = append(secrets, dek.Plaintext)
	}
	if len(secrets) != 2+2+2 {
		t.Fatalf("test setup: %d secrets", len(secrets))
	}
	for i, s := range secrets {
		for _, enc := range [][]byte{s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s))} {
			if bytes.Contains(file, enc) || bytes.Contains(bytes.ToLower(file), bytes.ToLower(enc)) {
				t.Fatalf("keyring file contains secret %d in some encoding", i)
			}
		}
	}
}

func TestKeyIDForms(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{Region: "ap-south-1", Account: "111122223333"})
	id := newKey(t, k)
	arn := k.ARN(id)
	if arn != "arn:aws:kms:ap-south-1:111122223333:key/"+id {
		t.Fatalf("ARN = %s", arn)
	}
	if md := describe(t, k, arn); md.KeyID != id || md.ARN != arn {
		t.Fatalf("DescribeKey(ARN) = %+v", md)
	}
	for _, name := range []string{
		"arn:aws:kms:us-east-1:111122223333:key/" + id,
		"arn:aws:kms:ap-south-1:000000000000:key/" + id,
		"arn:aws:kms:ap-south-1:111122223333:key/",
		"arn:aws:kms:ap-south-1:111122223333:alias/" + id,
		strings.ToUpper(id),
		"no-such-key",
	} {
		if _, err := k.DescribeKey(ctx, &KeyRequest{KeyID: name}); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("DescribeKey(%q): %v, want ErrKeyNotFound", name, err)
		}
	}
	if _, err := k.DescribeKey(ctx, &KeyRequest{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DescribeKey(\"\"): %v, want ErrInvalidArgument", err)
	}
	if _, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("GenerateDataKey without key id: %v, want ErrInvalidArgument", err)
	}
}

func TestEncryptSecrets(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	id := newKey(t, k)
	c := Context{"replication-target": "eu"}
	for _, n := range []int{1, 32, 100, maxSecretSize} {
		secret := make([]byte, n)
		rand.Read(secret)
		ct, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: secret, Context: c})
		if err != nil {
			t.Fatalf("Encrypt %d bytes: %v", n, err)
		}
		got, err := k.Decrypt(ctx, &DecryptRequest{KeyID: id, Ciphertext: ct, Context: c})
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Decrypt %d bytes: %v", n, err)
		}
		if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: id, Ciphertext: ct}); !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("Decrypt %d bytes without context: %v, want ErrInvalidCiphertext", n, err)
		}
	}
	for _, n := range []int{0, maxSecretSize + 1} {
		if _, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: make([]byte, n)}); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("Encrypt %d bytes: %v, want ErrInvalidArgument", n, err)
		}
	}
	if _, err := k.Encrypt(ctx, &EncryptRequest{KeyID: "missing", Plaintext: []byte("x")}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Encrypt under a missing key: %v, want ErrKeyNotFound", err)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir, root := t.TempDir(), randomRoot(t)
	k := openTest(t, dir, root, LocalOptions{})
	if _, err := OpenLocal(dir, root, LocalOptions{}); err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("second OpenLocal: %v, want an already-open error", err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := k.ListKeys(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("ListKeys after Close: %v", err)
	}
	openTest(t, dir, root, LocalOptions{})
}

func TestStaleTempFilesRemoved(t *testing.T) {
	dir, root := t.TempDir(), randomRoot(t)
	openTest(t, dir, root, LocalOptions{}).Close()
	stale := filepath.Join(dir, "keyring.tmp-123")
	if err := os.WriteFile(stale, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, root, LocalOptions{})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temporary keyring still there: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.CreateKey(ctx, &CreateKeyRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateKey with a cancelled context: %v", err)
	}
	if list, _ := k.ListKeys(context.Background()); len(list) != 0 {
		t.Fatal("a cancelled CreateKey created a key")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	root := randomRoot(t)
	k := openTest(t, t.TempDir(), root, LocalOptions{Logger: logger, Now: newClock().Now})
	id := newKey(t, k)
	c := objectContext("b", "o")
	dek := generate(t, k, id, c)
	mustDecrypt(t, k, id, dek, c)
	secret := []byte("the replication secret")
	if _, err := k.Encrypt(ctx, &EncryptRequest{KeyID: id, Plaintext: secret}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		k.DisableKey(ctx, &KeyRequest{KeyID: id}),
		k.EnableKey(ctx, &KeyRequest{KeyID: id}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := k.CancelKeyDeletion(ctx, &KeyRequest{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{root, secret, dek.Plaintext}
	for _, v := range k.keys[id].versions {
		secrets = append(secrets, v.material)
	}
	k.Close()

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, msg := range []string{"kms key created", "kms key rotated", "kms key disabled", "kms key enabled", "kms key scheduled for deletion", "kms key deletion cancelled"} {
		if !strings.Contains(out, msg) {
			t.Errorf("log lacks %q", msg)
		}
	}
	if !strings.Contains(out, `"key_id":"`+id+`"`) {
		t.Error("log lacks the key id")
	}
	for i, s := range secrets {
		for _, enc := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s)} {
			if strings.Contains(out, enc) {
				t.Fatalf("log contains secret %d", i)
			}
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	k := openTest(t, t.TempDir(), randomRoot(t), LocalOptions{CacheSize: 64})
	a, b, toggled := newKey(t, k), newKey(t, k), newKey(t, k)
	toggledDEK := generate(t, k, toggled, objectContext("t", "t"))

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 6 {
		wg.Go(func() {
			id := a
			if g%2 == 1 {
				id = b
			}
			type wrapped struct {
				dek DEK
				c   Context
			}
			var done []wrapped
			for i := range 40 {
				c := objectContext("bucket", fmt.Sprintf("g%d-o%d", g, i%10))
				dek, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: id, Context: c})
				if err != nil {
					errs <- err
					return
				}
				done = append(done, wrapped{dek: dek, c: c})
				for _, w := range done[max(0, len(done)-5):] {
					pt, err := decrypt(k, id, w.dek, w.c)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(pt, w.dek.Plaintext) {
						errs <- errors.New("wrong data key")
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := k.RotateKey(ctx, &KeyRequest{KeyID: a}); err != nil {
				errs <- err
				return
			}
			if _, err := k.CreateKey(ctx, &CreateKeyRequest{}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for range 10 {
			if err := k.DisableKey(ctx, &KeyRequest{KeyID: toggled}); err != nil {
				errs <- err
				return
			}
			if err := k.EnableKey(ctx, &KeyRequest{KeyID: toggled}); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			_, err := decrypt(k, toggled, toggledDEK, objectContext("t", "t"))
			if err != nil && !errors.Is(err, ErrKeyDisabled) {
				errs <- err
				return
			}
			if _, err := k.ListKeys(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := describe(t, k, a).CurrentVersion; got != 6 {
		t.Fatalf("CurrentVersion = %d, want 6", got)
	}
	if n := k.cache.len(); n > 64 {
		t.Fatalf("cache holds %d entries, bound is 64", n)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	for _, bc := range []struct {
		name      string
		cacheSize int
	}{
		{name: "cached", cacheSize: 0},
		{name: "uncached", cacheSize: -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			k := openTest(b, b.TempDir(), randomRoot(b), LocalOptions{CacheSize: bc.cacheSize})
			id := newKey(b, k)
			c := objectContext("benchmark-bucket", "3f2a9c1e7b4d4e0f8a6b5c4d3e2f1a0b")
			dek := generate(b, k, id, c)
			req := &DecryptRequest{KeyID: id, Ciphertext: dek.Ciphertext, Context: c}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Decrypt(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGenerateDataKey(b *testing.B) {
	k := openTest(b, b.TempDir(), randomRoot(b), LocalOptions{})
	id := newKey(b, k)
	req := &GenerateDataKeyRequest{KeyID: id, Context: objectContext("benchmark-bucket", "3f2a9c1e7b4d4e0f8a6b5c4d3e2f1a0b")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.GenerateDataKey(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
