package kms

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sealfs/sealfs/internal/localkms"
)

func openTestAWS(t *testing.T, url string, now func() time.Time) *AWS {
	t.Helper()
	k, err := OpenAWS(url, AWSOptions{Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestParseAWSURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    AWSConfig
		wantErr bool
	}{
		{url: "aws-kms://eu-west-1", want: AWSConfig{Region: "eu-west-1", AliasPrefix: "sealfs/", CacheTTL: DefaultAWSCacheTTL}},
		{url: "aws-kms://us-east-1?endpoint=http://127.0.0.1:4599&cache-ttl=30s&alias-prefix=prod/",
			want: AWSConfig{Region: "us-east-1", Endpoint: "http://127.0.0.1:4599", AliasPrefix: "prod/", CacheTTL: 30 * time.Second}},
		{url: "aws-kms://us-east-1?cache-ttl=0", want: AWSConfig{Region: "us-east-1", AliasPrefix: "sealfs/"}},
		{url: "aws-kms://?endpoint=http://127.0.0.1:1", wantErr: true},
		{url: "vault://x", wantErr: true},
		{url: "aws-kms://r?endpoint=ftp://x", wantErr: true},
		{url: "aws-kms://r?alias-prefix=aws/x", wantErr: true},
		{url: "aws-kms://r?alias-prefix=a.b", wantErr: true},
		{url: "aws-kms://r?cache-ttl=-1s", wantErr: true},
		{url: "aws-kms://r?colour=blue", wantErr: true},
	} {
		got, err := ParseAWSURL(tc.url)
		if tc.wantErr {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("%s: err %v, want ErrInvalidArgument", tc.url, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
}

// TestAWSEngine runs the engine against local-kms: keys with aliases, data
// keys bound to their context, key states as the service reports them.
func TestAWSEngine(t *testing.T) {
	srv := localkms.Start(t)
	k := openTestAWS(t, srv.URL(), nil)
	ctx := context.Background()

	md, err := k.CreateKey(ctx, &CreateKeyRequest{Description: "sealfs bucket photos.2024", Alias: "photos.2024"})
	if err != nil {
		t.Fatal(err)
	}
	if md.State != KeyEnabled || md.KeyID == "" || !strings.HasSuffix(md.ARN, ":key/"+md.KeyID) || k.ARN(md.KeyID) != md.ARN {
		t.Fatalf("created %+v (ARN() %q)", md, k.ARN(md.KeyID))
	}
	// The alias names the bucket.
	byAlias, err := k.DescribeKey(ctx, &KeyRequest{KeyID: "alias/sealfs/photos_2024"})
	if err != nil || byAlias.KeyID != md.KeyID {
		t.Fatalf("DescribeKey by alias: %+v, %v", byAlias, err)
	}
	sys, err := k.CreateKey(ctx, &CreateKeyRequest{Description: "system"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := k.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys: %v, %v", keys, err)
	}
	// The service's creation dates are in seconds: two keys made in one
	// second come in id order.
	if got := map[string]bool{keys[0].KeyID: true, keys[1].KeyID: true}; !got[md.KeyID] || !got[sys.KeyID] {
		t.Fatalf("ListKeys: %s and %s, want %s and %s", keys[0].KeyID, keys[1].KeyID, md.KeyID, sys.KeyID)
	}

	c := Context{"bucket": "photos.2024", "object": "0000000000000001"}
	dek, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c})
	if err != nil || dek.KeyID != md.KeyID || len(dek.Plaintext) != 32 {
		t.Fatalf("GenerateDataKey: %+v, %v", dek.KeyID, err)
	}
	pt, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c})
	if err != nil || string(pt) != string(dek.Plaintext) {
		t.Fatalf("Decrypt: %v", err)
	}
	other := Context{"bucket": "photos.2024", "object": "0000000000000002"}
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: other}); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("Decrypt under another object's context: %v, want ErrInvalidCiphertext", err)
	}
	sealed, err := k.Encrypt(ctx, &EncryptRequest{KeyID: sys.KeyID, Plaintext: []byte("secret"), Context: Context{"purpose": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.Decrypt(ctx, &DecryptRequest{KeyID: sys.KeyID, Ciphertext: sealed, Context: Context{"purpose": "t"}}); err != nil || string(pt) != "secret" {
		t.Fatalf("Decrypt of a secret: %q, %v", pt, err)
	}

	// Disabled there: refused at once, the cached data key included.
	if err := k.DisableKey(ctx, &KeyRequest{KeyID: md.KeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c}); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("Decrypt with the key disabled: %v, want ErrKeyDisabled", err)
	}
	if _, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c}); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("GenerateDataKey with the key disabled: %v, want ErrKeyDisabled", err)
	}
	if d, _ := k.DescribeKey(ctx, &KeyRequest{KeyID: md.KeyID}); d.State != KeyDisabled {
		t.Fatalf("state %s, want Disabled", d.State)
	}
	if err := k.EnableKey(ctx, &KeyRequest{KeyID: md.KeyID}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c}); err != nil {
		t.Fatalf("Decrypt after enabling: %v", err)
	}

	// Pending deletion, then cancelled: AWS leaves the key Disabled,
	// local-kms Enabled; either way no longer pending.
	sched, err := k.ScheduleKeyDeletion(ctx, &ScheduleDeletionRequest{KeyID: md.KeyID, PendingDays: 7})
	if err != nil || sched.State != KeyPendingDeletion || sched.DeletionDate.IsZero() {
		t.Fatalf("ScheduleKeyDeletion: %+v, %v", sched, err)
	}
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c}); !errors.Is(err, ErrKeyPendingDeletion) {
		t.Fatalf("Decrypt pending deletion: %v, want ErrKeyPendingDeletion", err)
	}
	if err := k.CancelKeyDeletion(ctx, &KeyRequest{KeyID: md.KeyID}); err != nil {
		t.Fatal(err)
	}
	if d, _ := k.DescribeKey(ctx, &KeyRequest{KeyID: md.KeyID}); d.State == KeyPendingDeletion || !d.DeletionDate.IsZero() {
		t.Fatalf("after cancel: %+v", d)
	}
	if _, err := k.DescribeKey(ctx, &KeyRequest{KeyID: "2c9f9d3e-0000-4000-8000-000000000000"}); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("DescribeKey of no key: %v, want ErrKeyNotFound", err)
	}
}

