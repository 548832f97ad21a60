package s3

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// Config wires a Handler.
type Config struct {
	// Store is the object store the handler serves. Required.
	Store *cryptostore.Store
	// Credentials returns the secret key of the admin's access key (the
	// break-glass account, allowed everything). Required. Other access keys
	// are users' (the store's Principal), held to their policies.
	Credentials func(accessKey string) (secret string, ok bool)
	// Region is the region this endpoint answers for; "" means the store's.
	Region string
	// Domain, when set, enables virtual-host-style addressing: a request
	// for Host BUCKET.DOMAIN addresses BUCKET. Path style always works.
	Domain string
	// Logger receives one info line per request; nil discards.
	Logger *slog.Logger
	// Now returns the current time for signature checks; nil means
	// time.Now.
	Now func() time.Time
	// Replication, when set, serves ?replication on buckets (replication.go).
	Replication Replication
	// Observe, when set, is called once per request after it is served,
	// with what its log line records (for metrics): the operation, the
	// status, the body bytes received and sent, the duration. It must not
	// block.
	Observe func(op string, status int, in, out int64, d time.Duration)
}

// StaticCredentials returns a Config.Credentials function that knows one
// access key.
func StaticCredentials(accessKey, secret string) func(string) (string, bool) {
	return func(ak string) (string, bool) {
		if ak != "" && ak == accessKey {
			return secret, true
		}
		return "", false
	}
}

// Handler serves the S3 API over a store. It is safe for concurrent use.
type Handler struct {
	store    *cryptostore.Store
	region   string
	domain   string
	log      *slog.Logger
	verifier *sigv4.Verifier
	admin    func(accessKey string) (secret string, ok bool)
	owner    s3xml.Owner
	hostID   string // x-amz-id-2
	idPrefix string
	seq      atomic.Uint64
	bufs     sync.Pool // *[]byte of getBufSize, for GET bodies
	small    sync.Pool // *[]byte of smallGet, for GET bodies under smallGet
	repl     Replication
	observe  func(op string, status int, in, out int64, d time.Duration)
	// sseIgnored holds the buckets for which a request's ignored SSE
	// header has been logged (noteUnencryptedSSE).
	sseIgnored sync.Map
}

// NewHandler returns the S3 handler described by cfg.
func NewHandler(cfg Config) *Handler {
	if cfg.Store == nil {
		panic("s3: Config.Store is required")
	}
	if cfg.Credentials == nil {
		panic("s3: Config.Credentials is required")
	}
	region := cfg.Region
	if region == "" {
		region = cfg.Store.Region()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic(fmt.Sprintf("s3: reading random bytes: %v", err))
	}
	ownerID := sha256.Sum256([]byte("sealfs owner " + region))
	h := &Handler{
		store:    cfg.Store,
		region:   region,
		domain:   strings.ToLower(strings.TrimSuffix(cfg.Domain, ".")),
		log:      log,
		admin:    cfg.Credentials,
		owner:    s3xml.Owner{ID: hex.EncodeToString(ownerID[:]), DisplayName: "sealfs"},
		hostID:   base64.StdEncoding.EncodeToString(rnd[:]),
		idPrefix: strings.ToUpper(hex.EncodeToString(rnd[:4])),
		repl:     cfg.Replication,
		observe:  cfg.Observe,
	}
	h.verifier = &sigv4.Verifier{Lookup: h.lookupSecret, Region: region, Now: cfg.Now}
	h.bufs.New = func() any { b := make([]byte, getBufSize); return &b }
	h.small.New = func() any { b := make([]byte, smallGet); return &b }
	return h
}

// request is one request being served.
type request struct {
	h       *Handler
	w       *respWriter
	r       *http.Request
	ctx     context.Context
	id      string
	op      string
	bucket  string
	key     string
	query   url.Values
	auth    *sigv4.Auth
	payload *sigv4.Payload // the body, once opened
	// caller is the user who signed the request (authz.go); nil for the
	// admin.
	caller *cryptostore.Caller
}

// newID returns a request id: 16 upper-case hex digits, unique within the
// process (a random prefix of 8, then a counter).
func (h *Handler) newID() string {
	const digits = "0123456789ABCDEF"
	var b [16]byte
	copy(b[:8], h.idPrefix)
	n := h.seq.Add(1)
	for i := len(b) - 1; i >= 8; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}

// ServeHTTP serves one S3 request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &respWriter{ResponseWriter: w}
	q := &request{h: h, w: rw, r: r, ctx: r.Context(), id: h.newID()}
	hd := rw.Header()
	hd["X-Amz-Request-Id"] = []string{q.id}
	hd["X-Amz-Id-2"] = []string{h.hostID}
	hd["Server"] = []string{"sealfs"}
	defer h.logRequest(q, start)
	if err := h.serve(q); err != nil {
		q.fail(err)
	}
}

