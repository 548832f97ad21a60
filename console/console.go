package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
)

// Prefix is the root of the console's paths.
const Prefix = "/console/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Config is what the console serves.
type Config struct {
	// Store is the store (required).
	Store *cryptostore.Store
	// Replication is cross-region replication (required).
	Replication *replicate.Manager
	// Region and Version are the daemon's, Started when it started.
	Region  string
	Version string
	Started time.Time
	// AccessKey and SecretKey are the admin's credentials: the only ones
	// that log in (see doc.go).
	AccessKey, SecretKey string
	// Stats are the S3 requests' samples for the overview's charts; nil
	// draws none.
	Stats *Stats
	// Logger logs logins, logouts and the changes made.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// SessionIdle and SessionMax bound a session (0: the defaults,
	// DefaultSessionIdle and DefaultSessionMax).
	SessionIdle, SessionMax time.Duration
	// FailedLoginDelay is how long a refused login's answer waits (0:
	// DefaultFailedLoginDelay; negative: none, for tests).
	FailedLoginDelay time.Duration
}

// Console is the web console: an http.Handler for the paths under Prefix.
type Console struct {
	cfg      Config
	store    *cryptostore.Store
	repl     *replicate.Manager
	log      *slog.Logger
	sessions *sessions
	throttle *throttle
	pages    map[string]*template.Template
	mux      *http.ServeMux
	assets   http.Handler
	jobs     resyncs
}

// New returns the console over cfg.Store and cfg.Replication.
func New(cfg Config) (*Console, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = DefaultSessionMax
	}
	if cfg.FailedLoginDelay == 0 {
		cfg.FailedLoginDelay = DefaultFailedLoginDelay
	}
	c := &Console{
		cfg:      cfg,
		store:    cfg.Store,
		repl:     cfg.Replication,
		log:      cfg.Logger,
		sessions: newSessions(cfg.Now, cfg.SessionIdle, cfg.SessionMax),
		throttle: newThrottle(cfg.Now),
		mux:      http.NewServeMux(),
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("console: assets: %w", err)
	}
	c.assets = http.StripPrefix(Prefix+"assets/", http.FileServerFS(sub))
	c.routes()
	return c, nil
}

// routes registers every page. Everything but the login page and the
// assets needs a session (c.page / c.action); every POST but the login's
// needs the session's CSRF token as well (c.action).
func (c *Console) routes() {
	c.mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	c.mux.HandleFunc("POST "+Prefix+"login", c.login)
	c.mux.Handle("POST "+Prefix+"logout", c.action(c.logout))
	c.mux.Handle("GET "+Prefix+"{$}", c.page(c.overview))
	c.mux.Handle("GET "+Prefix+"buckets", c.page(c.bucketsPage))
	c.mux.Handle("POST "+Prefix+"buckets", c.action(c.createBucket))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/delete", c.page(c.deleteBucketPage))
	c.mux.Handle("POST "+Prefix+"buckets/{bucket}/delete", c.action(c.deleteBucket))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/settings", c.page(c.settingsPage))
	c.mux.Handle("POST "+Prefix+"buckets/{bucket}/encryption", c.action(c.setEncryption))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/objects", c.page(c.objectsPage))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/object", c.page(c.objectPage))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/download", c.page(c.download))
	c.mux.Handle("POST "+Prefix+"buckets/{bucket}/upload", c.action(c.upload))
	c.mux.Handle("GET "+Prefix+"buckets/{bucket}/object/delete", c.page(c.deleteObjectPage))
	c.mux.Handle("POST "+Prefix+"buckets/{bucket}/object/delete", c.action(c.deleteObject))
	c.mux.Handle("GET "+Prefix+"keys", c.page(c.keysPage))
	c.mux.Handle("GET "+Prefix+"keys/{key}/{op}", c.page(c.keyActionPage))
	c.mux.Handle("POST "+Prefix+"keys/{key}/{op}", c.action(c.keyAction))
	c.mux.Handle("GET "+Prefix+"replication", c.page(c.replicationPage))
	c.mux.Handle("POST "+Prefix+"replication/{bucket}/resync", c.action(c.startResync))
	c.mux.Handle("GET "+Prefix+"replication/resync/{id}", c.page(c.resyncPage))
}

