package s3_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// userClient creates a user with policy and an access key for it, and
// returns an SDK client signing with that key (over endpoint).
func (e *env) userClient(name, policy, endpoint string) *awss3.Client {
	e.t.Helper()
	if _, err := e.store.CreateUser(e.ctx(), name, []byte(policy)); err != nil {
		e.t.Fatal(err)
	}
	k, err := e.store.CreateAccessKey(e.ctx(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.newClient(endpoint, func(o *awss3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(k.ID, k.SecretKey, "")
	})
}

// wantDenied fails unless err is AccessDenied whose message names action.
func wantDenied(t *testing.T, err error, action string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("error %v, want AccessDenied", err)
	}
	if !strings.Contains(ae.ErrorMessage(), "is not authorized to perform: "+action+" on resource: ") {
		t.Fatalf("message %q does not name %s", ae.ErrorMessage(), action)
	}
}

func getBody(c *awss3.Client, e *env, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func putBody(c *awss3.Client, e *env, bucket, key, body string) error {
	_, err := c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	return err
}

// TestUserPolicies: two users (aws-sdk-go-v2) — a read-only one without
// kms:Decrypt and one with key permission — against an encrypting bucket
// holding an encrypted and a plain object; the admin reads everything.
func TestUserPolicies(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("photos", true)
	e.put("photos", "enc.txt", []byte("encrypted"))
	if err := e.store.SetBucketEncryption(e.ctx(), "photos", false); err != nil {
		t.Fatal(err)
	}
	e.put("photos", "plain.txt", []byte("plain"))
	if err := e.store.SetBucketEncryption(e.ctx(), "photos", true); err != nil {
		t.Fatal(err)
	}
	reader := e.userClient("reader", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]}]}`, e.https.URL)
	writer := e.userClient("writer", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*"]},
		{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:*:*:key/*"}]}`, e.https.URL)

	// The read-only user: the encrypted object is refused naming
	// kms:Decrypt; the plain one reads; a PUT is refused; listing works.
	_, err := getBody(reader, e, "photos", "enc.txt")
	wantDenied(t, err, "kms:Decrypt")
	if b, err := getBody(reader, e, "photos", "plain.txt"); err != nil || string(b) != "plain" {
		t.Fatalf("reader GET plain: %q, %v", b, err)
	}
	if _, err := reader.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("enc.txt")}); err != nil {
		t.Fatalf("reader HEAD of the encrypted object: %v", err)
	}
	wantDenied(t, putBody(reader, e, "photos", "new.txt", "x"), "s3:PutObject")
	l, err := reader.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("photos")})
	if err != nil || len(l.Contents) != 2 {
		t.Fatalf("reader list: %v, %v", l, err)
	}
	// Nothing about another bucket is learnt: denied before it is looked at.
	_, err = getBody(reader, e, "no-such-bucket", "k")
	wantDenied(t, err, "s3:GetObject")
	_, err = reader.CreateBucket(e.ctx(), &awss3.CreateBucketInput{Bucket: aws.String("other")})
	wantDenied(t, err, "s3:CreateBucket")
	_, err = reader.PutBucketEncryption(e.ctx(), &awss3.PutBucketEncryptionInput{Bucket: aws.String("photos"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms}}}}})
	wantDenied(t, err, "s3:PutEncryptionConfiguration")

	// The writer with key permission reads and writes encrypted objects.
	if b, err := getBody(writer, e, "photos", "enc.txt"); err != nil || string(b) != "encrypted" {
		t.Fatalf("writer GET: %q, %v", b, err)
	}
	if err := putBody(writer, e, "photos", "new.txt", "new"); err != nil {
		t.Fatalf("writer PUT: %v", err)
	}
	// The admin reads everything.
	if b := e.get("photos", "new.txt"); string(b) != "new" {
		t.Fatalf("admin GET: %q", b)
	}
	if b := e.get("photos", "enc.txt"); string(b) != "encrypted" {
		t.Fatalf("admin GET: %q", b)
	}

	// s3:PutObject without kms:GenerateDataKey: refused naming the KMS
	// action, and nothing is stored.
	nokms := e.userClient("nokms", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, e.https.URL)
	wantDenied(t, putBody(nokms, e, "photos", "nokms.txt", "x"), "kms:GenerateDataKey")
	if _, err := e.client.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("photos"), Key: aws.String("nokms.txt")}); apiCode(err) != "NotFound" {
		t.Fatalf("the refused PUT stored something: %v", err)
	}
	// A multipart upload into the encrypting bucket is refused at its start.
	_, err = nokms.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("photos"), Key: aws.String("mp")})
	wantDenied(t, err, "kms:GenerateDataKey")
	// A copy of the encrypted object needs kms:Decrypt on its key.
	_, err = nokms.CopyObject(e.ctx(), &awss3.CopyObjectInput{Bucket: aws.String("photos"), Key: aws.String("copy"), CopySource: aws.String("photos/enc.txt")})
	wantDenied(t, err, "kms:Decrypt")

	// An access key made inactive is refused as unknown.
	us, err := e.store.GetUser(e.ctx(), "reader")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.SetAccessKeyActive(e.ctx(), us.AccessKeys[0].ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = getBody(reader, e, "photos", "plain.txt")
	wantCode(t, err, "InvalidAccessKeyId")
}