// TestAWSEngineOutage: with the service down, writes fail with
// ErrUnavailable; reads of data keys the service confirmed within the cache
// TTL keep working, and stop when the TTL has passed.
func TestAWSEngineOutage(t *testing.T) {
	srv := localkms.Start(t)
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	k := openTestAWS(t, srv.URL()+"&cache-ttl=1m", now)
	ctx := context.Background()
	md, err := k.CreateKey(ctx, &CreateKeyRequest{Alias: "b"})
	if err != nil {
		t.Fatal(err)
	}
	c := Context{"bucket": "b", "object": "1"}
	dek, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c})
	if err != nil {
		t.Fatal(err)
	}
	c2 := Context{"bucket": "b", "object": "2"}
	dek2, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c2})
	if err != nil {
		t.Fatal(err)
	}
	k.cache.evictKey(md.KeyID) // dek2 was never read back: not cached
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c}); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	start := time.Now()
	if _, err := k.GenerateDataKey(ctx, &GenerateDataKeyRequest{KeyID: md.KeyID, Context: c}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GenerateDataKey with the KMS down: %v, want ErrUnavailable", err)
	}
	t.Logf("a write failed %v after the KMS went down", time.Since(start).Round(time.Millisecond))
	pt, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c})
	if err != nil || string(pt) != string(dek.Plaintext) {
		t.Fatalf("cached Decrypt with the KMS down: %v", err)
	}
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek2.Ciphertext, Context: c2}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached Decrypt with the KMS down: %v, want ErrUnavailable", err)
	}
	offset.Store(int64(61 * time.Second))
	if _, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: dek.Ciphertext, Context: c}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cached Decrypt past the TTL: %v, want ErrUnavailable", err)
	}

	srv.Restart()
	for _, d := range []struct {
		dek DEK
		c   Context
	}{{dek, c}, {dek2, c2}} {
		if pt, err := k.Decrypt(ctx, &DecryptRequest{KeyID: md.KeyID, Ciphertext: d.dek.Ciphertext, Context: d.c}); err != nil || string(pt) != string(d.dek.Plaintext) {
			t.Fatalf("Decrypt after the KMS came back: %v", err)
		}
	}
}
