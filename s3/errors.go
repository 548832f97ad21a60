package s3

import (
	"context"
	"errors"
	"syscall"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
	"github.com/sealfs/sealfs/s3/s3err"
)

// toS3 maps an error from the store (or from this package, or sigv4) to the
// S3 error that answers it. An *s3err.Error anywhere in the chain wins: a
// body that failed its checksum reaches us wrapped by the store.
func (h *Handler) toS3(q *request, err error) *s3err.Error {
	var e *s3err.Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	var denied *iam.AccessDeniedError
	if errors.As(err, &denied) {
		// A policy's refusal: of the request's action (authz.go), or of a
		// use of the bucket's key the store checked (kms:Decrypt,
		// kms:GenerateDataKey).
		return accessDenied(denied)
	}
	switch {
	case errors.Is(err, cryptostore.ErrRecordTampered):
		// A metadata record failed authentication: damage, whatever else
		// the chain says; logged by fail, never detailed to the client.
		return s3err.ErrInternalError.Wrap(err)
	case errors.Is(err, cryptostore.ErrNoSuchBucket):
		return s3err.ErrNoSuchBucket
	case errors.Is(err, cryptostore.ErrNoSuchKey):
		return s3err.ErrNoSuchKey
	case errors.Is(err, cryptostore.ErrNoSuchUpload):
		return s3err.ErrNoSuchUpload
	case errors.Is(err, cryptostore.ErrBucketExists):
		return s3err.ErrBucketAlreadyOwnedByYou
	case errors.Is(err, cryptostore.ErrBucketNotEmpty):
		return s3err.ErrBucketNotEmpty
	case errors.Is(err, cryptostore.ErrInvalidBucketName):
		return s3err.ErrInvalidBucketName.Wrap(err)
	case errors.Is(err, cryptostore.ErrInvalidKey):
		return keyError(q.key)
	case errors.Is(err, cryptostore.ErrPreconditionFailed):
		return s3err.ErrPreconditionFailed
	case errors.Is(err, cryptostore.ErrInvalidPartOrder):
		return s3err.ErrInvalidPartOrder
	case errors.Is(err, cryptostore.ErrEntityTooSmall):
		return s3err.ErrEntityTooSmall.Wrap(err)
	case errors.Is(err, cryptostore.ErrInvalidPart):
		return s3err.ErrInvalidPart.Wrap(err)
	case errors.Is(err, cryptostore.ErrInvalidPartNumber), errors.Is(err, cryptostore.ErrInvalidPartRecord):
		return errPartNumber
	case errors.Is(err, cryptostore.ErrIncompleteBody), errors.Is(err, cryptostore.ErrBodyTooLong):
		return s3err.ErrIncompleteBody.Wrap(err)
	case errors.Is(err, cryptostore.ErrKeyDisabled):
		return h.kmsError(q, err)
	case errors.Is(err, cryptostore.ErrKMSUnavailable):
		// An external KMS that does not answer: retryable, and said so.
		return s3err.ErrServiceUnavailable.WithMessage("The KMS is unavailable. Please retry.").Wrap(err)
	case errors.Is(err, cryptostore.ErrNoSpace), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// A write refused below the reserve, or a blob write that hit
		// the end of the disk.
		return s3err.ErrInsufficientStorage.Wrap(err)
	case errors.Is(err, context.Canceled) && q.ctx.Err() != nil:
		// The client went away; nobody reads this answer.
		return s3err.ErrRequestTimeout.Wrap(err)
	}
	// ErrCorruptBlob and everything unknown: the cause is logged by fail,
	// never sent.
	return s3err.ErrInternalError.Wrap(err)
}

// errPartNumber is S3's answer to a part number out of range.
var errPartNumber = s3err.ErrInvalidArgument.WithMessage("Part number must be an integer between 1 and 10000, inclusive")

// keyError explains why key is not a valid object key.
func keyError(key string) *s3err.Error {
	if len(key) > cryptostore.MaxKeyLen {
		return s3err.ErrKeyTooLong
	}
	return s3err.ErrInvalidArgument.WithMessage("Object keys must be non-empty UTF-8 without NUL bytes.")
}

// checkKey checks an object key before anything else is done with it.
func checkKey(key string) error {
	if err := cryptostore.ValidKey(key); err != nil {
		return keyError(key)
	}
	return nil
}

// kmsError answers a request that needed a KMS key the KMS will not use:
// KMS.DisabledException for a disabled key, as S3 does, naming the key.
func (h *Handler) kmsError(q *request, err error) *s3err.Error {
	base := s3err.ErrKMSDisabled
	what := " is disabled."
	switch {
	case errors.Is(err, cryptostore.ErrKMSKeyPendingDeletion):
		base, what = s3err.ErrKMSInvalidState, " is pending deletion."
	case errors.Is(err, cryptostore.ErrKMSKeyNotFound):
		base, what = s3err.ErrKMSNotFound, " does not exist."
	}
	keyID := ""
	if q.bucket != "" {
		if b, berr := h.store.GetBucket(q.ctx, q.bucket); berr == nil {
			keyID = b.MasterKeyID
		}
	}
	if keyID == "" {
		return base.Wrap(err)
	}
	return base.WithMessage(h.store.KeyARN(keyID) + what).Wrap(err)
}
