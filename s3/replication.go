package s3

// Cross-region replication on the S3 API: the bucket's replication
// configuration (Put/Get/DeleteBucketReplication, served by
// Config.Replication), and, on a target, the replica writes another sealfs
// region sends: a PutObject or DeleteObject carrying the sealfs replica
// headers (package s3replica; package replicate documents them). A replica is committed
// through the same store call as any PutObject, so the target bucket's own
// default encryption decides whether it is encrypted; it is stored with
// status REPLICA and refused, answered as success with
// x-sealfs-replica-skipped, when the bucket holds a newer version.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3replica"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// Replication serves a bucket's replication configuration
// (*replicate.Manager implements it; the daemon hands it over, package s3
// does not import replicate). It speaks the store's types: this package
// reads and writes S3's XML, the replication engine checks the rules.
// Errors: cryptostore.ErrNoSuchBucket, cryptostore.ErrNoReplication, and
// *cryptostore.ReplicationRuleError for rules it cannot apply.
type Replication interface {
	PutBucketReplication(ctx context.Context, bucket string, c *cryptostore.ReplicationConfig) error
	GetBucketReplication(ctx context.Context, bucket string) (*cryptostore.ReplicationConfig, error)
	DeleteBucketReplication(ctx context.Context, bucket string) error
}

// replicationOp picks the replication operations: ?replication on a bucket
// (when Config.Replication is set; otherwise the generic configuration
// answers apply), and a plain PutObject or DeleteObject that carries
// replica headers.
func replicationOp(q *request) (operation, bool) {
	has := func(name string) bool { _, ok := q.query[name]; return ok }
	if q.key == "" {
		if !has("replication") || q.h.repl == nil {
			return operation{}, false
		}
		switch q.r.Method {
		case http.MethodGet:
			return operation{name: "GetBucketReplication", serve: getBucketReplication}, true
		case http.MethodPut:
			return operation{name: "PutBucketReplication", serve: putBucketReplication}, true
		case http.MethodDelete:
			return operation{name: "DeleteBucketReplication", serve: deleteBucketReplication}, true
		}
		return operation{}, false
	}
	if !s3replica.Has(q.r.Header) {
		return operation{}, false
	}
	subresource := false
	for name := range q.query {
		subresource = subresource || name != "x-id" // the SDK names the operation there
	}
	if subresource || q.r.Header.Get("X-Amz-Copy-Source") != "" {
		return operation{name: "ReplicaWrite", serve: func(*request) error {
			return s3err.ErrInvalidRequest.WithMessage("sealfs replica headers go only with a plain PutObject or DeleteObject.")
		}}, true
	}
	switch q.r.Method {
	case http.MethodPut:
		return operation{name: "PutObjectReplica", serve: putReplica, sealed: bucketSealed}, true
	case http.MethodDelete:
		return operation{name: "DeleteObjectReplica", serve: deleteReplica}, true
	}
	return operation{}, false
}

func getBucketReplication(q *request) error {
	c, err := q.h.repl.GetBucketReplication(q.ctx, q.bucket)
	if err != nil {
		return replicationError(err)
	}
	return q.writeXML(replicationXML(c))
}

