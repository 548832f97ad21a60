package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
	"github.com/sealfs/sealfs/s3"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// The admin API: what `sealfs replicate ...` (and the other admin commands)
// ask of the running daemon. It is served beside the S3 API on the same
// listeners, under adminPrefix, and every request is authenticated like an
// S3 request: Signature Version 4 with the daemon's credentials (service
// "s3", any region); anonymous requests are refused with 403, and so are
// requests over the plain-HTTP listener (bodies carry secrets). Bodies are
// JSON both ways; an error is
//
//	{"error": {"code": "NoSuchTarget", "message": "no such replication target: \"eu-west-1\""}}
//
// with the HTTP status that fits (400, 403, 404, 409, 500).
//
// Adding a route is one line in newAdminAPI: a method and a path under
// adminPrefix, and a function from the request and its decoded JSON body
// to the answer (adminJSON).

// adminPrefix is the root of the admin API.
const adminPrefix = "/sealfs-admin/v1/"

// maxAdminBody bounds an admin request body.
const maxAdminBody = 1 << 20

type adminAPI struct {
	d        *daemon
	verifier *sigv4.Verifier
	mux      *http.ServeMux
	scrubs   scrubJobs
}

func newAdminAPI(d *daemon) *adminAPI {
	a := &adminAPI{
		d:        d,
		verifier: &sigv4.Verifier{Lookup: s3.StaticCredentials(d.creds.AccessKey, d.creds.SecretKey)},
		mux:      http.NewServeMux(),
	}
	// Replication.
	a.handle("GET replication/targets", adminJSON(a.listTargets))
	a.handle("POST replication/targets", adminJSON(a.addTarget))
	a.handle("DELETE replication/targets/{region}", adminJSON(a.removeTarget))
	a.handle("GET replication/status", adminJSON(a.replicationStatus))
	a.handle("GET replication/buckets/{bucket}", adminJSON(a.bucketReplication))
	a.handle("PUT replication/buckets/{bucket}", adminJSON(a.enableReplication))
	a.handle("DELETE replication/buckets/{bucket}", adminJSON(a.disableReplication))
	a.handle("POST replication/buckets/{bucket}/resync", adminJSON(a.startResync))
	a.handle("GET replication/resync/{id}", adminJSON(a.resyncStatus))
	// Buckets, keys, status, scrub.
	a.storeRoutes()
	return a
}

// handle registers h for "METHOD path", path relative to adminPrefix.
func (a *adminAPI) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	a.mux.Handle(method+" "+adminPrefix+path, h)
}

// ServeHTTP authenticates the request, makes its body the verifying
// payload reader, and routes it.
func (a *adminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		// Bodies carry secrets (a target's secret key): never in clear.
		writeAdminError(w, adminErr(http.StatusForbidden, "InsecureTransport", "the admin API is served over HTTPS only"))
		return
	}
	auth, err := a.verifier.Verify(r)
	if err != nil {
		writeAdminError(w, err)
		return
	}
	body, err := auth.Body(r)
	if err != nil {
		writeAdminError(w, err)
		return
	}
	r.Body = body
	if _, pattern := a.mux.Handler(r); pattern == "" {
		writeAdminError(w, adminErr(http.StatusNotFound, "NoSuchRoute", fmt.Sprintf("the admin API has no %s %s", r.Method, r.URL.Path)))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// adminError is an error with the status and code to answer it with.
type adminError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *adminError) Error() string { return e.Message }

func adminErr(status int, code, msg string) error {
	return &adminError{Status: status, Code: code, Message: msg}
}

// adminStatus maps an error to its answer.
func adminStatus(err error) *adminError {
	var ae *adminError
	if errors.As(err, &ae) {
		return ae
	}
	e := &adminError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	var se *s3err.Error
	switch {
	case errors.Is(err, replicate.ErrInvalidRule), errors.Is(err, replicate.ErrInvalidTarget):
		e.Status, e.Code = http.StatusBadRequest, "InvalidArgument"
		if errors.As(err, &se) {
			e.Message = se.Message
		}
	case errors.As(err, &se):
		e.Status, e.Code, e.Message = se.HTTPStatus, se.Code, se.Message
	case errors.Is(err, replicate.ErrNoSuchTarget):
		e.Status, e.Code = http.StatusNotFound, "NoSuchTarget"
	case errors.Is(err, replicate.ErrNoConfiguration):
		e.Status, e.Code = http.StatusNotFound, "ReplicationConfigurationNotFound"
	case errors.Is(err, replicate.ErrNoSuchJob):
		e.Status, e.Code = http.StatusNotFound, "NoSuchJob"
	case errors.Is(err, cryptostore.ErrNoSuchBucket):
		e.Status, e.Code = http.StatusNotFound, "NoSuchBucket"
	case errors.Is(err, replicate.ErrTargetInUse):
		e.Status, e.Code = http.StatusConflict, "TargetInUse"
	}
	return e
}

