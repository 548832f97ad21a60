package s3

import (
	"net/http"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
)

// Server-side encryption request headers. sealfs decides encryption from the
// bucket alone (design rule 4), so on a write these headers change nothing;
// but a request that is malformed by AWS's rules is refused as AWS refuses
// it, so that a client sees the same answer from both.

const (
	hdrSSE            = "X-Amz-Server-Side-Encryption"
	hdrSSEKMSKeyID    = "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"
	hdrSSEContext     = "X-Amz-Server-Side-Encryption-Context"
	hdrSSEBucketKeyOn = "X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"
)

// validSSEAlgorithms are the values AWS accepts in x-amz-server-side-encryption
// (PutObject, CopyObject, CreateMultipartUpload): SSE-S3, SSE-KMS and
// dual-layer SSE-KMS.
var validSSEAlgorithms = map[string]bool{"AES256": true, "aws:kms": true, "aws:kms:dsse": true}

// errSSEAlgorithm is AWS's answer to an x-amz-server-side-encryption value
// that names no algorithm (such as "aes:kms"): 400 InvalidArgument.
var errSSEAlgorithm = s3err.ErrInvalidArgument.WithMessage("The encryption method specified is not supported")

// errSSEOnRead is AWS's answer to a GetObject or HeadObject carrying SSE-KMS
// request headers, which belong to writes: 400 InvalidArgument.
var errSSEOnRead = s3err.ErrInvalidArgument.WithMessage("x-amz-server-side-encryption header is not supported for this operation.")

// checkSSEHeaders refuses the SSE request headers AWS refuses for the
// operation: on an object write, an x-amz-server-side-encryption value that
// is not an algorithm; on an object read, any SSE-KMS header at all.
func checkSSEHeaders(op string, hd http.Header) error {
	switch op {
	case "PutObject", "CopyObject", "CreateMultipartUpload":
		if vals, ok := hd[hdrSSE]; ok {
			if len(vals) != 1 || !validSSEAlgorithms[vals[0]] {
				return errSSEAlgorithm
			}
		}
	case "GetObject", "HeadObject":
		for _, name := range [...]string{hdrSSE, hdrSSEKMSKeyID, hdrSSEContext, hdrSSEBucketKeyOn} {
			if _, ok := hd[name]; ok {
				return errSSEOnRead
			}
		}
	}
	return nil
}

// noteUnencryptedSSE is called after a write that created an object (or an
// upload) unencrypted: if the request asked for server-side encryption, the
// client may believe the object is encrypted. AWS would have encrypted it;
// sealfs follows the bucket (design rule 4), answers without any
// x-amz-server-side-encryption header — which is how a client can notice —
// and says so in the log, once per bucket for the life of the process.
func (q *request) noteUnencryptedSSE(enc *cryptostore.Encryption) {
	if enc != nil {
		return
	}
	alg := q.r.Header.Get(hdrSSE)
	if alg == "" {
		return
	}
	if _, seen := q.h.sseIgnored.LoadOrStore(q.bucket, true); seen {
		return
	}
	q.h.log.Info("a request asked for server-side encryption in a bucket without default encryption: objects are stored unencrypted (only the bucket's setting decides; logged once per bucket)",
		"id", q.id, "op", q.op, "bucket", q.bucket, "key", q.key, "requested", alg)
}
