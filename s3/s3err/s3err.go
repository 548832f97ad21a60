// Package s3err owns sealfs's S3 error vocabulary: the error codes, HTTP
// statuses and messages that S3 clients understand, and the writer that turns
// any error into the standard S3 XML error body.
//
// Every S3 error is an *Error. The package-level values (ErrNoSuchKey,
// ErrAccessDenied, ...) are sentinels: compare with errors.Is, which matches
// on the Code alone, so an error built with a different message still matches
// its sentinel:
//
//	err := s3err.ErrInvalidArgument.WithMessage("bad part number")
//	errors.Is(err, s3err.ErrInvalidArgument) // true
//
// The sentinels are shared and must never be modified; WithMessage and Wrap
// return copies.
//
// WriteXML writes any error as an S3 error response. An error that is not an
// *Error (a store failure, a bug) becomes InternalError with the generic
// message: the text of an unknown error is never sent to a client, because it
// may name paths, keys or internals.
//
// This package never logs and never decides policy: it knows what an error
// looks like on the wire, not when to return it.
package s3err

import (
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
)

// Error is one S3 error: a code clients switch on, a human message and the
// HTTP status it travels with. Cause, when set, is the underlying error; it is
// reachable with errors.Is/As through Unwrap and never sent to the client.
type Error struct {
	Code       string
	Message    string
	HTTPStatus int
	Cause      error
}

// Error returns "Code: Message" followed by the cause, if any.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, s3err.ErrNoSuchKey) holds for any NoSuchKey error whatever
// its message or cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

// WithMessage returns a copy of e with another message.
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Message = msg
	return &c
}

// Wrap returns a copy of e whose Cause is cause.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

func newErr(code string, status int, msg string) *Error {
	return &Error{Code: code, Message: msg, HTTPStatus: status}
}

