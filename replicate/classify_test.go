package replicate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
)

// TestPermanentClassification sends real PutObject requests through the
// SDK client a target gets to a server that answers each with a canned
// failure, and checks how each error is sorted.
func TestPermanentClassification(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter, r *http.Request){}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		answers[key](w, r)
	}))
	defer srv.Close()
	s3error := func(e *s3err.Error) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { s3err.WriteXML(w, r, e, "req") }
	}
	status := func(code int, body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}
	}
	tests := []struct {
		key       string
		answer    func(w http.ResponseWriter, r *http.Request)
		permanent bool
	}{
		{key: "denied", answer: s3error(s3err.ErrAccessDenied), permanent: true},
		{key: "bad-key-id", answer: s3error(s3err.ErrInvalidAccessKeyID), permanent: true},
		{key: "signature", answer: s3error(s3err.ErrSignatureDoesNotMatch), permanent: true},
		{key: "no-bucket", answer: s3error(s3err.ErrNoSuchBucket), permanent: true},
		{key: "invalid", answer: s3error(s3err.ErrInvalidArgument), permanent: true},
		{key: "kms-disabled", answer: s3error(s3err.ErrKMSDisabled), permanent: true},
		{key: "teapot", answer: status(418, ""), permanent: true},
		{key: "skewed", answer: s3error(s3err.ErrRequestTimeTooSkewed)},
		{key: "internal", answer: s3error(s3err.ErrInternalError)},
		{key: "slow-down", answer: s3error(s3err.ErrSlowDown)},
		{key: "unavailable", answer: s3error(s3err.ErrServiceUnavailable)},
		{key: "too-many", answer: status(http.StatusTooManyRequests, "")},
		{key: "bad-gateway", answer: status(http.StatusBadGateway, "<html>proxy error</html>")},
		{key: "cut", answer: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
	}
	src := newRegion(t, "us-east-1", nil)
	src.mgr.store.Store(src.store)
	ca := string(pemOf(srv.Certificate().Raw))
	if _, err := src.mgr.AddTarget(ctx, &TargetInput{Region: "eu-west-1", Endpoint: srv.URL, AccessKey: "a", SecretKey: "s", CA: ca}); err != nil {
		t.Fatal(err)
	}
	tc, err := src.mgr.client(ctx, "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		answers[tt.key] = tt.answer
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := tc.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String(tt.key), Body: strings.NewReader("x"), ContentLength: aws.Int64(1)})
			if err == nil {
				t.Fatal("no error")
			}
			if got := Permanent(targetErr(err)); got != tt.permanent {
				t.Fatalf("Permanent = %v, want %v for %v", got, tt.permanent, err)
			}
			if tt.key == "denied" && describe(err) != "AccessDenied: Access Denied (HTTP 403)" {
				t.Fatalf("describe: %q", describe(err))
			}
		})
	}
	t.Run("412 counts as done", func(t *testing.T) {
		answers["stale"] = s3error(s3err.ErrPreconditionFailed)
		_, err := tc.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("stale"), Body: strings.NewReader("x"), ContentLength: aws.Int64(1)})
		if !isPreconditionFailed(err) {
			t.Fatalf("isPreconditionFailed(%v) = false", err)
		}
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		if _, err := src.mgr.AddTarget(ctx, &TargetInput{Region: "ap-south-1", Endpoint: srv.URL, AccessKey: "a", SecretKey: "s"}); err != nil {
			t.Fatal(err)
		}
		tc, err := src.mgr.client(ctx, "ap-south-1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("denied"), Body: strings.NewReader("x"), ContentLength: aws.Int64(1)})
		if err == nil || !Permanent(err) {
			t.Fatalf("untrusted certificate: Permanent(%v) = false", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, err := src.mgr.AddTarget(ctx, &TargetInput{Region: "sa-east-1", Endpoint: "https://" + addr, AccessKey: "a", SecretKey: "s"}); err != nil {
			t.Fatal(err)
		}
		tc, err := src.mgr.client(ctx, "sa-east-1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = tc.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x"), ContentLength: aws.Int64(1)})
		if err == nil || Permanent(err) {
			t.Fatalf("connection refused: Permanent(%v) = true", err)
		}
		if d := describe(err); !strings.HasPrefix(d, "dial tcp") || !strings.Contains(d, "refused") {
			t.Fatalf("describe: %q", d)
		}
	})
	t.Run("source side", func(t *testing.T) {
		for _, tt := range []struct {
			err       error
			permanent bool
		}{
			{err: fmt.Errorf("open: %w", cryptostore.ErrKeyDisabled), permanent: true},
			{err: fmt.Errorf("read: %w", cryptostore.ErrCorruptBlob), permanent: true},
			{err: fmt.Errorf("%w: %q", ErrNoSuchTarget, "x"), permanent: true},
			{err: errNoRule, permanent: true},
			{err: context.Canceled},
			{err: errors.New("disk hiccup")},
		} {
			if got := Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.permanent)
			}
		}
	})
}
