package s3

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// body opens the request's payload, verifying as it streams.
func (q *request) body(opts ...sigv4.BodyOption) (*sigv4.Payload, error) {
	p, err := q.auth.Body(q.r, opts...)
	if err != nil {
		return nil, err
	}
	q.payload = p
	return p, nil
}

// readSmallBody reads a whole configuration body of at most limit bytes.
// It returns only once the payload has been verified to its end.
func (q *request) readSmallBody(limit int64) ([]byte, error) {
	p, err := q.body()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, s3err.ErrMalformedXML.WithMessage("The XML you provided was larger than the maximum of " + strconv.FormatInt(limit, 10) + " bytes allowed.")
	}
	if !p.Verified() {
		return nil, s3err.ErrIncompleteBody
	}
	return data, nil
}

// writeXML answers 200 with an XML document.
func (q *request) writeXML(v any) error {
	out, err := s3xml.Marshal(v)
	if err != nil {
		return err
	}
	q.writeXMLBytes(out)
	return nil
}

func (q *request) writeXMLBytes(doc []byte) {
	hd := q.w.Header()
	hd["Content-Type"] = []string{"application/xml"}
	hd["Content-Length"] = []string{strconv.Itoa(len(doc))}
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		q.w.Write(doc)
	}
}

func (q *request) noContent() error {
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (q *request) ok() error {
	q.w.Header()["Content-Length"] = []string{"0"}
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// ---- service

func listBuckets(q *request) error {
	bs, err := q.h.store.ListBuckets(q.ctx)
	if err != nil {
		return err
	}
	prefix := q.query.Get("prefix")
	after := ""
	if tok := q.query.Get("continuation-token"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return s3err.ErrInvalidArgument.WithMessage("The continuation token provided is incorrect.")
		}
		after = string(raw)
	}
	limit := 10000
	if s := q.query.Get("max-buckets"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return s3err.ErrInvalidArgument.WithMessage("max-buckets must be an integer between 1 and 10000.")
		}
		limit = n
	}
	// bucket-region keeps the buckets of one region, as AWS's ListBuckets
	// does (every bucket of a sealfs is in its region).
	region, byRegion := q.query["bucket-region"]
	res := s3xml.ListAllMyBucketsResult{Owner: q.h.owner, Prefix: prefix}
	for _, b := range bs {
		if !strings.HasPrefix(b.Name, prefix) || b.Name <= after || (byRegion && b.Region != region[0]) {
			continue
		}
		if len(res.Buckets) == limit {
			res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.Buckets[limit-1].Name))
			break
		}
		res.Buckets = append(res.Buckets, s3xml.Bucket{Name: b.Name, CreationDate: s3xml.NewTime(b.Created), BucketRegion: b.Region})
	}
	return q.writeXML(res)
}

// ---- buckets

func createBucket(q *request) error {
	if err := cryptostore.ValidBucketName(q.bucket); err != nil {
		return s3err.ErrInvalidBucketName.Wrap(err)
	}
	if route, ok := cryptostore.ReservedBucketName(q.bucket); ok {
		return s3err.ErrInvalidBucketName.WithMessage("The bucket name " + q.bucket + " is reserved: sealfs serves " + route + " there.")
	}
	data, err := q.readSmallBody(64 << 10)
	if err != nil {
		return err
	}
	region := q.h.region
	if len(bytes.TrimSpace(data)) > 0 {
		var cfg s3xml.CreateBucketConfiguration
		if err := s3xml.DecodeBytes(data, &cfg); err != nil {
			return err
		}
		if lc := cfg.LocationConstraint; lc != "" && lc != region {
			return s3err.ErrIllegalLocationConstraint.WithMessage("The " + lc + " location constraint is incompatible for the region specific endpoint this request was sent to (" + region + ").")
		}
	}
	if err := q.h.store.CreateBucket(q.ctx, q.bucket, region); err != nil {
		// AWS: "Amazon S3 returns this error [BucketAlreadyOwnedByYou]
		// in all AWS Regions except in the North Virginia Region. For
		// legacy compatibility, if you re-create an existing bucket that
		// you already own in the North Virginia Region, Amazon S3 returns
		// 200 OK". Every bucket here belongs to the endpoint's one owner.
		if !errors.Is(err, cryptostore.ErrBucketExists) || region != "us-east-1" {
			return err
		}
	}
	q.w.Header()["Location"] = []string{"/" + q.bucket}
	return q.ok()
}

