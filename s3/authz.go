package s3

// Authorization: which user signed a request, and whether its policy
// allows what the request asks. The admin (the daemon's credentials,
// Config.Credentials) is allowed everything; any other access key is a
// user's (cryptostore.Principal), and every request it signs is evaluated
// against the user's policy right after its signature is checked, before
// anything about a bucket or an object is looked at. The request's context
// then carries the user (cryptostore.WithCaller) so that the store checks
// the uses of the bucket's key the request makes: kms:Decrypt to read an
// encrypted object, kms:GenerateDataKey to write into an encrypting bucket.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
	"github.com/sealfs/sealfs/s3/s3err"
)

// resourceKind says what ARN an action is evaluated on.
type resourceKind uint8

const (
	resService resourceKind = iota // arn:aws:s3:::*
	resBucket                      // arn:aws:s3:::BUCKET
	resObject                      // arn:aws:s3:::BUCKET/KEY
)

// opAction is the IAM action of an operation and what it acts on; listing
// says the request carries s3:prefix.
type opAction struct {
	action  string
	res     resourceKind
	listing bool
}

// opActions maps every operation (ops.go) to the action AWS evaluates for
// it. Operations not here are evaluated as s3:<operation> on the bucket,
// or on the object when a key is named.
var opActions = map[string]opAction{
	"ListBuckets":             {action: "s3:ListAllMyBuckets", res: resService},
	"HeadBucket":              {action: "s3:ListBucket", res: resBucket},
	"ListObjects":             {action: "s3:ListBucket", res: resBucket, listing: true},
	"ListObjectsV2":           {action: "s3:ListBucket", res: resBucket, listing: true},
	"ListObjectVersions":      {action: "s3:ListBucketVersions", res: resBucket, listing: true},
	"ListMultipartUploads":    {action: "s3:ListBucketMultipartUploads", res: resBucket, listing: true},
	"CreateBucket":            {action: "s3:CreateBucket", res: resBucket},
	"DeleteBucket":            {action: "s3:DeleteBucket", res: resBucket},
	"GetBucketLocation":       {action: "s3:GetBucketLocation", res: resBucket},
	"GetBucketVersioning":     {action: "s3:GetBucketVersioning", res: resBucket},
	"PutBucketVersioning":     {action: "s3:PutBucketVersioning", res: resBucket},
	"GetBucketEncryption":     {action: "s3:GetEncryptionConfiguration", res: resBucket},
	"PutBucketEncryption":     {action: "s3:PutEncryptionConfiguration", res: resBucket},
	"DeleteBucketEncryption":  {action: "s3:PutEncryptionConfiguration", res: resBucket},
	"GetBucketReplication":    {action: "s3:GetReplicationConfiguration", res: resBucket},
	"PutBucketReplication":    {action: "s3:PutReplicationConfiguration", res: resBucket},
	"DeleteBucketReplication": {action: "s3:PutReplicationConfiguration", res: resBucket},
	"GetBucketAcl":            {action: "s3:GetBucketAcl", res: resBucket},
	"GetObjectAcl":            {action: "s3:GetObjectAcl", res: resObject},
	"GetObject":               {action: "s3:GetObject", res: resObject},
	"HeadObject":              {action: "s3:GetObject", res: resObject},
	"PutObject":               {action: "s3:PutObject", res: resObject},
	"CopyObject":              {action: "s3:PutObject", res: resObject},
	"CreateMultipartUpload":   {action: "s3:PutObject", res: resObject},
	"UploadPart":              {action: "s3:PutObject", res: resObject},
	"UploadPartCopy":          {action: "s3:PutObject", res: resObject},
	"CompleteMultipartUpload": {action: "s3:PutObject", res: resObject},
	"AbortMultipartUpload":    {action: "s3:AbortMultipartUpload", res: resObject},
	"ListParts":               {action: "s3:ListMultipartUploadParts", res: resObject},
	"DeleteObject":            {action: "s3:DeleteObject", res: resObject},
	"PutObjectReplica":        {action: "s3:ReplicateObject", res: resObject},
	"DeleteObjectReplica":     {action: "s3:ReplicateDelete", res: resObject},
}

