package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sealfs/sealfs/s3/s3replica"
)

// Policies for TestUserMultipartAndReplicaWrites.
const (
	// uploaderPolicy writes both buckets with the key, except under
	// enc/locked/, and may not write replicas.
	uploaderPolicy = `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":["arn:aws:s3:::enc/*","arn:aws:s3:::plainb/*"]},
  {"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"arn:aws:kms:*:*:key/*"},
  {"Effect":"Deny","Action":"s3:PutObject","Resource":"arn:aws:s3:::enc/locked/*"}]}`
	// nokeyPolicy may write objects and replicas, but not use any key.
	nokeyPolicy = `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:PutObject","s3:*MultipartUpload*","s3:ReplicateObject"],"Resource":["arn:aws:s3:::enc/*","arn:aws:s3:::plainb/*"]}]}`
	// replicatorPolicy writes replicas into enc with its key, and nothing else.
	replicatorPolicy = `{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"s3:ReplicateObject","Resource":"arn:aws:s3:::enc/*"},
  {"Effect":"Allow","Action":"kms:GenerateDataKey","Resource":"arn:aws:kms:*:*:key/*"}]}`
)

// TestUserMultipartAndReplicaWrites: users' own access keys with
// aws-sdk-go-v2 for multipart uploads and replica writes. A user with
// s3:PutObject and the key's kms:GenerateDataKey and kms:Decrypt uploads
// in parts into an encrypting bucket; a Deny on a prefix refuses
// CreateMultipartUpload there; a user without key permission is refused
// CreateMultipartUpload (kms:GenerateDataKey) in the encrypting bucket and
// UploadPart and CompleteMultipartUpload (kms:Decrypt) of an upload the
// admin started and filled, which stays whole for a user who may finish it, while the
// same user uploads in parts into a plain bucket. A replica PUT (sealfs's
// replica headers) needs s3:ReplicateObject, not s3:PutObject, and the
// key's kms:GenerateDataKey.
func TestUserMultipartAndReplicaWrites(t *testing.T) {
	d := startDaemon(t, DaemonOptions{})
	admin := d.S3()
	ctx := t.Context()
	for _, b := range []string{"enc", "plainb"} {
		if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	sealfsAdmin(t, d, "", "bucket", "encryption", "set", "enc")
	dir := t.TempDir()
	as := map[string]*awss3.Client{}
	for name, pol := range map[string]string{"uploader": uploaderPolicy, "nokey": nokeyPolicy, "replicator": replicatorPolicy} {
		file := filepath.Join(dir, name+".json")
		if err := os.WriteFile(file, []byte(pol), 0o600); err != nil {
			t.Fatal(err)
		}
		sealfsAdmin(t, d, "", "user", "create", name, "--policy", file)
		ak, sk := newAccessKey(t, d, name)
		as[name] = awss3.New(admin.Options(), func(o *awss3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
		})
	}
	part1, part2 := pattern(5<<20, 1), pattern(1000, 2)
	want := append(append([]byte(nil), part1...), part2...)

	// denied checks err is AccessDenied naming action.
	denied := func(what string, err error, action string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(ae.ErrorMessage(), "perform: "+action+" ") {
			t.Errorf("%s: %v, want AccessDenied naming %s", what, err, action)
		}
	}
	// uploadParts uploads the parts of upload id of bucket/key as c.
	uploadParts := func(c *awss3.Client, bucket, key, id string) ([]types.CompletedPart, error) {
		var parts []types.CompletedPart
		for i, p := range [][]byte{part1, part2} {
			n := int32(i + 1)
			out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: &id, PartNumber: &n, Body: bytes.NewReader(p)})
			if err != nil {
				return nil, err
			}
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: &n})
		}
		return parts, nil
	}
	complete := func(c *awss3.Client, bucket, key, id string, parts []types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	upload := func(c *awss3.Client, bucket, key, id string) error {
		parts, err := uploadParts(c, bucket, key, id)
		if err != nil {
			return err
		}
		return complete(c, bucket, key, id, parts)
	}
	multipart := func(c *awss3.Client, bucket, key string) error {
		out, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return err
		}
		return upload(c, bucket, key, *out.UploadId)
	}
	readBack := func(bucket, key string, sse bool) {
		t.Helper()
		g, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatalf("admin GET %s/%s: %v", bucket, key, err)
		}
		got, _ := io.ReadAll(g.Body)
		g.Body.Close()
		if !bytes.Equal(got, want) && !bytes.Equal(got, []byte("replica")) {
			t.Fatalf("%s/%s reads back %d bytes, not what was written", bucket, key, len(got))
		}
		if (g.ServerSideEncryption == types.ServerSideEncryptionAwsKms) != sse {
			t.Fatalf("%s/%s: server-side encryption %q", bucket, key, g.ServerSideEncryption)
		}
	}
	absent := func(bucket, key string) {
		t.Helper()
		if _, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil {
			t.Fatalf("%s/%s exists after a refused write", bucket, key)
		}
	}

	// Allowed: the uploader, into the encrypting bucket.
	if err := multipart(as["uploader"], "enc", "big.bin"); err != nil {
		t.Fatalf("uploader multipart into enc: %v", err)
	}
	readBack("enc", "big.bin", true)
	// A Deny on a prefix wins over the Allow on the bucket.
	_, err := as["uploader"].CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("locked/x")})
	denied("uploader CreateMultipartUpload enc/locked/x", err, "s3:PutObject")

	// Without key permission: no upload into the encrypting bucket ...
	_, err = as["nokey"].CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("nk.bin")})
	denied("nokey CreateMultipartUpload enc", err, "kms:GenerateDataKey")
	absent("enc", "nk.bin")
	// ... nor parts or completion of one the admin started, ...
	cr, err := admin.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("enc"), Key: aws.String("handoff.bin")})
	if err != nil {
		t.Fatal(err)
	}
	one := int32(1)
	_, err = as["nokey"].UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("enc"), Key: aws.String("handoff.bin"), UploadId: cr.UploadId, PartNumber: &one, Body: bytes.NewReader(part1)})
	denied("nokey UploadPart enc", err, "kms:Decrypt")
	parts, err := uploadParts(admin, "enc", "handoff.bin", *cr.UploadId)
	if err != nil {
		t.Fatal(err)
	}
	denied("nokey CompleteMultipartUpload enc", complete(as["nokey"], "enc", "handoff.bin", *cr.UploadId, parts), "kms:Decrypt")
	absent("enc", "handoff.bin")
	// ... which the uploader can finish whole.
	if err := complete(as["uploader"], "enc", "handoff.bin", *cr.UploadId, parts); err != nil {
		t.Fatalf("uploader finishing the admin's upload: %v", err)
	}
	readBack("enc", "handoff.bin", true)
	// The same user uploads in parts into a plain bucket.
	if err := multipart(as["nokey"], "plainb", "p.bin"); err != nil {
		t.Fatalf("nokey multipart into plainb: %v", err)
	}
	readBack("plainb", "p.bin", false)

	// Replica writes: s3:ReplicateObject, and the key's GenerateDataKey.
	replicaPut := func(c *awss3.Client, key string) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String(key), Body: strings.NewReader("replica")},
			awss3.WithAPIOptions(
				smithyhttp.SetHeaderValue(s3replica.HeaderSourceMtime, s3replica.FormatSourceTime(time.Now())),
				smithyhttp.SetHeaderValue(s3replica.HeaderSourceRegion, "eu-west-1"),
			))
		return err
	}
	if err := replicaPut(as["replicator"], "r.txt"); err != nil {
		t.Fatalf("replicator replica PUT: %v", err)
	}
	h, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("r.txt")})
	if err != nil || h.ReplicationStatus != types.ReplicationStatusReplica || h.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("the replica: %+v, %v", h, err)
	}
	_, err = as["replicator"].PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("plainput.txt"), Body: strings.NewReader("x")})
	denied("replicator plain PUT", err, "s3:PutObject")
	denied("uploader replica PUT", replicaPut(as["uploader"], "r2.txt"), "s3:ReplicateObject")
	denied("nokey replica PUT", replicaPut(as["nokey"], "r3.txt"), "kms:GenerateDataKey")
	for _, key := range []string{"plainput.txt", "r2.txt", "r3.txt"} {
		absent("enc", key)
	}
}

