package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/replicate"
	"github.com/sealfs/sealfs/s3"
	"github.com/sealfs/sealfs/s3/s3replica"
)

// replEnv is the S3 handler with replication wired as the daemon wires it:
// a real store whose commit hook is a replicate.Manager's.
type replEnv struct {
	store  *cryptostore.Store
	mgr    *replicate.Manager
	srv    *httptest.Server
	client *awss3.Client
}

func newReplEnv(t *testing.T) *replEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), bytes.Repeat([]byte{9}, 32), kms.LocalOptions{Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	replq, err := cryptostore.NewReplicationQueue(db, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := replicate.New(replicate.Config{Queue: replq, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cryptostore.Open(context.Background(), cryptostore.Config{Dir: dir, Meta: db, KMS: k, Region: testRegion, CollectInterval: -1, OnCommit: mgr.OnCommit})
	if err != nil {
		t.Fatal(err)
	}
	mgr.Start(st)
	h := s3.NewHandler(s3.Config{Store: st, Credentials: s3.StaticCredentials(testAccessKey, testSecret), Region: testRegion, Replication: mgr})
	e := &replEnv{store: st, mgr: mgr}
	e.srv = httptest.NewUnstartedServer(h)
	e.srv.EnableHTTP2 = false
	e.srv.StartTLS()
	t.Cleanup(func() {
		e.srv.Close()
		mgr.Close()
		st.Close()
		k.Close()
		db.Close()
	})
	e.client = awss3.New(awss3.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKey, testSecret, ""),
		HTTPClient:   e.srv.Client(),
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
	})
	return e
}

func replAPICode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestBucketReplicationConfiguration(t *testing.T) {
	e := newReplEnv(t)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "src", ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.GetBucketReplication(ctx, &awss3.GetBucketReplicationInput{Bucket: aws.String("src")})
	if replAPICode(err) != "ReplicationConfigurationNotFoundError" {
		t.Fatalf("get without a configuration: %v", err)
	}
	put := func(dest string) error {
		_, err := e.client.PutBucketReplication(ctx, &awss3.PutBucketReplicationInput{
			Bucket: aws.String("src"),
			ReplicationConfiguration: &types.ReplicationConfiguration{
				Role: aws.String("arn:aws:iam::000000000000:role/replication"),
				Rules: []types.ReplicationRule{{
					ID:                      aws.String("all"),
					Priority:                aws.Int32(1),
					Status:                  types.ReplicationRuleStatusEnabled,
					Filter:                  &types.ReplicationRuleFilter{Prefix: aws.String("docs/")},
					DeleteMarkerReplication: &types.DeleteMarkerReplication{Status: types.DeleteMarkerReplicationStatusEnabled},
					Destination:             &types.Destination{Bucket: aws.String(dest)},
				}},
			},
		})
		return err
	}
	err = put("arn:aws:s3:eu-west-1::dst")
	if replAPICode(err) != "InvalidRequest" || !strings.Contains(err.Error(), "not a registered replication target") {
		t.Fatalf("rule towards an unknown region: %v", err)
	}
	if _, err := e.mgr.AddTarget(ctx, &replicate.TargetInput{Region: "eu-west-1", Endpoint: "https://127.0.0.1:1", AccessKey: "a", SecretKey: "s"}); err != nil {
		t.Fatal(err)
	}
	// AWS's ARN form works with one target registered.
	if err := put("arn:aws:s3:::dst"); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := e.client.GetBucketReplication(ctx, &awss3.GetBucketReplicationInput{Bucket: aws.String("src")})
	if err != nil {
		t.Fatal(err)
	}
	rules := out.ReplicationConfiguration.Rules
	if len(rules) != 1 || aws.ToString(rules[0].ID) != "all" || aws.ToString(rules[0].Destination.Bucket) != "arn:aws:s3:eu-west-1::dst" ||
		aws.ToString(rules[0].Filter.Prefix) != "docs/" || rules[0].DeleteMarkerReplication.Status != types.DeleteMarkerReplicationStatusEnabled ||
		aws.ToString(out.ReplicationConfiguration.Role) != "arn:aws:iam::000000000000:role/replication" {
		t.Fatalf("configuration read back: %+v", out.ReplicationConfiguration)
	}
	// The rule is live: a matching write is PENDING.
	if _, err := e.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("docs/a"), Body: strings.NewReader("a")}); err != nil {
		t.Fatal(err)
	}
	head, err := e.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("docs/a")})
	if err != nil {
		t.Fatal(err)
	}
	if head.ReplicationStatus != types.ReplicationStatusPending {
		t.Fatalf("x-amz-replication-status: %q", head.ReplicationStatus)
	}
	if _, err := e.client.DeleteBucketReplication(ctx, &awss3.DeleteBucketReplicationInput{Bucket: aws.String("src")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetBucketReplication(ctx, &awss3.GetBucketReplicationInput{Bucket: aws.String("src")})
	if replAPICode(err) != "ReplicationConfigurationNotFoundError" {
		t.Fatalf("get after delete: %v", err)
	}
	_, err = e.client.GetBucketReplication(ctx, &awss3.GetBucketReplicationInput{Bucket: aws.String("nobucket")})
	if replAPICode(err) != "NoSuchBucket" {
		t.Fatalf("get on a missing bucket: %v", err)
	}
}

// replicaHeaders adds the replica headers before signing.
func replicaHeaders(at time.Time) func(*awss3.Options) {
	return func(o *awss3.Options) {
		o.APIOptions = append(o.APIOptions,
			smithyhttp.SetHeaderValue(s3replica.HeaderSourceMtime, s3replica.FormatSourceTime(at)),
			smithyhttp.SetHeaderValue(s3replica.HeaderSourceRegion, "ap-south-1"))
	}
}

func TestReplicaWrites(t *testing.T) {
	e := newReplEnv(t)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "dst", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetBucketEncryption(ctx, "dst", true); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 7, 1, 12, 0, 0, 123456789, time.UTC)
	putReplica := func(body string, at time.Time) (*awss3.PutObjectOutput, error) {
		return e.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("dst"), Key: aws.String("k"), Body: strings.NewReader(body),
			Metadata: map[string]string{"mode": "33188"}}, replicaHeaders(at))
	}
	out, err := putReplica("newer", t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("replica in an encrypting bucket: SSE %q", out.ServerSideEncryption)
	}
	obj, err := e.store.Head(ctx, "dst", "k")
	if err != nil {
		t.Fatal(err)
	}
	if obj.ReplicationStatus != cryptostore.ReplicationReplica || !obj.ReplicaSourceModified.Equal(t0.Add(time.Second)) || obj.Meta.User["mode"] != "33188" {
		t.Fatalf("stored replica: status %q, source time %v, meta %v", obj.ReplicationStatus, obj.ReplicaSourceModified, obj.Meta.User)
	}
	// An older replica is answered as success and not stored.
	if _, err := putReplica("older", t0); err != nil {
		t.Fatalf("stale replica: %v", err)
	}
	get, err := e.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("dst"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(data) != "newer" || get.ReplicationStatus != types.ReplicationStatusReplica {
		t.Fatalf("after a stale replica: %q, status %q", data, get.ReplicationStatus)
	}
	// Replica deletes: an older one leaves the object, a newer one deletes.
	del := func(at time.Time) {
		t.Helper()
		if _, err := e.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("dst"), Key: aws.String("k")}, replicaHeaders(at)); err != nil {
			t.Fatal(err)
		}
	}
	del(t0)
	if _, err := e.store.Head(ctx, "dst", "k"); err != nil {
		t.Fatalf("an older delete removed the object: %v", err)
	}
	del(t0.Add(2 * time.Second))
	if _, err := e.store.Head(ctx, "dst", "k"); !errors.Is(err, cryptostore.ErrNoSuchKey) {
		t.Fatalf("a newer delete left the object: %v", err)
	}
}

// TestReplicaHeadersMustBeSigned: a replica header added after signing is
// refused, not honoured.
func TestReplicaHeadersMustBeSigned(t *testing.T) {
	e := newReplEnv(t)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "dst", ""); err != nil {
		t.Fatal(err)
	}
	body := []byte("x")
	req, err := http.NewRequest(http.MethodPut, e.srv.URL+"/dst/k", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	err = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}, req,
		hex.EncodeToString(sum[:]), "s3", testRegion, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(s3replica.HeaderSourceMtime, s3replica.FormatSourceTime(time.Now()))
	req.Header.Set(s3replica.HeaderSourceRegion, "ap-south-1")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned replica headers: status %d, want 403", resp.StatusCode)
	}
	if _, err := e.store.Head(ctx, "dst", "k"); !errors.Is(err, cryptostore.ErrNoSuchKey) {
		t.Fatalf("the refused replica was stored: %v", err)
	}
}
