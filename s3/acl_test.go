package s3_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// TestGetACLs: the single owner's FULL_CONTROL is every bucket's and
// object's ACL (what s3cmd info and SDKs ask); a missing object is
// NoSuchKey; setting an ACL stays NotImplemented, and that client error is
// not logged as a server error.
func TestGetACLs(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("acls", true)
	e.put("acls", "k", []byte("x"))
	ctx := e.ctx()

	check := func(what string, owner *types.Owner, grants []types.Grant) {
		t.Helper()
		if owner == nil || aws.ToString(owner.ID) == "" {
			t.Fatalf("%s: no owner", what)
		}
		if len(grants) != 1 || grants[0].Permission != types.PermissionFullControl || grants[0].Grantee == nil ||
			grants[0].Grantee.Type != types.TypeCanonicalUser || aws.ToString(grants[0].Grantee.ID) != aws.ToString(owner.ID) {
			t.Fatalf("%s: grants %+v, want the owner's FULL_CONTROL", what, grants)
		}
	}
	b, err := e.client.GetBucketAcl(ctx, &awss3.GetBucketAclInput{Bucket: aws.String("acls")})
	if err != nil {
		t.Fatal(err)
	}
	check("bucket", b.Owner, b.Grants)
	o, err := e.client.GetObjectAcl(ctx, &awss3.GetObjectAclInput{Bucket: aws.String("acls"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	check("object", o.Owner, o.Grants)
	if aws.ToString(o.Owner.ID) != aws.ToString(b.Owner.ID) {
		t.Fatalf("object owner %s, bucket owner %s", aws.ToString(o.Owner.ID), aws.ToString(b.Owner.ID))
	}

	var ae smithy.APIError
	_, err = e.client.GetObjectAcl(ctx, &awss3.GetObjectAclInput{Bucket: aws.String("acls"), Key: aws.String("missing")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchKey" {
		t.Fatalf("ACL of a missing object: %v", err)
	}
	_, err = e.client.GetBucketAcl(ctx, &awss3.GetBucketAclInput{Bucket: aws.String("nobucket")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchBucket" {
		t.Fatalf("ACL of a missing bucket: %v", err)
	}
	_, err = e.client.PutObjectAcl(ctx, &awss3.PutObjectAclInput{Bucket: aws.String("acls"), Key: aws.String("k"), ACL: types.ObjectCannedACLPublicRead})
	if !errors.As(err, &ae) || ae.ErrorCode() != "NotImplemented" {
		t.Fatalf("PutObjectAcl: %v", err)
	}
	if logs := e.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("client errors logged at error level:\n%s", logs)
	}
}