func writeAdminError(w http.ResponseWriter, err error) {
	e := adminStatus(err)
	writeAdminJSON(w, e.Status, map[string]*adminError{"error": e})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	out, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		out = []byte(`{"error":{"code":"InternalError","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(out, '\n'))
}

// adminJSON makes a route of fn: the body (if any) is decoded into In,
// fn's answer is encoded as JSON with 200, its error as an error body.
func adminJSON[In, Out any](fn func(r *http.Request, in *In) (Out, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := new(In)
		data, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
		if err != nil {
			writeAdminError(w, err)
			return
		}
		if p, ok := r.Body.(*sigv4.Payload); ok && !p.Verified() {
			writeAdminError(w, adminErr(http.StatusBadRequest, "IncompleteBody", "the request body was not read to a verified end"))
			return
		}
		if len(data) > maxAdminBody {
			writeAdminError(w, adminErr(http.StatusRequestEntityTooLarge, "BodyTooLarge", "the request body is larger than 1 MiB"))
			return
		}
		if len(strings.TrimSpace(string(data))) > 0 {
			d := json.NewDecoder(strings.NewReader(string(data)))
			d.DisallowUnknownFields()
			if err := d.Decode(in); err != nil {
				writeAdminError(w, adminErr(http.StatusBadRequest, "MalformedJSON", "the request body: "+err.Error()))
				return
			}
		}
		out, err := fn(r, in)
		if err != nil {
			writeAdminError(w, err)
			return
		}
		writeAdminJSON(w, http.StatusOK, out)
	})
}

// none is the body of routes that take none.
type none struct{}

// ---- replication routes

func (a *adminAPI) listTargets(r *http.Request, _ *none) ([]replicate.Target, error) {
	return a.d.repl.Targets(r.Context())
}

func (a *adminAPI) addTarget(r *http.Request, in *replicate.TargetInput) (*replicate.Target, error) {
	return a.d.repl.AddTarget(r.Context(), in)
}

func (a *adminAPI) removeTarget(r *http.Request, _ *none) (none, error) {
	return none{}, a.d.repl.RemoveTarget(r.Context(), r.PathValue("region"))
}

// replicationStatusAnswer is the daemon-wide status.
type replicationStatusAnswer struct {
	Region string `json:"region"`
	*replicate.Stats
	Buckets []bucketRules `json:"buckets"`
}

type bucketRules struct {
	Bucket string           `json:"bucket"`
	Rules  []replicate.Rule `json:"rules"`
}

func (a *adminAPI) replicationStatus(r *http.Request, _ *none) (*replicationStatusAnswer, error) {
	st, err := a.d.repl.Stats(r.Context())
	if err != nil {
		return nil, err
	}
	ans := &replicationStatusAnswer{Region: a.d.region, Stats: st, Buckets: []bucketRules{}}
	buckets, err := a.d.store.ListBuckets(r.Context())
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		c, err := a.d.repl.Configuration(r.Context(), b.Name)
		if errors.Is(err, replicate.ErrNoConfiguration) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ans.Buckets = append(ans.Buckets, bucketRules{Bucket: b.Name, Rules: c.Rules})
	}
	return ans, nil
}

func (a *adminAPI) bucketReplication(r *http.Request, _ *none) (*replicate.BucketStatus, error) {
	return a.d.repl.BucketStatus(r.Context(), r.PathValue("bucket"))
}

func (a *adminAPI) enableReplication(r *http.Request, in *replicate.EnableInput) (*replicate.Configuration, error) {
	return a.d.repl.Enable(r.Context(), r.PathValue("bucket"), in)
}

func (a *adminAPI) disableReplication(r *http.Request, _ *none) (none, error) {
	return none{}, a.d.repl.Disable(r.Context(), r.PathValue("bucket"))
}

func (a *adminAPI) startResync(r *http.Request, _ *none) (*replicate.ResyncProgress, error) {
	return a.d.repl.StartResync(r.Context(), r.PathValue("bucket"))
}

func (a *adminAPI) resyncStatus(r *http.Request, _ *none) (*replicate.ResyncProgress, error) {
	return a.d.repl.ResyncStatus(r.PathValue("id"))
}

// ---- the endpoint file

// endpointFile is where the daemon writes the URL of its HTTPS listener,
// so that admin commands find it from --data alone.
func endpointFile(dataDir string) string { return filepath.Join(dataDir, "endpoint") }

// writeEndpoint records the bound HTTPS address in DATA/endpoint. A
// wildcard address is written as the loopback address of its family, which
// the generated certificate is valid for.
func (d *daemon) writeEndpoint() error {
	if d.s3Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(d.s3Addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	url := "https://" + net.JoinHostPort(host, port) + "\n"
	if err := writeFileAtomic(endpointFile(d.dataDir), []byte(url), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", endpointFile(d.dataDir), err)
	}
	return nil
}

// readEndpoint reads DATA/endpoint.
func readEndpoint(dataDir string) (string, error) {
	data, err := os.ReadFile(endpointFile(dataDir))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}