func putBucketReplication(q *request) error {
	data, err := q.readSmallBody(s3xml.DefaultMaxBodySize)
	if err != nil {
		return err
	}
	c, err := parseReplicationXML(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if err := q.h.repl.PutBucketReplication(q.ctx, q.bucket, c); err != nil {
		return replicationError(err)
	}
	return q.ok()
}

func deleteBucketReplication(q *request) error {
	if err := q.h.repl.DeleteBucketReplication(q.ctx, q.bucket); err != nil {
		return replicationError(err)
	}
	return q.noContent()
}

// replicationError gives the replication engine's errors their S3 answers.
func replicationError(err error) error {
	var re *cryptostore.ReplicationRuleError
	switch {
	case errors.As(err, &re):
		code := s3err.ErrInvalidRequest
		switch re.Kind {
		case cryptostore.RuleBadArgument:
			code = s3err.ErrInvalidArgument
		case cryptostore.RuleBadSchema:
			code = s3err.ErrMalformedXML
		}
		return code.WithMessage(re.Message).Wrap(err)
	case errors.Is(err, cryptostore.ErrNoReplication):
		return s3err.ErrReplicationConfigurationNotFound.Wrap(err)
	}
	return err
}

// parseReplicationXML reads a PutBucketReplication body into the store's
// form, refusing what S3's schema forbids (MalformedXML) and what sealfs
// cannot do (InvalidRequest: tag filters, a ReplicaKmsKeyID;
// InvalidStorageClass). Destinations stay as named (Rule.Dest): the
// replication engine resolves and checks them.
func parseReplicationXML(body io.Reader) (*cryptostore.ReplicationConfig, error) {
	var doc s3xml.ReplicationConfiguration
	if err := s3xml.Decode(body, 0, &doc); err != nil {
		return nil, err
	}
	c := &cryptostore.ReplicationConfig{Version: cryptostore.ReplicationConfigVersion, Role: doc.Role}
	for i, xr := range doc.Rules {
		r := cryptostore.ReplicationRule{ID: xr.ID, Enabled: xr.Status == "Enabled"}
		if r.ID == "" {
			r.ID = "rule-" + strconv.Itoa(i+1)
		}
		if xr.Priority != nil {
			r.Priority = *xr.Priority
		}
		switch {
		case xr.Prefix != nil:
			r.Prefix, r.Legacy = *xr.Prefix, true
		case xr.Filter != nil:
			f := xr.Filter
			if f.Tag != nil || (f.And != nil && len(f.And.Tags) > 0) {
				return nil, invalidRule(s3err.ErrInvalidRequest, "Rule %q: sealfs has no object tags, so replication rules cannot filter by tag; filter by Prefix.", r.ID)
			}
			r.Prefix = xr.EffectivePrefix()
		}
		if dm := xr.DeleteMarkerReplication; dm != nil {
			switch dm.Status {
			case "Enabled":
				r.Deletes = true
			case "Disabled", "":
			default:
				return nil, invalidRule(s3err.ErrMalformedXML, "Rule %q: DeleteMarkerReplication Status must be Enabled or Disabled, not %q.", r.ID, dm.Status)
			}
		}
		d := xr.Destination
		if d.EncryptionConfiguration != nil && d.EncryptionConfiguration.ReplicaKmsKeyID != "" {
			return nil, invalidRule(s3err.ErrInvalidRequest,
				"Rule %q: sealfs does not take a ReplicaKmsKeyID: a replica is encrypted when, and as, the destination bucket's default encryption says.", r.ID)
		}
		if d.StorageClass != "" && d.StorageClass != "STANDARD" {
			return nil, invalidRule(s3err.ErrInvalidStorageClass, "Rule %q: sealfs stores every object as STANDARD, not %q.", r.ID, d.StorageClass)
		}
		r.Dest = d.Bucket
		c.Rules = append(c.Rules, r)
	}
	return c, nil
}

// invalidRule is an S3 error for a rule refused while reading the XML; it
// matches cryptostore.ErrInvalidReplicationRule too.
func invalidRule(code *s3err.Error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return code.WithMessage(msg).Wrap(fmt.Errorf("%w: %s", cryptostore.ErrInvalidReplicationRule, msg))
}

// replicationXML is a configuration as GetBucketReplication answers it.
func replicationXML(c *cryptostore.ReplicationConfig) *s3xml.ReplicationConfiguration {
	doc := &s3xml.ReplicationConfiguration{Role: c.Role}
	for _, r := range c.Rules {
		xr := s3xml.ReplicationRule{
			ID:          r.ID,
			Status:      "Disabled",
			Destination: s3xml.ReplicationDestination{Bucket: r.Destination()},
		}
		if r.Enabled {
			xr.Status = "Enabled"
		}
		prefix := r.Prefix
		if r.Legacy {
			xr.Prefix = &prefix
		} else {
			p := r.Priority
			xr.Priority = &p
			xr.Filter = &s3xml.ReplicationFilter{Prefix: &prefix}
			status := "Disabled"
			if r.Deletes {
				status = "Enabled"
			}
			xr.DeleteMarkerReplication = &s3xml.DeleteMarkerReplication{Status: status}
		}
		doc.Rules = append(doc.Rules, xr)
	}
	return doc
}

// replica reads the replica headers of the (authenticated) request. They
// count only when the request's signature covers them.
func (q *request) replica() (cryptostore.Replica, error) {
	rep, _, err := s3replica.Parse(q.r.Header, q.auth.SignedHeaders)
	if errors.Is(err, s3replica.ErrBadHeaders) {
		return rep, s3err.ErrAccessDenied.WithMessage("sealfs replica headers must be well-formed and signed.").Wrap(err)
	}
	return rep, err
}

// putReplica is PutObject for a replica: the same write, with status
// REPLICA, the source's time recorded, and a condition that refuses to
// store it over a newer version.
func putReplica(q *request) error {
	rep, err := q.replica()
	if err != nil {
		return err
	}
	m, err := q.newObjectMeta()
	if err != nil {
		return err
	}
	p, verify, wantMD5, err := q.dataBody()
	if err != nil {
		return err
	}
	in := &cryptostore.PutInput{
		Bucket:    q.bucket,
		Key:       q.key,
		Body:      p,
		Size:      p.ExpectedSize(),
		Meta:      m,
		Verify:    verify,
		MD5:       wantMD5,
		Condition: putCondition(q.r.Header),
	}
	rep.Apply(in)
	obj, err := q.h.store.Put(q.ctx, in)
	if errors.Is(err, cryptostore.ErrStaleReplica) {
		q.w.Header()[http.CanonicalHeaderKey(s3replica.HeaderSkipped)] = []string{"stale"}
		return q.ok()
	}
	if err != nil {
		return err
	}
	q.w.Header()["Etag"] = []string{quote(obj.ETag)}
	q.setSSE(obj.Encryption)
	q.setClientChecksum(p)
	return q.ok()
}

// deleteReplica applies a delete from the source region, unless the
// bucket holds a version newer than the deletion.
func deleteReplica(q *request) error {
	rep, err := q.replica()
	if err != nil {
		return err
	}
	if err := checkKey(q.key); err != nil {
		return err
	}
	if _, err := q.h.store.DeleteReplica(q.ctx, q.bucket, q.key, rep.SourceTime); err != nil {
		return err
	}
	return q.noContent()
}
