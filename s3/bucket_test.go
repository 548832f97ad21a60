package s3_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sealfs/sealfs/kms"
)

func TestBucketLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.client
	if _, err := c.CreateBucket(e.ctx(), &awss3.CreateBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	// In us-east-1 AWS answers 200 to re-creating a bucket one owns
	// (BucketAlreadyOwnedByYou elsewhere: TestCreateOwnedBucketByRegion).
	if _, err := c.CreateBucket(e.ctx(), &awss3.CreateBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatalf("re-creating an owned bucket in us-east-1: %v", err)
	}
	var err error
	_, err = c.CreateBucket(e.ctx(), &awss3.CreateBucketInput{Bucket: aws.String("beta"), CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"}})
	wantCode(t, err, "IllegalLocationConstraintException")
	// The SDK refuses bad names itself; send them raw.
	for _, name := range []string{"Upper", "ab", "bad..dots", "192.168.1.1", "-dash"} {
		wantError(t, e.raw(http.MethodPut, e.https.URL, "/"+name, nil, nil), 400, "InvalidBucketName")
	}
	// A body naming this region is fine.
	resp := e.raw(http.MethodPut, e.https.URL, "/gamma", nil, []byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "/gamma" {
		t.Fatalf("CreateBucket with LocationConstraint: %d %v", resp.StatusCode, resp.Header)
	}
	wantError(t, e.raw(http.MethodPut, e.https.URL, "/delta", nil, []byte("<CreateBucketConfiguration>")), 400, "MalformedXML")

	if _, err := c.HeadBucket(e.ctx(), &awss3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	resp = e.raw(http.MethodHead, e.https.URL, "/nosuch", nil, nil)
	wantError(t, resp, 404, "")
	if resp.Header.Get("Content-Length") != "0" && resp.ContentLength > 0 {
		t.Errorf("HEAD 404 has a body")
	}
	lb, err := c.ListBuckets(e.ctx(), &awss3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	if strings.Join(names, ",") != "alpha,gamma" || aws.ToString(lb.Owner.ID) == "" {
		t.Fatalf("ListBuckets: %v owner %+v", names, lb.Owner)
	}
	lb, err = c.ListBuckets(e.ctx(), &awss3.ListBucketsInput{Prefix: aws.String("g")})
	if err != nil || len(lb.Buckets) != 1 {
		t.Fatalf("ListBuckets with prefix: %v %v", lb, err)
	}
	loc, err := c.GetBucketLocation(e.ctx(), &awss3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("GetBucketLocation: %v %v", loc.LocationConstraint, err)
	}
	ver, err := c.GetBucketVersioning(e.ctx(), &awss3.GetBucketVersioningInput{Bucket: aws.String("alpha")})
	if err != nil || ver.Status != "" {
		t.Fatalf("GetBucketVersioning: %+v %v", ver, err)
	}
	_, err = c.PutBucketVersioning(e.ctx(), &awss3.PutBucketVersioningInput{Bucket: aws.String("alpha"), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	wantCode(t, err, "NotImplemented")
	_, err = c.GetBucketPolicy(e.ctx(), &awss3.GetBucketPolicyInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NoSuchBucketPolicy")

	e.put("alpha", "k", []byte("x"))
	_, err = c.DeleteBucket(e.ctx(), &awss3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketNotEmpty")
	if _, err := c.DeleteObject(e.ctx(), &awss3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(e.ctx(), &awss3.DeleteBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteBucket(e.ctx(), &awss3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")})
	wantCode(t, err, "NoSuchBucket")
}

func TestBucketEncryptionConfiguration(t *testing.T) {
	e := newEnv(t)
	c := e.client
	e.mkBucket("enc", false)
	e.put("enc", "before", []byte("written while plain"))

	_, err := c.GetBucketEncryption(e.ctx(), &awss3.GetBucketEncryptionInput{Bucket: aws.String("enc")})
	wantCode(t, err, "ServerSideEncryptionConfigurationNotFoundError")
	for _, rule := range []types.ServerSideEncryptionRule{
		{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}},
		{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("arn:aws:kms:us-east-1:000000000000:key/mine")}},
		{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKmsDsse}},
	} {
		_, err := c.PutBucketEncryption(e.ctx(), &awss3.PutBucketEncryptionInput{Bucket: aws.String("enc"),
			ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{rule}}})
		wantCode(t, err, "InvalidArgument")
		if !strings.Contains(err.Error(), "service-managed key") {
			t.Errorf("refusal does not say why: %v", err)
		}
	}
	_, err = c.PutBucketEncryption(e.ctx(), &awss3.PutBucketEncryptionInput{Bucket: aws.String("enc"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms},
			BucketKeyEnabled:                   aws.Bool(true),
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBucketEncryption(e.ctx(), &awss3.GetBucketEncryptionInput{Bucket: aws.String("enc")})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.ServerSideEncryptionConfiguration.Rules; len(r) != 1 || r[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != types.ServerSideEncryptionAwsKms {
		t.Fatalf("GetBucketEncryption: %+v", r)
	}

	// Objects written now are encrypted, each response says so with the
	// same key ARN; the earlier one is not (rules 3 and 5).
	put := e.put("enc", "after", []byte("written while encrypting"))
	arn := aws.ToString(put.SSEKMSKeyId)
	if put.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.HasPrefix(arn, "arn:aws:kms:us-east-1:") {
		t.Fatalf("PutObject SSE %q %q", put.ServerSideEncryption, arn)
	}
	g, err := c.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("enc"), Key: aws.String("after")})
	if err != nil {
		t.Fatal(err)
	}
	g.Body.Close()
	if g.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(g.SSEKMSKeyId) != arn {
		t.Fatalf("GetObject SSE %q %q", g.ServerSideEncryption, aws.ToString(g.SSEKMSKeyId))
	}
	h, err := c.HeadObject(e.ctx(), &awss3.HeadObjectInput{Bucket: aws.String("enc"), Key: aws.String("before")})
	if err != nil {
		t.Fatal(err)
	}
	if h.ServerSideEncryption != "" {
		t.Fatalf("object written before encryption was turned on reports %q", h.ServerSideEncryption)
	}
	// Copying the old object in place re-encrypts it (copies follow the
	// destination bucket).
	cp, err := c.CopyObject(e.ctx(), &awss3.CopyObjectInput{Bucket: aws.String("enc"), Key: aws.String("before"), CopySource: aws.String("enc/before"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms})
	if err != nil {
		t.Fatal(err)
	}
	if cp.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(cp.SSEKMSKeyId) != arn {
		t.Fatalf("CopyObject SSE %q %q", cp.ServerSideEncryption, aws.ToString(cp.SSEKMSKeyId))
	}
	// A KMS key id header other than the bucket's own is refused; the
	// bucket's own is accepted.
	_, err = c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("k2"), Body: strings.NewReader("x"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("arn:aws:kms:us-east-1:000000000000:key/other")})
	wantCode(t, err, "InvalidArgument")
	if _, err = c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("k2"), Body: strings.NewReader("x"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}

	// Delete the configuration: 204, even twice; new objects are plain.
	for i := 0; i < 2; i++ {
		resp := e.raw(http.MethodDelete, e.https.URL, "/enc?encryption", nil, nil)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DeleteBucketEncryption: %d", resp.StatusCode)
		}
	}
	_, err = c.GetBucketEncryption(e.ctx(), &awss3.GetBucketEncryptionInput{Bucket: aws.String("enc")})
	wantCode(t, err, "ServerSideEncryptionConfigurationNotFoundError")
	// Rule 4: asking for encryption in a plain bucket changes nothing.
	out, err := c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("asked"), Body: strings.NewReader("x"), ServerSideEncryption: types.ServerSideEncryptionAes256})
	if err != nil {
		t.Fatal(err)
	}
	if out.ServerSideEncryption != "" {
		t.Fatalf("PUT with AES256 into a plain bucket answered SSE %q", out.ServerSideEncryption)
	}
	if obj, err := e.store.Head(e.ctx(), "enc", "asked"); err != nil || obj.Encryption != nil {
		t.Fatalf("object asked to be encrypted in a plain bucket: %+v %v", obj, err)
	}
	if obj, err := e.store.Head(e.ctx(), "enc", "after"); err != nil || obj.Encryption == nil {
		t.Fatalf("turning encryption off changed an encrypted object: %v", err)
	}
	// SSE-C is refused outright.
	_, err = c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("enc"), Key: aws.String("c"), Body: strings.NewReader("x"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="), SSECustomerKeyMD5: aws.String("x")})
	wantCode(t, err, "InvalidArgument")
}

func TestDisabledKey(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("locked", true)
	put := e.put("locked", "k", []byte("secret data"))
	arn := aws.ToString(put.SSEKMSKeyId)
	b, err := e.store.GetBucket(e.ctx(), "locked")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.kms.DisableKey(context.Background(), &kms.KeyRequest{KeyID: b.MasterKeyID}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("locked"), Key: aws.String("k")})
	wantCode(t, err, "KMS.DisabledException")
	if !strings.Contains(err.Error(), arn+" is disabled") {
		t.Errorf("message does not name the key: %v", err)
	}
	_, err = e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("locked"), Key: aws.String("k2"), Body: strings.NewReader("more")})
	wantCode(t, err, "KMS.DisabledException")
	resp := e.raw(http.MethodGet, e.https.URL, "/locked/k", nil, nil)
	wantError(t, resp, 400, "KMS.DisabledException")
	if err := e.kms.EnableKey(context.Background(), &kms.KeyRequest{KeyID: b.MasterKeyID}); err != nil {
		t.Fatal(err)
	}
	if got := e.get("locked", "k"); string(got) != "secret data" {
		t.Fatalf("after EnableKey: %q", got)
	}
}

func TestVirtualHostAddressing(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("vhost", false)
	// The SDK in virtual-host style sends Host: vhost.example.com (which
	// httptest's certificate covers); the test dials the server whatever
	// the host name.
	c := e.newClient("https://"+testDomain, func(o *awss3.Options) {
		o.UsePathStyle = false
		addr := strings.TrimPrefix(e.https.URL, "https://")
		tr := e.https.Client().Transport.(*http.Transport).Clone()
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
		o.HTTPClient = &http.Client{Transport: tr}
	})
	if _, err := c.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b.txt"), Body: strings.NewReader("virtual")}); err != nil {
		t.Fatal(err)
	}
	g, err := c.GetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if string(body) != "virtual" {
		t.Fatalf("virtual-host GET: %q", body)
	}
	l, err := c.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	if err != nil || len(l.Contents) != 1 {
		t.Fatalf("virtual-host list: %v %v", l, err)
	}
	// Path style keeps working beside it.
	if got := e.get("vhost", "a/b.txt"); !bytes.Equal(got, []byte("virtual")) {
		t.Fatalf("path-style GET: %q", got)
	}
}