func headBucket(q *request) error {
	b, err := q.h.store.GetBucket(q.ctx, q.bucket)
	if err != nil {
		return err
	}
	q.w.Header()["X-Amz-Bucket-Region"] = []string{b.Region}
	return q.ok()
}

func deleteBucket(q *request) error {
	if err := q.h.store.DeleteBucket(q.ctx, q.bucket); err != nil {
		return err
	}
	return q.noContent()
}

func getBucketLocation(q *request) error {
	b, err := q.h.store.GetBucket(q.ctx, q.bucket)
	if err != nil {
		return err
	}
	region := b.Region
	if region == "us-east-1" {
		region = "" // S3 answers an empty LocationConstraint for us-east-1
	}
	return q.writeXML(s3xml.LocationConstraint{Region: region})
}

func getBucketVersioning(q *request) error {
	if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
		return err
	}
	// sealfs keeps one version per key: the bucket was never versioned.
	return q.writeXML(s3xml.VersioningConfiguration{})
}

func putBucketVersioning(q *request) error {
	data, err := q.readSmallBody(64 << 10)
	if err != nil {
		return err
	}
	var cfg s3xml.VersioningConfiguration
	if err := s3xml.DecodeBytes(data, &cfg); err != nil {
		return err
	}
	if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
		return err
	}
	return s3err.ErrNotImplemented.WithMessage("sealfs keeps one version of each object: bucket versioning cannot be turned on.")
}

// ---- default encryption

// errOnlyKMS answers a default-encryption configuration sealfs cannot honour
// (design rule 1).
func errOnlyKMS(detail string) error {
	return s3err.ErrInvalidArgument.WithMessage(detail + " sealfs supports only SSE-KMS (aws:kms) with its service-managed key: send SSEAlgorithm aws:kms without KMSMasterKeyID.")
}

func putBucketEncryption(q *request) error {
	data, err := q.readSmallBody(64 << 10)
	if err != nil {
		return err
	}
	var cfg s3xml.ServerSideEncryptionConfiguration
	if err := s3xml.DecodeBytes(data, &cfg); err != nil {
		return err
	}
	if len(cfg.Rules) != 1 {
		return s3err.ErrMalformedXML.WithMessage("A ServerSideEncryptionConfiguration must have exactly one Rule.")
	}
	// BucketKeyEnabled is accepted and ignored: every object has its own
	// data key from the KMS either way.
	def := cfg.Rules[0].ApplyServerSideEncryptionByDefault
	if def.SSEAlgorithm != s3xml.SSEAlgorithmKMS {
		return errOnlyKMS("SSEAlgorithm " + strconv.Quote(def.SSEAlgorithm) + " is not supported.")
	}
	if def.KMSMasterKeyID != "" {
		return errOnlyKMS("A KMSMasterKeyID cannot be chosen.")
	}
	if err := q.h.store.SetBucketEncryption(q.ctx, q.bucket, true); err != nil {
		return err
	}
	return q.ok()
}

func getBucketEncryption(q *request) error {
	b, err := q.h.store.GetBucket(q.ctx, q.bucket)
	if err != nil {
		return err
	}
	if !b.EncryptionOn {
		return s3err.ErrServerSideEncryptionConfigurationNotFound
	}
	off := false
	return q.writeXML(s3xml.ServerSideEncryptionConfiguration{Rules: []s3xml.ServerSideEncryptionRule{{
		ApplyServerSideEncryptionByDefault: &s3xml.ServerSideEncryptionByDefault{SSEAlgorithm: s3xml.SSEAlgorithmKMS},
		BucketKeyEnabled:                   &off,
	}}})
}

func deleteBucketEncryption(q *request) error {
	if err := q.h.store.SetBucketEncryption(q.ctx, q.bucket, false); err != nil {
		return err
	}
	return q.noContent()
}

// bucketSealed: a write into a bucket with default encryption.
func bucketSealed(q *request) bool {
	b, err := q.h.store.GetBucket(q.ctx, q.bucket)
	return err == nil && b.EncryptionOn
}

// objectSealed: a read of an encrypted object.
func objectSealed(q *request) bool {
	if checkKey(q.key) != nil {
		return false
	}
	obj, err := q.h.store.Head(q.ctx, q.bucket, q.key)
	return err == nil && obj.Encryption != nil
}
