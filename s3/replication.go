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
	"io"
	"net/http"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3replica"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// Replication serves a bucket's replication configuration
// (*replicate.Manager implements it; the daemon hands it over, package s3
// does not import replicate). Errors are *s3err.Error values where
// S3 has a code for them.
type Replication interface {
	PutBucketReplication(ctx context.Context, bucket string, body io.Reader) error
	GetBucketReplication(ctx context.Context, bucket string) (*s3xml.ReplicationConfiguration, error)
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
	doc, err := q.h.repl.GetBucketReplication(q.ctx, q.bucket)
	if err != nil {
		return err
	}
	return q.writeXML(doc)
}

func putBucketReplication(q *request) error {
	data, err := q.readSmallBody(s3xml.DefaultMaxBodySize)
	if err != nil {
		return err
	}
	if err := q.h.repl.PutBucketReplication(q.ctx, q.bucket, bytes.NewReader(data)); err != nil {
		return err
	}
	return q.ok()
}

func deleteBucketReplication(q *request) error {
	if err := q.h.repl.DeleteBucketReplication(q.ctx, q.bucket); err != nil {
		return err
	}
	return q.noContent()
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