// principal finds who signed the request: nil for the admin.
func (h *Handler) principal(ctx context.Context, accessKey string) (*cryptostore.Principal, error) {
	if _, ok := h.admin(accessKey); ok {
		return nil, nil
	}
	p, err := h.store.Principal(ctx, accessKey)
	if err != nil {
		// The key verified a moment ago and is gone now (deleted or made
		// inactive in between): refused like an unknown key.
		return nil, s3err.ErrInvalidAccessKeyID.Wrap(err)
	}
	return p, nil
}

// lookupSecret is the verifier's lookup: the admin's secret, or a user's
// access key's.
func (h *Handler) lookupSecret(accessKey string) (string, bool) {
	if sk, ok := h.admin(accessKey); ok {
		return sk, true
	}
	p, err := h.store.Principal(context.Background(), accessKey)
	if err != nil {
		if !errors.Is(err, cryptostore.ErrNoSuchAccessKey) && !errors.Is(err, cryptostore.ErrAccessKeyInactive) {
			h.log.Error("s3: looking up an access key failed", "access_key", accessKey, "err", err)
		}
		return "", false
	}
	return p.Secret, true
}

// sourceIP is aws:SourceIp: the peer's address (never a header's).
func sourceIP(r string) netip.Addr {
	host, _, err := net.SplitHostPort(r)
	if err != nil {
		host = r
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// authorize evaluates the request's action against the signer's policy,
// and on success makes q.ctx carry the caller for the store's key checks.
// It reads nothing but the request.
func (q *request) authorize() error {
	p, err := q.h.principal(q.ctx, q.auth.AccessKey)
	if err != nil {
		return err
	}
	if p == nil {
		return nil // the admin
	}
	q.caller = &cryptostore.Caller{Principal: p, SecureTransport: q.r.TLS != nil, SourceIP: sourceIP(q.r.RemoteAddr)}
	q.ctx = cryptostore.WithCaller(q.ctx, q.caller)
	if q.op == "DeleteObjects" {
		return nil // each key is checked as s3:DeleteObject (deleteObjects)
	}
	oa, ok := opActions[q.op]
	if !ok {
		oa = opAction{action: "s3:" + strings.ReplaceAll(q.op, "-", ""), res: resBucket}
		if q.key != "" {
			oa.res = resObject
		}
	}
	req := iam.Request{Action: oa.action}
	switch oa.res {
	case resService:
		req.Resource = "arn:aws:s3:::*"
	case resBucket:
		req.Resource = iam.S3BucketARN(q.bucket)
	case resObject:
		req.Resource = iam.S3ObjectARN(q.bucket, q.key)
	}
	if oa.listing {
		req.Prefix, req.HasPrefix = q.query.Get("prefix"), true
	}
	if err := q.check(&req); err != nil {
		return err
	}
	if q.op == "CopyObject" || q.op == "UploadPartCopy" {
		b, k, err := copySource(q.r.Header.Get("X-Amz-Copy-Source"))
		if err != nil {
			return err
		}
		return q.check(&iam.Request{Action: "s3:GetObject", Resource: iam.S3ObjectARN(b, k)})
	}
	return nil
}

// check evaluates r (its context filled in from the request) for the
// request's user; the admin passes.
func (q *request) check(r *iam.Request) error {
	if q.caller == nil {
		return nil
	}
	r.SecureTransport, r.SourceIP = q.caller.SecureTransport, q.caller.SourceIP
	return q.caller.Principal.Check(r)
}

// accessDenied is the S3 answer to a policy's refusal: AccessDenied with
// AWS's message naming the user, the action and the resource.
func accessDenied(e *iam.AccessDeniedError) *s3err.Error {
	return s3err.ErrAccessDenied.WithMessage(e.Error()).Wrap(e)
}