// ServeHTTP serves the console: over TLS only, with the headers every
// answer carries.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.TLS == nil {
		// The session cookie is Secure and passwords are typed here.
		http.Error(w, "the console is served over HTTPS only", http.StatusForbidden)
		return
	}
	if strings.HasPrefix(r.URL.Path, Prefix+"assets/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		hd.Set("Cache-Control", "public, max-age=3600")
		c.assets.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	if _, pattern := c.mux.Handler(r); pattern == "" {
		// Unknown paths are refused like known ones without a session:
		// nothing is told about the console's routes.
		if c.sessionOf(r) == nil {
			c.refuse(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// Serves reports whether the daemon should hand r to the console: a path
// under Prefix (or Prefix without its slash) that is not an S3 request. A
// request signed for S3 (an Authorization header, or a presigned URL's
// query) goes to the S3 API, so that a bucket named "console" stays
// reachable over S3.
func Serves(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, Prefix) && r.URL.Path != strings.TrimSuffix(Prefix, "/") {
		return false
	}
	return !s3Signed(r)
}

// s3Signed reports whether r carries S3 authentication (SigV4 or V2, in a
// header or a presigned URL's query).
func s3Signed(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	q := r.URL.Query()
	return q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm") || q.Has("AWSAccessKeyId") || q.Has("Signature")
}

// IsBrowserRoot reports whether r is a browser asking for "/" (a GET that
// accepts HTML and carries no S3 authentication), which the daemon
// redirects to the console. S3 clients (signed, presigned, or anonymous
// without Accept: text/html) are not.
func IsBrowserRoot(r *http.Request) bool {
	if r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.TLS == nil {
		return false
	}
	if r.Header.Get("Authorization") != "" || r.URL.RawQuery != "" {
		return false
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			return false
		}
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// page wraps a GET handler: it needs a session.
func (c *Console) page(fn func(w http.ResponseWriter, r *http.Request, s *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessionOf(r)
		if s == nil {
			c.refuse(w, r)
			return
		}
		if err := fn(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// action wraps a state-changing handler: it needs a session and the
// session's CSRF token (form field "csrf" or header X-CSRF-Token), and a
// same-origin request when the browser says where it comes from.
func (c *Console) action(fn func(w http.ResponseWriter, r *http.Request, s *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.sessionOf(r)
		if s == nil {
			c.refuse(w, r)
			return
		}
		if !sameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		tok := r.Header.Get("X-CSRF-Token")
		if tok == "" {
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
				// An upload sent by the form itself (no script): the token
				// is its first field. The files after it are streamed to
				// the store by the handler, never spooled here (a spool
				// would hold their plaintext).
				mr, err := r.MultipartReader()
				if err != nil {
					http.Error(w, "malformed form", http.StatusBadRequest)
					return
				}
				if p, err := mr.NextPart(); err == nil && p.FormName() == "csrf" {
					b, _ := io.ReadAll(io.LimitReader(p, 256))
					tok = string(b)
				}
				r = r.WithContext(context.WithValue(r.Context(), multipartKey{}, mr))
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
				tok = r.PostFormValue("csrf")
			}
		}
		if !s.checkCSRF(tok) {
			c.log.Warn("console: a request without a valid CSRF token was refused", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "missing or invalid CSRF token", http.StatusForbidden)
			return
		}
		if err := fn(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// multipartKey carries, in a request's context, the multipart reader whose
// first field (the CSRF token) action read.
type multipartKey struct{}

// refuse answers a request without a valid session: a browser's GET is
// sent to the login page; anything else is 401.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	http.Error(w, "log in to the console first", http.StatusUnauthorized)
}

// userError is an error shown to the user as is, with its status.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &userError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// fail renders an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := http.StatusInternalServerError
	msg := err.Error()
	var ue *userError
	switch {
	case errors.As(err, &ue):
		status = ue.status
	case errors.Is(err, cryptostore.ErrNoSuchBucket), errors.Is(err, cryptostore.ErrNoSuchKey),
		errors.Is(err, cryptostore.ErrKMSKeyNotFound), errors.Is(err, replicate.ErrNoSuchJob):
		status = http.StatusNotFound
	case errors.Is(err, cryptostore.ErrInvalidBucketName), errors.Is(err, cryptostore.ErrInvalidKey),
		errors.Is(err, cryptostore.ErrKMSInvalidArgument), errors.Is(err, cryptostore.ErrKMSKeyDisabled),
		errors.Is(err, cryptostore.ErrKMSKeyPendingDeletion), errors.Is(err, cryptostore.ErrKeyDisabled):
		status = http.StatusBadRequest
	case errors.Is(err, cryptostore.ErrBucketExists), errors.Is(err, cryptostore.ErrBucketNotEmpty),
		errors.Is(err, cryptostore.ErrSystemKey):
		status = http.StatusConflict
	default:
		c.log.Error("console: request failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, s, status, "error", "Error", "", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}
