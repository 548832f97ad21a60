package replicate

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

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
		if rec, err = tx.GetConfig(targetRecordPrefix + "eu-west-1"); err != nil {
			return err
		}
		k, err := tx.GetConfig(systemKeyRecord)
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
