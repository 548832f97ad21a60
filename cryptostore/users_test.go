package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sealfs/sealfs/iam"
	"github.com/sealfs/sealfs/meta"
)

const readOnlyPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"]}]}`

const kmsPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"s3:*","Resource":"*"},
 {"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}]}`

// TestUsersAndAccessKeys: users and keys are created, listed, disabled and
// deleted; the secret is shown once and stored only sealed; Principal opens
// it and carries the user's policy.
func TestUsersAndAccessKeys(t *testing.T) {
	e := newEnv(t, nil)
	s := e.store
	if _, err := s.CreateUser(ctx, "bad name", nil); !errors.Is(err, ErrInvalidUserName) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := s.CreateUser(ctx, "reader", []byte(`{"Statement":[{"Effect":"Allow"}]}`)); !errors.Is(err, iam.ErrInvalidPolicy) {
		t.Fatalf("bad policy: %v", err)
	}
	u, err := s.CreateUser(ctx, "reader", []byte(readOnlyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if u.ARN != "arn:aws:iam::000000000000:user/reader" {
		t.Errorf("ARN = %s", u.ARN)
	}
	if _, err := s.CreateUser(ctx, "reader", nil); !errors.Is(err, ErrUserExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.CreateAccessKey(ctx, "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("key for nobody: %v", err)
	}
	k, err := s.CreateAccessKey(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.ID, "SFAK") || len(k.ID) != 20 || len(k.SecretKey) != 40 || k.Status != "Active" {
		t.Fatalf("new key = %+v", k)
	}
	// The secret is nowhere in the metadata in clear.
	err = e.db.View(ctx, func(tx *meta.Txn) error {
		ak, err := tx.GetAccessKey(k.ID)
		if err != nil {
			return err
		}
		if bytes.Contains(ak.SealedSecret, []byte(k.SecretKey)) || len(ak.SealedSecret) == 0 {
			t.Errorf("the stored secret is not sealed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Principal(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "reader" || p.Secret != k.SecretKey || p.Policy == nil || p.AccessKey != k.ID {
		t.Fatalf("principal = %+v", p)
	}
	if _, err := s.Principal(ctx, "SFAKNONE"); !errors.Is(err, ErrNoSuchAccessKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.CreateAccessKey(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccessKey(ctx, "reader"); !errors.Is(err, ErrTooManyAccessKeys) {
		t.Fatalf("third key: %v", err)
	}
	// Inactive keys and disabled users are refused at once (the cache is
	// cleared by the change).
	if _, err := s.SetAccessKeyActive(ctx, k.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Principal(ctx, k.ID); !errors.Is(err, ErrAccessKeyInactive) {
		t.Fatalf("inactive key: %v", err)
	}
	if _, err := s.SetAccessKeyActive(ctx, k.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserDisabled(ctx, "reader", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Principal(ctx, k.ID); !errors.Is(err, ErrAccessKeyInactive) {
		t.Fatalf("disabled user: %v", err)
	}
	if err := s.SetUserDisabled(ctx, "reader", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserPolicy(ctx, "reader", []byte(kmsPolicy)); err != nil {
		t.Fatal(err)
	}
	if p, err = s.Principal(ctx, k.ID); err != nil || p.Check(&iam.Request{Action: "kms:Decrypt", Resource: "arn:x:y:z:w:v"}) != nil {
		t.Fatalf("the new policy is not seen: %v", err)
	}
	us, err := s.ListUsers(ctx)
	if err != nil || len(us) != 1 || len(us[0].AccessKeys) != 2 || us[0].Policy != kmsPolicy {
		t.Fatalf("ListUsers = %+v, %v", us, err)
	}
	if err := s.DeleteAccessKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Principal(ctx, k.ID); !errors.Is(err, ErrNoSuchAccessKey) {
		t.Fatalf("deleted key: %v", err)
	}
	if err := s.DeleteUser(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
	err = e.db.View(ctx, func(tx *meta.Txn) error {
		n := 0
		err := tx.ListAccessKeys(func(*meta.AccessKey) error { n++; return nil })
		if n != 0 {
			t.Errorf("%d access keys left after the user was deleted", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeyPermission: a caller whose policy lacks kms:Decrypt cannot open an
// encrypted object, and one without kms:GenerateDataKey cannot write into an
// encrypting bucket, with AWS's message naming the action and the key; a
// plain object stays readable; without a caller (the admin) all works; the
// audit hook sees every use with its outcome.
func TestKeyPermission(t *testing.T) {
	var mu sync.Mutex
	var uses []KeyUse
	e := newEnv(t, func(c *Config) {
		c.Audit = func(u KeyUse) { mu.Lock(); uses = append(uses, u); mu.Unlock() }
	})
	s := e.store
	e.bucket(t, "bkt", true)
	e.put(t, "bkt", "secret", []byte("encrypted data"))
	if err := s.SetBucketEncryption(ctx, "bkt", false); err != nil {
		t.Fatal(err)
	}
	e.put(t, "bkt", "plain", []byte("plain data"))
	if err := s.SetBucketEncryption(ctx, "bkt", true); err != nil {
		t.Fatal(err)
	}
	b, err := s.GetBucket(ctx, "bkt")
	if err != nil {
		t.Fatal(err)
	}
	keyARN := s.KeyARN(b.MasterKeyID)
	if _, err := s.CreateUser(ctx, "reader", []byte(readOnlyPolicy)); err != nil {
		t.Fatal(err)
	}
	reader, err := s.UserPrincipal(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	rctx := WithCaller(ctx, &Caller{Principal: reader, SecureTransport: true})

	read := func(ctx context.Context, key string) ([]byte, error) {
		h, err := s.Open(ctx, "bkt", key)
		if err != nil {
			return nil, err
		}
		defer h.Close()
		return io.ReadAll(h.Reader(0, h.Size()))
	}
	_, err = read(rctx, "secret")
	var denied *iam.AccessDeniedError
	if !errors.As(err, &denied) || denied.Action != "kms:Decrypt" || denied.Resource != keyARN {
		t.Fatalf("reader opens the encrypted object: %v", err)
	}
	want := "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: kms:Decrypt on resource: " + keyARN
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start %q", err, want)
	}
	if got, err := read(rctx, "plain"); err != nil || string(got) != "plain data" {
		t.Fatalf("reader reads the plain object: %q, %v", got, err)
	}
	_, err = s.Put(rctx, &PutInput{Bucket: "bkt", Key: "new", Body: strings.NewReader("x"), Size: 1})
	if !errors.As(err, &denied) || denied.Action != "kms:GenerateDataKey" {
		t.Fatalf("reader writes into the encrypting bucket: %v", err)
	}
	if _, err := s.Head(ctx, "bkt", "new"); err == nil {
		t.Fatal("the refused write left an object")
	}
	// The admin (no caller) reads everything.
	if got := e.mustGet(t, "bkt", "secret"); string(got) != "encrypted data" {
		t.Fatalf("admin read %q", got)
	}
	// With kms:Decrypt the user reads the encrypted object.
	if err := s.SetUserPolicy(ctx, "reader", []byte(kmsPolicy)); err != nil {
		t.Fatal(err)
	}
	user, err := s.UserPrincipal(ctx, "reader")
	if err != nil {
		t.Fatal(err)
	}
	uctx := WithCaller(ctx, &Caller{Principal: user, SecureTransport: true})
	if got, err := read(uctx, "secret"); err != nil || string(got) != "encrypted data" {
		t.Fatalf("user with kms:Decrypt: %q, %v", got, err)
	}
	if _, err := s.Put(uctx, &PutInput{Bucket: "bkt", Key: "new", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatalf("user with kms:GenerateDataKey: %v", err)
	}

	if _, err := s.RotateKey(ctx, b.MasterKeyID); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	var denials, readerAllowed, created, rotated int
	for _, u := range uses {
		switch u.Action {
		case "kms:CreateKey":
			created++
			continue
		case "kms:RotateKey":
			if u.KeyARN != keyARN || u.Err != nil || u.User != "" {
				t.Errorf("audit record %+v", u)
			}
			rotated++
			continue
		}
		if u.KeyARN != keyARN || u.Bucket != "bkt" || u.Object == "" {
			t.Errorf("audit record %+v", u)
		}
		if u.User == "reader" && u.Err != nil {
			denials++
		}
		if u.User == "reader" && u.Err == nil {
			readerAllowed++
		}
	}
	if created != 1 || rotated != 1 {
		t.Errorf("audit: %d key creations and %d rotations, want 1 and 1", created, rotated)
	}
	if denials != 2 || readerAllowed != 2 {
		t.Errorf("audit: %d denials and %d allowed uses by reader, want 2 and 2: %+v", denials, readerAllowed, uses)
	}
}
