package replicate

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sealfs/sealfs/cryptostore"
)

// targetError marks an error that came from talking to the target (as
// opposed to reading the source): only those hold the target back.
type targetError struct{ err error }

func (e *targetError) Error() string { return e.err.Error() }
func (e *targetError) Unwrap() error { return e.err }

func targetErr(err error) error {
	if err == nil {
		return nil
	}
	return &targetError{err: err}
}

// permanentCodes are S3 error codes that the same request will get again:
// retrying is pointless until someone changes something (then `sealfs
// replicate resync` sends the object again).
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"AuthorizationHeaderMalformed": true,
	"NoSuchBucket":                 true,
	"InvalidBucketName":            true,
	"InvalidArgument":              true,
	"InvalidRequest":               true,
	"InvalidStorageClass":          true,
	"EntityTooLarge":               true,
	"MetadataTooLarge":             true,
	"KeyTooLongError":              true,
	"MethodNotAllowed":             true,
	"NotImplemented":               true,
	"KMS.DisabledException":        true,
	"KMS.NotFoundException":        true,
	"KMS.KMSInvalidStateException": true,
	"KMS.AccessDeniedException":    true,
}

// transientCodes are S3 error codes that say "not now".
var transientCodes = map[string]bool{
	"RequestTimeTooSkewed":      true, // clocks get fixed; the request is re-signed
	"RequestTimeout":            true,
	"SlowDown":                  true,
	"InternalError":             true,
	"ServiceUnavailable":        true,
	"OperationAborted":          true,
	"IncompleteBody":            true,
	"XAmzContentSHA256Mismatch": true,
	"BadDigest":                 true, // the body was damaged on the way
}

// Permanent reports whether err, from an attempt to replicate an object,
// will recur on every retry: the target refused the request for what it
// is (access denied, no such bucket, a request it does not accept, its KMS
// key disabled), its certificate is not trusted, the source object cannot
// be read (its key disabled, its data damaged), or the rule or target is
// gone. Everything else — the network, timeouts, 5xx and 429 answers, a
// target that is down — is transient and retried with backoff.
func Permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch {
	case errors.Is(err, cryptostore.ErrKeyDisabled), errors.Is(err, cryptostore.ErrCorruptBlob),
		errors.Is(err, ErrNoSuchTarget), errors.Is(err, errNoRule), errors.Is(err, errBadMetadata):
		return true
	}
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &badHost) || errors.As(err, &badCert) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		if permanentCodes[code] {
			return true
		}
		if transientCodes[code] {
			return false
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status := re.HTTPStatusCode()
		switch {
		case status >= 500, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
			return false
		case status >= 400:
			return true
		}
	}
	return false
}

// describe says what went wrong in a line: the target's S3 error code and
// message, the network failure, or the error itself, without the SDK's
// wrapping.
func describe(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) {
			return fmt.Sprintf("%s: %s (HTTP %d)", api.ErrorCode(), api.ErrorMessage(), re.HTTPStatusCode())
		}
		return fmt.Sprintf("%s: %s", api.ErrorCode(), api.ErrorMessage())
	}
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA):
		return "TLS: " + unknownCA.Error()
	case errors.As(err, &badHost):
		return "TLS: " + badHost.Error()
	case errors.As(err, &badCert):
		return "TLS: " + badCert.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() > 0 {
		return fmt.Sprintf("HTTP %d: %v", re.HTTPStatusCode(), err)
	}
	return err.Error()
}
