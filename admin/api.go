package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// Prefix is the root of the admin API's paths.
const Prefix = "/sealfs-admin/v1/"

// maxAdminBody bounds an admin request body.
const maxAdminBody = 1 << 20

// Config is what the admin API serves.
type Config struct {
	// Store is the store (required): buckets, keys, status and scrub.
	Store *cryptostore.Store
	// Replication is cross-region replication (required for the
	// replication routes).
	Replication *replicate.Manager
	// Region is the daemon's region, Version its version and Started the
	// time it started, for the status routes.
	Region  string
	Version string
	Started time.Time
	// AccessKey and SecretKey are the credentials requests are signed with.
	AccessKey, SecretKey string
}

// API is the admin API: an http.Handler for the paths under Prefix.
type API struct {
	store    *cryptostore.Store
	repl     *replicate.Manager
	cfg      Config
	verifier *sigv4.Verifier
	mux      *http.ServeMux
	scrubs   scrubJobs
	rewraps  jobs[RewrapJob] // keys.go
	encrypts jobs[EncryptJob]
}

// New returns the admin API over cfg.Store and cfg.Replication.
func New(cfg Config) *API {
	a := &API{
		store:    cfg.Store,
		repl:     cfg.Replication,
		cfg:      cfg,
		verifier: &sigv4.Verifier{Lookup: staticCredentials(cfg.AccessKey, cfg.SecretKey)},
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
	// Users and access keys.
	a.userRoutes()
	return a
}

// handle registers h for "METHOD path", path relative to Prefix.
func (a *API) handle(pattern string, h http.Handler) {
	method, path, _ := strings.Cut(pattern, " ")
	a.mux.Handle(method+" "+Prefix+path, h)
}

// ServeHTTP authenticates the request, makes its body the verifying
// payload reader, and routes it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	var re *cryptostore.ReplicationRuleError
	switch {
	case errors.Is(err, replicate.ErrInvalidRule), errors.Is(err, replicate.ErrInvalidTarget):
		e.Status, e.Code = http.StatusBadRequest, "InvalidArgument"
		if errors.As(err, &re) {
			e.Message = re.Message
		}
	case errors.As(err, &se): // sigv4's refusals
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

func (a *API) listTargets(r *http.Request, _ *none) ([]replicate.Target, error) {
	return a.repl.Targets(r.Context())
}

func (a *API) addTarget(r *http.Request, in *replicate.TargetInput) (*replicate.Target, error) {
	return a.repl.AddTarget(r.Context(), in)
}

func (a *API) removeTarget(r *http.Request, _ *none) (none, error) {
	return none{}, a.repl.RemoveTarget(r.Context(), r.PathValue("region"))
}

// ReplicationStatus answers GET replication/status: the daemon-wide
// replication status.
type ReplicationStatus struct {
	Region string `json:"region"`
	*replicate.Stats
	Buckets []BucketRules `json:"buckets"`
}

// BucketRules are a bucket's replication rules.
type BucketRules struct {
	Bucket string           `json:"bucket"`
	Rules  []replicate.Rule `json:"rules"`
}

func (a *API) replicationStatus(r *http.Request, _ *none) (*ReplicationStatus, error) {
	st, err := a.repl.Stats(r.Context())
	if err != nil {
		return nil, err
	}
	ans := &ReplicationStatus{Region: a.cfg.Region, Stats: st, Buckets: []BucketRules{}}
	buckets, err := a.store.ListBuckets(r.Context())
	if err != nil {
		return nil, err
	}
	for _, b := range buckets {
		c, err := a.repl.Configuration(r.Context(), b.Name)
		if errors.Is(err, replicate.ErrNoConfiguration) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ans.Buckets = append(ans.Buckets, BucketRules{Bucket: b.Name, Rules: c.Rules})
	}
	return ans, nil
}

func (a *API) bucketReplication(r *http.Request, _ *none) (*replicate.BucketStatus, error) {
	return a.repl.BucketStatus(r.Context(), r.PathValue("bucket"))
}

func (a *API) enableReplication(r *http.Request, in *replicate.EnableInput) (*replicate.Configuration, error) {
	return a.repl.Enable(r.Context(), r.PathValue("bucket"), in)
}

func (a *API) disableReplication(r *http.Request, _ *none) (none, error) {
	return none{}, a.repl.Disable(r.Context(), r.PathValue("bucket"))
}

func (a *API) startResync(r *http.Request, _ *none) (*replicate.ResyncProgress, error) {
	return a.repl.StartResync(r.Context(), r.PathValue("bucket"))
}

func (a *API) resyncStatus(r *http.Request, _ *none) (*replicate.ResyncProgress, error) {
	return a.repl.ResyncStatus(r.PathValue("id"))
}

// staticCredentials looks up the one access key the daemon has.
func staticCredentials(accessKey, secret string) func(string) (string, bool) {
	return func(ak string) (string, bool) {
		if ak != "" && ak == accessKey {
			return secret, true
		}
		return "", false
	}
}