// TestUserSecureTransportDeny: a policy whose Deny has the condition
// aws:SecureTransport=false refuses its user's requests over the
// plain-HTTP listener (AccessDenied, explicit deny) and allows them over
// HTTPS; a user without that Deny is served over plain HTTP. aws-sdk-go-v2.
func TestUserSecureTransportDeny(t *testing.T) {
	d := startS3Daemon(t, s3DaemonOptions{PlainHTTP: true})
	ctx := t.Context()
	if _, err := d.sdk().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("pub")}); err != nil {
		t.Fatal(err)
	}
	allow := `{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::pub/*"}`
	policies := map[string]string{
		"tlsonly": `{"Version":"2012-10-17","Statement":[` + allow + `,
  {"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
		"anywire": `{"Version":"2012-10-17","Statement":[` + allow + `]}`,
	}
	dir := t.TempDir()
	client := func(endpoint, ak, sk string) *awss3.Client {
		return awss3.New(d.sdkFor(endpoint).Options(), func(o *awss3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(ak, sk, "")
		})
	}
	for name, pol := range policies {
		file := filepath.Join(dir, name+".json")
		if err := os.WriteFile(file, []byte(pol), 0o600); err != nil {
			t.Fatal(err)
		}
		sealfsAdmin(t, d.Daemon, "", "user", "create", name, "--policy", file)
		ak, sk := newAccessKey(t, d.Daemon, name)
		secure, plain := client("https://"+d.S3Addr, ak, sk), client("http://"+d.httpAddr, ak, sk)
		key := aws.String(name + ".txt")
		if _, err := secure.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("pub"), Key: key, Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("%s PUT over HTTPS: %v", name, err)
		}
		if _, err := secure.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("pub"), Key: key}); err != nil {
			t.Fatalf("%s GET over HTTPS: %v", name, err)
		}
		_, getErr := plain.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("pub"), Key: key})
		_, putErr := plain.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("pub"), Key: key, Body: strings.NewReader("y")})
		for what, err := range map[string]error{"GET": getErr, "PUT": putErr} {
			var ae smithy.APIError
			if name == "anywire" && err != nil {
				t.Errorf("%s %s over plain HTTP: %v", name, what, err)
			}
			if name == "tlsonly" && (!errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || !strings.Contains(ae.ErrorMessage(), "with an explicit deny")) {
				t.Errorf("%s %s over plain HTTP: %v, want AccessDenied with an explicit deny", name, what, err)
			}
		}
	}
}