func (h *Handler) serve(q *request) error {
	bucket, key, err := h.route(q.r)
	if err != nil {
		return err
	}
	q.bucket, q.key = bucket, key
	if q.query, err = url.ParseQuery(q.r.URL.RawQuery); err != nil {
		return s3err.ErrInvalidArgument.WithMessage("The query string is not valid.")
	}
	op := pick(q)
	q.op = op.name
	// Nothing about a bucket or a key is looked at before the request is
	// authenticated: an unauthenticated request gets the same answer
	// whatever it names (anonymous: 403 AccessDenied; Signature Version 2,
	// whose signature sealfs cannot check: 400 InvalidRequest, saying that
	// only Signature Version 4 is accepted), so it cannot learn which
	// buckets or keys exist or which are encrypted.
	auth, err := h.verifier.Verify(q.r)
	if err != nil {
		return err
	}
	q.auth = auth
	// The signer's policy is evaluated before anything about a bucket or
	// a key is looked at (authz.go).
	if err := q.authorize(); err != nil {
		return err
	}
	if op.sealed != nil && q.r.TLS == nil && op.sealed(q) {
		// Design rule 6 for an authenticated request over plain HTTP,
		// decided before the body is read.
		return s3err.ErrKMSRequiresSecureConnection
	}
	if err := refuseSSEC(q.r.Header); err != nil {
		return err
	}
	if err := checkSSEHeaders(q.op, q.r.Header); err != nil {
		return err
	}
	return op.serve(q)
}

// route finds the bucket and key a request addresses.
func (h *Handler) route(r *http.Request) (bucket, key string, err error) {
	path := r.URL.Path
	if h.domain != "" {
		host := r.Host
		if hst, _, err := net.SplitHostPort(host); err == nil {
			host = hst
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if b, ok := strings.CutSuffix(host, "."+h.domain); ok && b != "" {
			return b, strings.TrimPrefix(path, "/"), nil
		}
	}
	if path == "" || path[0] != '/' {
		return "", "", s3err.ErrInvalidRequest.WithMessage("The request path must start with /.")
	}
	bucket, key, _ = strings.Cut(path[1:], "/")
	if bucket == "" && key != "" {
		return "", "", s3err.ErrInvalidBucketName
	}
	return bucket, key, nil
}

// fail answers the request with err, unless a response has started (then
// it can only be logged: the connection is cut so the client sees a
// truncated body, not a short one).
func (q *request) fail(err error) {
	e := q.h.toS3(q, err)
	q.w.errCode = e.Code
	// Errors the client caused, NotImplemented among them, are in the
	// request's info line; the server's own failures are errors.
	if e.HTTPStatus >= 500 && e.HTTPStatus != http.StatusNotImplemented && !errors.Is(err, context.Canceled) {
		q.h.log.Error("s3 request failed", "id", q.id, "op", q.op, "bucket", q.bucket, "key", q.key, "err", err)
	}
	if q.w.status != 0 {
		return
	}
	q.drainBody()
	s3err.WriteXML(q.w, q.r, e, q.id)
}

// maxDrain bounds how much of a refused request's body is read, and
// drainTime how long that may take.
const (
	maxDrain  = 16 << 20
	drainTime = 10 * time.Second
)

// drainBody reads (and drops) what is left of a refused request's body, up
// to maxDrain, before the error is answered. Otherwise the connection is
// closed with the body's bytes unread while the client is still sending
// them: the client's writes meet a reset, which may discard the response
// it had not read yet, and it sees a broken connection (an SDK retries,
// then reports a transport error) instead of the error (AccessDenied on an
// UploadPart, say). A client that asked to wait for "100 Continue" has
// sent nothing yet and is not made to send it. A longer body is left to
// net/http, which closes the connection after the response.
func (q *request) drainBody() {
	if q.r.Body == nil || q.r.Body == http.NoBody || q.r.ContentLength == 0 || q.r.ContentLength > maxDrain {
		return
	}
	if q.payload == nil && strings.EqualFold(q.r.Header.Get("Expect"), "100-continue") {
		return
	}
	rc := http.NewResponseController(q.w.ResponseWriter)
	if err := rc.SetReadDeadline(time.Now().Add(drainTime)); err != nil {
		return
	}
	io.CopyN(io.Discard, q.r.Body, maxDrain)
	rc.SetReadDeadline(time.Time{})
}

func (h *Handler) logRequest(q *request, start time.Time) {
	status := q.w.status
	if status == 0 {
		status = http.StatusOK
	}
	var in int64
	if q.payload != nil {
		in = q.payload.Size()
	}
	d := time.Since(start)
	if h.observe != nil {
		h.observe(q.op, status, in, q.w.n, d)
	}
	attrs := []slog.Attr{
		slog.String("id", q.id),
		slog.String("op", q.op),
		slog.String("bucket", q.bucket),
		slog.String("key", q.key),
		slog.Int("status", status),
		slog.Int64("in", in),
		slog.Int64("out", q.w.n),
		slog.Duration("duration", d),
	}
	if q.w.errCode != "" {
		attrs = append(attrs, slog.String("error", q.w.errCode))
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "s3", attrs...)
}

// respWriter records the status and the bytes written.
type respWriter struct {
	http.ResponseWriter
	status  int
	n       int64
	errCode string
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refuseSSEC refuses customer-provided keys (SSE-C): sealfs offers none
// (design rule 1), and silently ignoring one would leave its sender
// believing the key protects the object.
func refuseSSEC(hd http.Header) error {
	for _, name := range []string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Server-Side-Encryption-Customer-Key",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Algorithm",
		"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key",
	} {
		if _, ok := hd[name]; ok {
			return s3err.ErrInvalidArgument.WithMessage("sealfs does not support customer-provided encryption keys (SSE-C): objects are encrypted with the KMS key of their bucket when its default encryption is on.")
		}
	}
	return nil
}