// Authentication and signing.
var (
	ErrAccessDenied                 = newErr("AccessDenied", http.StatusForbidden, "Access Denied")
	ErrSignatureDoesNotMatch        = newErr("SignatureDoesNotMatch", http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	ErrInvalidAccessKeyID           = newErr("InvalidAccessKeyId", http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records.")
	ErrRequestTimeTooSkewed         = newErr("RequestTimeTooSkewed", http.StatusForbidden, "The difference between the request time and the server's time is too large.")
	ErrAuthorizationHeaderMalformed = newErr("AuthorizationHeaderMalformed", http.StatusBadRequest, "The authorization header is malformed.")
	ErrAuthorizationQueryParameters = newErr("AuthorizationQueryParametersError", http.StatusBadRequest, "The authorization query parameters are not valid.")
	// ErrRequestExpired is AccessDenied as S3 returns it for a presigned
	// URL past its expiry.
	ErrRequestExpired = newErr("AccessDenied", http.StatusForbidden, "Request has expired")
	// ErrRequestNotYetValid is AccessDenied for a presigned URL dated in
	// the future.
	ErrRequestNotYetValid = newErr("AccessDenied", http.StatusForbidden, "Request is not valid yet")
	ErrExpiredToken       = newErr("ExpiredToken", http.StatusBadRequest, "The provided token has expired.")
	ErrInvalidToken       = newErr("InvalidToken", http.StatusBadRequest, "The provided token is malformed or otherwise invalid.")
	// ErrSignatureVersionNotSupported answers Signature Version 2 and any
	// other scheme that is not AWS4-HMAC-SHA256.
	ErrSignatureVersionNotSupported = newErr("InvalidRequest", http.StatusBadRequest, "The authorization mechanism you have provided is not supported. sealfs accepts only Signature Version 4 (AWS4-HMAC-SHA256).")
	// ErrUnsignedHeaders is S3's answer to x-amz-* headers left out of
	// the signature.
	ErrUnsignedHeaders = newErr("AccessDenied", http.StatusForbidden, "There were headers present in the request which were not signed")
	// ErrMissingSecurityHeader: a required header is missing.
	ErrMissingSecurityHeader = newErr("MissingSecurityHeader", http.StatusBadRequest, "Your request was missing a required header.")
)

// Payload integrity.
var (
	ErrXAmzContentSHA256Mismatch = newErr("XAmzContentSHA256Mismatch", http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	ErrBadDigest                 = newErr("BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received.")
	ErrInvalidDigest             = newErr("InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified is not valid.")
	ErrIncompleteBody            = newErr("IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	ErrMissingContentLength      = newErr("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	ErrRequestTimeout            = newErr("RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period.")
)

// Requests and arguments.
var (
	ErrMalformedXML              = newErr("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	ErrMissingRequestBody        = newErr("MissingRequestBodyError", http.StatusBadRequest, "Request Body is empty.")
	ErrInvalidArgument           = newErr("InvalidArgument", http.StatusBadRequest, "Invalid Argument")
	ErrInvalidRequest            = newErr("InvalidRequest", http.StatusBadRequest, "Invalid Request")
	ErrInvalidBucketName         = newErr("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid.")
	ErrKeyTooLong                = newErr("KeyTooLongError", http.StatusBadRequest, "Your key is too long.")
	ErrMetadataTooLarge          = newErr("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size.")
	ErrEntityTooSmall            = newErr("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size.")
	ErrEntityTooLarge            = newErr("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	ErrInvalidPart               = newErr("InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
	ErrInvalidPartOrder          = newErr("InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. Parts must be ordered by part number.")
	ErrInvalidRange              = newErr("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable")
	ErrPreconditionFailed        = newErr("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold")
	ErrNotModified               = newErr("NotModified", http.StatusNotModified, "Not Modified")
	ErrMethodNotAllowed          = newErr("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.")
	ErrNotImplemented            = newErr("NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented.")
	ErrInvalidStorageClass       = newErr("InvalidStorageClass", http.StatusBadRequest, "The storage class you specified is not valid.")
	ErrInvalidLocationConstraint = newErr("InvalidLocationConstraint", http.StatusBadRequest, "The specified location constraint is not valid.")
	ErrIllegalLocationConstraint = newErr("IllegalLocationConstraintException", http.StatusBadRequest, "The location constraint you specified does not match the region of this endpoint.")
	ErrInvalidBucketState        = newErr("InvalidBucketState", http.StatusConflict, "The request is not valid with the current state of the bucket.")
	ErrInvalidObjectState        = newErr("InvalidObjectState", http.StatusForbidden, "The operation is not valid for the current state of the object.")
	ErrOperationAborted          = newErr("OperationAborted", http.StatusConflict, "A conflicting conditional operation is currently in progress against this resource. Please try again.")
	ErrTooManyBuckets            = newErr("TooManyBuckets", http.StatusBadRequest, "You have attempted to create more buckets than allowed.")
)

// Buckets, objects and uploads that are, or are not, there.
var (
	ErrNoSuchBucket                 = newErr("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist")
	ErrNoSuchKey                    = newErr("NoSuchKey", http.StatusNotFound, "The specified key does not exist.")
	ErrNoSuchVersion                = newErr("NoSuchVersion", http.StatusNotFound, "The specified version does not exist.")
	ErrNoSuchUpload                 = newErr("NoSuchUpload", http.StatusNotFound, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	ErrBucketNotEmpty               = newErr("BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty")
	ErrBucketAlreadyOwnedByYou      = newErr("BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it.")
	ErrBucketAlreadyExists          = newErr("BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
	ErrNoSuchBucketPolicy           = newErr("NoSuchBucketPolicy", http.StatusNotFound, "The bucket policy does not exist")
	ErrNoSuchLifecycleConfiguration = newErr("NoSuchLifecycleConfiguration", http.StatusNotFound, "The lifecycle configuration does not exist")
	ErrNoSuchCORSConfiguration      = newErr("NoSuchCORSConfiguration", http.StatusNotFound, "The CORS configuration does not exist")
	ErrNoSuchTagSet                 = newErr("NoSuchTagSet", http.StatusNotFound, "The TagSet does not exist")
	ErrNoSuchWebsiteConfiguration   = newErr("NoSuchWebsiteConfiguration", http.StatusNotFound, "The specified bucket does not have a website configuration")
	ErrObjectLockConfigNotFound     = newErr("ObjectLockConfigurationNotFoundError", http.StatusNotFound, "Object Lock configuration does not exist for this bucket")

	ErrServerSideEncryptionConfigurationNotFound = newErr("ServerSideEncryptionConfigurationNotFoundError", http.StatusNotFound, "The server side encryption configuration was not found")
	ErrReplicationConfigurationNotFound          = newErr("ReplicationConfigurationNotFoundError", http.StatusNotFound, "The replication configuration was not found")
)

// Server-side encryption and the KMS.
//
// S3 reports a KMS failure with the KMS exception name prefixed by "KMS.".
// A disabled key is KMS.DisabledException with HTTP 400 (a client error: the
// KMS API itself answers DisabledException with 400, and S3 passes that
// status through; its message names the key, "<key arn> is disabled.").
// KMS.NotFoundException is likewise 400.
var (
	ErrKMSDisabled     = newErr("KMS.DisabledException", http.StatusBadRequest, "The KMS key is disabled.")
	ErrKMSNotFound     = newErr("KMS.NotFoundException", http.StatusBadRequest, "The KMS key does not exist.")
	ErrKMSInvalidState = newErr("KMS.KMSInvalidStateException", http.StatusBadRequest, "The KMS key is not in a valid state for this request.")
	ErrKMSAccessDenied = newErr("KMS.AccessDeniedException", http.StatusForbidden, "Access to the KMS key was denied.")

	// ErrKMSRequiresSigV4 and ErrKMSRequiresSecureConnection carry AWS's
	// own words (design rule 6): requests for SSE-KMS objects, or to
	// buckets with default encryption, must be signed with Signature
	// Version 4 and made over TLS.
	ErrKMSRequiresSigV4            = newErr("InvalidArgument", http.StatusBadRequest, "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.")
	ErrKMSRequiresSecureConnection = newErr("InvalidArgument", http.StatusBadRequest, "Requests specifying Server Side Encryption with AWS KMS managed keys must be made over a secure connection.")

	// ErrInvalidEncryptionAlgorithm refuses an SSE algorithm other than
	// aws:kms (design rule 1).
	ErrInvalidEncryptionAlgorithm = newErr("InvalidEncryptionAlgorithmError", http.StatusBadRequest, "The encryption request you specified is not valid. The valid value is aws:kms.")
)

// Server side.
var (
	ErrInternalError      = newErr("InternalError", http.StatusInternalServerError, "We encountered an internal error. Please try again.")
	ErrSlowDown           = newErr("SlowDown", http.StatusServiceUnavailable, "Please reduce your request rate.")
	ErrServiceUnavailable = newErr("ServiceUnavailable", http.StatusServiceUnavailable, "The service is unavailable. Please retry.")
	// ErrInsufficientStorage refuses a write because the server's data disk
	// is full (below the free-space reserve its metadata store keeps). 507,
	// as other S3 servers answer "storage full": not retried by SDKs, which
	// is right, since only freeing space helps. Reads are still served.
	ErrInsufficientStorage = newErr("InsufficientStorage", http.StatusInsufficientStorage, "The server's data disk is full: writes are refused until space is freed. Reads are still served.")
)

// From returns err as an *Error: err itself (or the first *Error in its
// chain) when there is one, InternalError wrapping err otherwise. A nil err
// gives nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return ErrInternalError.Wrap(err)
}

// body is the S3 error document.
type body struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// WriteXML writes err as an S3 error response: the status of its *Error
// (InternalError for any other error) and the body
//
//	<Error><Code/><Message/><Resource/><RequestId/></Error>
//
// with Resource the request path. A HEAD request, and a 304 Not Modified,
// get the status and headers but no body, as HTTP requires. requestID is
// also set as the x-amz-request-id header unless the caller set one already.
// The message of an error that is not an *Error is never written.
func WriteXML(w http.ResponseWriter, r *http.Request, err error, requestID string) {
	e := From(err)
	if e == nil {
		e = ErrInternalError
	}
	status := e.HTTPStatus
	if status == 0 {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	if requestID != "" && h.Get("x-amz-request-id") == "" {
		h.Set("x-amz-request-id", requestID)
	}
	if status == http.StatusRequestedRangeNotSatisfiable || status == http.StatusNotModified {
		// Range and conditional failures keep no stale body headers.
		h.Del("Content-Length")
	}
	noBody := (r != nil && r.Method == http.MethodHead) || status == http.StatusNotModified
	if noBody {
		w.WriteHeader(status)
		return
	}
	resource := ""
	if r != nil && r.URL != nil {
		resource = r.URL.Path
	}
	out, merr := xml.Marshal(body{Code: e.Code, Message: e.Message, Resource: resource, RequestID: requestID})
	if merr != nil {
		// Cannot happen for strings; answer with the status alone.
		w.WriteHeader(status)
		return
	}
	doc := append([]byte(xml.Header), out...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(status)
	_, _ = w.Write(doc)
}