// TestUserPolicyDenyAndConditions: a Deny on a prefix wins over an Allow on
// the bucket (GET, PUT, DeleteObjects per key); a Deny when
// aws:SecureTransport is false refuses plain HTTP; s3:prefix limits a
// listing.
func TestUserPolicyDenyAndConditions(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("docs", false)
	e.put("docs", "public/a", []byte("a"))
	e.put("docs", "private/b", []byte("b"))
	const policy = `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::docs","arn:aws:s3:::docs/*"]},
		{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::docs/private/*"},
		{"Effect":"Deny","Action":"s3:ListBucket","Resource":"arn:aws:s3:::docs","Condition":{"StringLike":{"s3:prefix":"private/*"}}},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`
	ann := e.userClient("ann", policy, e.https.URL)
	if b, err := getBody(ann, e, "docs", "public/a"); err != nil || string(b) != "a" {
		t.Fatalf("GET public: %q, %v", b, err)
	}
	_, err := getBody(ann, e, "docs", "private/b")
	wantDenied(t, err, "s3:GetObject")
	if !strings.Contains(err.Error(), "with an explicit deny") {
		t.Fatalf("message does not say explicit deny: %v", err)
	}
	wantDenied(t, putBody(ann, e, "docs", "private/c", "c"), "s3:PutObject")
	if err := putBody(ann, e, "docs", "public/c", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("docs"), Prefix: aws.String("public/")}); err != nil {
		t.Fatalf("list public/: %v", err)
	}
	_, err = ann.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("docs"), Prefix: aws.String("private/")})
	wantDenied(t, err, "s3:ListBucket")

	out, err := ann.DeleteObjects(e.ctx(), &awss3.DeleteObjectsInput{Bucket: aws.String("docs"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("public/c")}, {Key: aws.String("private/b")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Deleted) != 1 || aws.ToString(out.Deleted[0].Key) != "public/c" || len(out.Errors) != 1 || aws.ToString(out.Errors[0].Code) != "AccessDenied" {
		t.Fatalf("DeleteObjects: deleted %+v, errors %+v", out.Deleted, out.Errors)
	}
	if b := e.get("docs", "private/b"); !bytes.Equal(b, []byte("b")) {
		t.Fatalf("private/b after a denied delete: %q", b)
	}
	_, err = ann.DeleteObjects(e.ctx(), &awss3.DeleteObjectsInput{Bucket: aws.String("docs"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("private/b")}}}})
	wantDenied(t, err, "s3:DeleteObject")

	// Over plain HTTP the same user is refused; the admin is not.
	plain := e.newClient(e.http.URL, func(o *awss3.Options) { o.Credentials = ann.Options().Credentials })
	_, err = getBody(plain, e, "docs", "public/a")
	wantDenied(t, err, "s3:GetObject")
	admin := e.newClient(e.http.URL)
	if b, err := getBody(admin, e, "docs", "public/a"); err != nil || string(b) != "a" {
		t.Fatalf("admin over HTTP: %q, %v", b, err)
	}
}

// TestUserPolicySourceIP: aws:SourceIp is the peer's address (the test
// client's 127.0.0.1), never a header's.
func TestUserPolicySourceIP(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("nets", false)
	e.put("nets", "k", []byte("v"))
	local := e.userClient("local", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}`, e.https.URL)
	remote := e.userClient("remote", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`, e.https.URL)
	if b, err := getBody(local, e, "nets", "k"); err != nil || string(b) != "v" {
		t.Fatalf("from 127.0.0.1 allowed to 127.0.0.0/8: %q, %v", b, err)
	}
	_, err := getBody(remote, e, "nets", "k")
	wantDenied(t, err, "s3:GetObject")
	spoofed := e.newClient(e.https.URL, func(o *awss3.Options) {
		o.Credentials = remote.Options().Credentials
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Forwarded-For", "10.1.2.3"))
	})
	_, err = getBody(spoofed, e, "nets", "k")
	wantDenied(t, err, "s3:GetObject")
}
