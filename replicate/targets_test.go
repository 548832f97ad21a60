package replicate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

func TestTargetSecretSealed(t *testing.T) {
	r := newRegion(t, "us-east-1", nil)
	r.mgr.store.Store(r.store)
	secret := "s3cr3t-the-target-must-never-see-on-disk"
	tgt, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: "https://replica.example:9443/", AccessKey: "AK", SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	if tgt.Endpoint != "https://replica.example:9443" || tgt.AccessKey != "AK" {
		t.Fatalf("target: %+v", tgt)
	}
	// The record holds the secret sealed by the system key, which is
	// recorded and created once.
	var rec []byte
	var keyID string
	if err := r.db.View(ctx, func(tx *meta.Txn) error {
		var err error
		if rec, err = tx.GetConfig("replicate/target/eu-west-1"); err != nil {
			return err
		}
		k, err := tx.GetConfig("system/secrets-key")
		keyID = string(k)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec, []byte(secret)) {
		t.Fatal("the target record holds the secret in clear")
	}
	if _, err := r.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: keyID}); err != nil {
		t.Fatalf("system key %q: %v", keyID, err)
	}
	if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "ap-south-1", Endpoint: "https://other.example", AccessKey: "AK2", SecretKey: secret + "2"}); err != nil {
		t.Fatal(err)
	}
	keys, err := r.kms.ListKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("KMS keys after two targets: %d, %v; want the one system key", len(keys), err)
	}
	// The client unseals it.
	if _, err := r.mgr.client(ctx, "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	ts, err := r.mgr.Targets(ctx)
	if err != nil || len(ts) != 2 || ts[0].Region != "ap-south-1" || ts[1].Region != "eu-west-1" {
		t.Fatalf("Targets: %+v, %v", ts, err)
	}
	// Nothing on disk holds it in clear: not Badger's tables or logs.
	r.mgr.Close()
	r.store.Close()
	if err := r.db.Close(); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds the secret key in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTargetChecks(t *testing.T) {
	r := newRegion(t, "us-east-1", nil)
	r.mgr.store.Store(r.store)
	tests := []struct {
		name string
		in   TargetInput
	}{
		{name: "plain http", in: TargetInput{Region: "eu-west-1", Endpoint: "http://h:1", AccessKey: "a", SecretKey: "s"}},
		{name: "path", in: TargetInput{Region: "eu-west-1", Endpoint: "https://h/x", AccessKey: "a", SecretKey: "s"}},
		{name: "own region", in: TargetInput{Region: "us-east-1", Endpoint: "https://h", AccessKey: "a", SecretKey: "s"}},
		{name: "bad region", in: TargetInput{Region: "EU West", Endpoint: "https://h", AccessKey: "a", SecretKey: "s"}},
		{name: "no secret", in: TargetInput{Region: "eu-west-1", Endpoint: "https://h", AccessKey: "a"}},
		{name: "bad CA", in: TargetInput{Region: "eu-west-1", Endpoint: "https://h", AccessKey: "a", SecretKey: "s", CA: "not PEM"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.mgr.AddTarget(ctx, &tc.in); !errors.Is(err, ErrInvalidTarget) {
				t.Fatalf("want ErrInvalidTarget, have %v", err)
			}
		})
	}
	if err := r.mgr.RemoveTarget(ctx, "eu-west-1"); !errors.Is(err, ErrNoSuchTarget) {
		t.Fatalf("removing an unknown target: %v", err)
	}
	r.bucket(t, "src", false)
	if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: "https://h", AccessKey: "a", SecretKey: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst"}); err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.RemoveTarget(ctx, "eu-west-1"); !errors.Is(err, ErrTargetInUse) {
		t.Fatalf("removing a target in use: %v", err)
	}
	if err := r.mgr.Disable(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	if err := r.mgr.RemoveTarget(ctx, "eu-west-1"); err != nil {
		t.Fatalf("removing a target no longer in use: %v", err)
	}
	if _, err := r.mgr.Enable(ctx, "src", &EnableInput{To: "eu-west-1/dst"}); !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("enabling towards a removed target: %v", err)
	}
}

// TestTargetRecordFormatKept: a target record as sealfs wrote it before
// the queue moved behind cryptostore (the JSON record under
// replicate/target/REGION, its secret the KMS's ciphertext under the key
// in system/secrets-key with the target-secret context) still opens, and a
// record written now is that same format.
func TestTargetRecordFormatKept(t *testing.T) {
	r := newRegion(t, "us-east-1", nil)
	r.mgr.store.Store(r.store)
	var keyID string
	if err := r.db.View(ctx, func(tx *meta.Txn) error {
		k, err := tx.GetConfig("system/secrets-key")
		keyID = string(k)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	encCtx := kms.Context{"sealfs": "replication-target-secret", "region": "eu-west-1"}
	sealed, err := r.kms.Encrypt(ctx, &kms.EncryptRequest{KeyID: keyID, Plaintext: []byte("old-secret"), Context: encCtx})
	if err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(map[string]any{
		"region": "eu-west-1", "endpoint": "https://old.example:9443", "accessKey": "OLDAK",
		"added": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "secretKeyId": keyID, "sealedSecret": sealed,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.db.Update(ctx, func(tx *meta.Txn) error { return tx.PutConfig("replicate/target/eu-west-1", old) }); err != nil {
		t.Fatal(err)
	}
	ts, err := r.mgr.Targets(ctx)
	if err != nil || len(ts) != 1 || ts[0].AccessKey != "OLDAK" || ts[0].Endpoint != "https://old.example:9443" {
		t.Fatalf("Targets over an old record: %+v, %v", ts, err)
	}
	tc, err := r.mgr.client(ctx, "eu-west-1")
	if err != nil {
		t.Fatalf("an old record does not open: %v", err)
	}
	creds, err := tc.s3.Options().Credentials.Retrieve(ctx)
	if err != nil || creds.SecretAccessKey != "old-secret" {
		t.Fatalf("old record's secret: %q, %v", creds.SecretAccessKey, err)
	}

	// A record written now opens with the KMS alone, as before.
	if _, err := r.mgr.AddTarget(ctx, &TargetInput{Region: "ap-south-1", Endpoint: "https://new.example", AccessKey: "NEWAK", SecretKey: "new-secret"}); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := r.db.View(ctx, func(tx *meta.Txn) error {
		var err error
		raw, err = tx.GetConfig("replicate/target/ap-south-1")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var rec struct {
		SecretKeyID  string `json:"secretKeyId"`
		SealedSecret []byte `json:"sealedSecret"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.SecretKeyID != keyID {
		t.Fatalf("new record sealed under %q, want the system key %q", rec.SecretKeyID, keyID)
	}
	pt, err := r.kms.Decrypt(ctx, &kms.DecryptRequest{KeyID: rec.SecretKeyID, Ciphertext: rec.SealedSecret,
		Context: kms.Context{"sealfs": "replication-target-secret", "region": "ap-south-1"}})
	if err != nil || string(pt) != "new-secret" {
		t.Fatalf("new record with the KMS alone: %q, %v", pt, err)
	}
}
