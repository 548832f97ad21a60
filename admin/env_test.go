package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/replicate"
)

// testDaemon is what the admin API is built over in a daemon, on real
// parts (the tests set it up with meta and kms; the API sees the store and
// the replication manager only).
type testDaemon struct {
	dataDir string
	store   *cryptostore.Store
	kms     *kms.Local
	creds   struct{ AccessKey, SecretKey string }
}

// adminTestDaemon serves the admin API over HTTPS (and plain HTTP) with
// httptest.
func adminTestDaemon(t *testing.T) (*testDaemon, *httptest.Server, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), bytes.Repeat([]byte{3}, 32), kms.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replq, err := cryptostore.NewReplicationQueue(db, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	repl, err := replicate.New(replicate.Config{Queue: replq, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := cryptostore.Open(context.Background(), cryptostore.Config{Dir: dir, Meta: db, KMS: k, CollectInterval: -1, OnCommit: repl.OnCommit})
	if err != nil {
		t.Fatal(err)
	}
	repl.Start(store)
	d := &testDaemon{dataDir: dir, store: store, kms: k}
	d.creds.AccessKey, d.creds.SecretKey = "ADMINTESTKEY", "admin-test-secret"
	api := New(Config{Store: store, Replication: repl, Region: "us-east-1", Version: "test", Started: time.Now(),
		AccessKey: d.creds.AccessKey, SecretKey: d.creds.SecretKey})
	tlsSrv := httptest.NewTLSServer(api)
	plainSrv := httptest.NewServer(api)
	t.Cleanup(func() {
		tlsSrv.Close()
		plainSrv.Close()
		repl.Close()
		store.Close()
		k.Close()
		db.Close()
	})
	return d, tlsSrv, plainSrv
}

// adminClient signs admin requests as the CLI's client does (the CLI's own
// client, in cmd/sealfs, is exercised end to end by the integration tests).
type adminClient struct {
	base   string
	http   *http.Client
	creds  aws.Credentials
	region string
	signer *v4.Signer
}

func adminTestClient(srv *httptest.Server, ak, sk string) *adminClient {
	return &adminClient{base: srv.URL, http: srv.Client(), creds: aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, region: "us-east-1", signer: v4.NewSigner()}
}

// adminCallError is an error answer.
type adminCallError struct {
	Status  int
	Code    string
	Message string
}

func (e *adminCallError) Error() string { return e.Code + ": " + e.Message }

// call sends method path (relative to Prefix) with in as its JSON body
// (nil: none) and decodes the answer into out (nil: ignored).
func (a *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+Prefix+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	if err := a.signer.SignHTTP(ctx, a.creds, req, hash, "s3", a.region, time.Now()); err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error adminCallError `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("answer %s: %s", resp.Status, data)
		}
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
