package s3err

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsMatchesByCode(t *testing.T) {
	cause := errors.New("disk on fire")
	e := ErrInvalidArgument.WithMessage("bad part number").Wrap(cause)
	wrapped := fmt.Errorf("handler: %w", e)
	if !errors.Is(wrapped, ErrInvalidArgument) {
		t.Fatal("a re-messaged InvalidArgument does not match its sentinel")
	}
	if errors.Is(wrapped, ErrInvalidRequest) {
		t.Fatal("InvalidArgument matches InvalidRequest")
	}
	if !errors.Is(wrapped, cause) {
		t.Fatal("the cause is not reachable")
	}
	if ErrInvalidArgument.Message != "Invalid Argument" || ErrInvalidArgument.Cause != nil {
		t.Fatal("WithMessage/Wrap modified the shared sentinel")
	}
	var got *Error
	if !errors.As(wrapped, &got) || got.Message != "bad part number" || got.HTTPStatus != http.StatusBadRequest {
		t.Fatalf("errors.As gave %+v", got)
	}
	if !strings.Contains(e.Error(), "disk on fire") || !strings.HasPrefix(e.Error(), "InvalidArgument: ") {
		t.Fatalf("Error() = %q", e.Error())
	}
}

func TestFrom(t *testing.T) {
	if From(nil) != nil {
		t.Fatal("From(nil) != nil")
	}
	e := From(fmt.Errorf("x: %w", ErrNoSuchKey))
	if e.Code != "NoSuchKey" {
		t.Fatalf("From found %s", e.Code)
	}
	e = From(errors.New("secret path /data/x"))
	if e.Code != "InternalError" || e.HTTPStatus != 500 || strings.Contains(e.Message, "secret") {
		t.Fatalf("From(unknown) = %+v", e)
	}
}

type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

func TestWriteXML(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		err        error
		status     int
		code       string
		message    string
		wantNoBody bool
	}{
		{name: "not found", method: http.MethodGet, err: ErrNoSuchKey, status: 404, code: "NoSuchKey", message: "The specified key does not exist."},
		{name: "head", method: http.MethodHead, err: ErrNoSuchKey, status: 404, wantNoBody: true},
		{name: "not modified", method: http.MethodGet, err: ErrNotModified, status: 304, wantNoBody: true},
		{name: "range", method: http.MethodGet, err: ErrInvalidRange, status: 416, code: "InvalidRange"},
		{name: "unknown error", method: http.MethodPut, err: errors.New("badger: txn too big at /secret"), status: 500, code: "InternalError", message: "We encountered an internal error. Please try again."},
		{name: "kms sigv4", method: http.MethodPut, err: ErrKMSRequiresSigV4, status: 400, code: "InvalidArgument",
			message: "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4."},
		{name: "kms tls", method: http.MethodGet, err: ErrKMSRequiresSecureConnection, status: 400, code: "InvalidArgument",
			message: "Requests specifying Server Side Encryption with AWS KMS managed keys must be made over a secure connection."},
		{name: "kms disabled", method: http.MethodGet, err: ErrKMSDisabled.WithMessage("arn:sealfs:kms:::key/k1 is disabled."), status: 400, code: "KMS.DisabledException", message: "arn:sealfs:kms:::key/k1 is disabled."},
		{name: "slow down", method: http.MethodPut, err: fmt.Errorf("queue full: %w", ErrSlowDown), status: 503, code: "SlowDown"},
		{name: "length required", method: http.MethodPut, err: ErrMissingContentLength, status: 411, code: "MissingContentLength"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/bucket/some%20key", nil)
			w := httptest.NewRecorder()
			WriteXML(w, r, tc.err, "REQ123")
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if res.Header.Get("x-amz-request-id") != "REQ123" {
				t.Fatal("no request id header")
			}
			if tc.wantNoBody {
				if len(body) != 0 {
					t.Fatalf("body %q on a bodiless response", body)
				}
				return
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/xml" {
				t.Fatalf("Content-Type %q", ct)
			}
			var doc errorDoc
			if err := xml.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if doc.Code != tc.code || doc.Resource != "/bucket/some key" || doc.RequestID != "REQ123" {
				t.Fatalf("doc %+v", doc)
			}
			if tc.message != "" && doc.Message != tc.message {
				t.Fatalf("message %q, want %q", doc.Message, tc.message)
			}
			if strings.Contains(string(body), "secret") {
				t.Fatal("an internal error's text reached the client")
			}
		})
	}
}

func TestSentinelsAreSane(t *testing.T) {
	all := []*Error{
		ErrAccessDenied, ErrSignatureDoesNotMatch, ErrInvalidAccessKeyID, ErrRequestTimeTooSkewed,
		ErrAuthorizationHeaderMalformed, ErrAuthorizationQueryParameters, ErrRequestExpired, ErrRequestNotYetValid,
		ErrExpiredToken, ErrInvalidToken, ErrSignatureVersionNotSupported, ErrUnsignedHeaders, ErrMissingSecurityHeader,
		ErrXAmzContentSHA256Mismatch, ErrBadDigest, ErrInvalidDigest, ErrIncompleteBody, ErrMissingContentLength,
		ErrRequestTimeout, ErrMalformedXML, ErrMissingRequestBody, ErrInvalidArgument, ErrInvalidRequest,
		ErrInvalidBucketName, ErrKeyTooLong, ErrMetadataTooLarge, ErrEntityTooSmall, ErrEntityTooLarge, ErrInvalidPart,
		ErrInvalidPartOrder, ErrInvalidRange, ErrPreconditionFailed, ErrNotModified, ErrMethodNotAllowed,
		ErrNotImplemented, ErrInvalidStorageClass, ErrInvalidLocationConstraint, ErrIllegalLocationConstraint,
		ErrInvalidBucketState, ErrInvalidObjectState, ErrOperationAborted, ErrTooManyBuckets, ErrNoSuchBucket,
		ErrNoSuchKey, ErrNoSuchVersion, ErrNoSuchUpload, ErrBucketNotEmpty, ErrBucketAlreadyOwnedByYou,
		ErrBucketAlreadyExists, ErrNoSuchBucketPolicy, ErrNoSuchLifecycleConfiguration, ErrNoSuchCORSConfiguration,
		ErrNoSuchTagSet, ErrNoSuchWebsiteConfiguration, ErrObjectLockConfigNotFound,
		ErrServerSideEncryptionConfigurationNotFound, ErrReplicationConfigurationNotFound, ErrKMSDisabled,
		ErrKMSNotFound, ErrKMSInvalidState, ErrKMSAccessDenied, ErrKMSRequiresSigV4, ErrKMSRequiresSecureConnection,
		ErrInvalidEncryptionAlgorithm, ErrInternalError, ErrSlowDown, ErrServiceUnavailable, ErrInsufficientStorage,
	}
	for _, e := range all {
		if e.Code == "" || e.Message == "" || http.StatusText(e.HTTPStatus) == "" {
			t.Errorf("incomplete sentinel %+v", e)
		}
	}
}
