package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
)

// daemon is one running sealfs: the store and its front doors. One process
// owns a data directory (Badger and the keyring are locked by it).
type daemon struct {
	dataDir string
	region  string
	logger  *slog.Logger
	started time.Time

	meta  *meta.DB
	kms   *kms.Local
	store *cryptostore.Store

	creds    credentials
	cert     tls.Certificate
	certFile string

	s3Addr, s3HTTPAddr string
	domain             string

	// handler serves the S3 API; health endpoints are served beside it.
	handler http.Handler

	mu       sync.Mutex
	onChange []func(cryptostore.ChangeEvent)
}

// newLogger builds the process logger: text on a terminal, JSON otherwise,
// unless --log-format says which.
func newLogger(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.String("log-format")
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text, json or auto, have %q", format)
}

// openDaemon opens the data directory: keys, metadata, store, credentials
// and certificate. Nothing listens yet.
func openDaemon(c *cli.Context) (_ *daemon, err error) {
	logger, err := newLogger(c, os.Stderr)
	if err != nil {
		return nil, exitUsage(err)
	}
	d := &daemon{
		dataDir:    c.String("data"),
		region:     c.String("region"),
		logger:     logger,
		started:    time.Now(),
		s3Addr:     c.String("s3"),
		s3HTTPAddr: c.String("s3-http"),
		domain:     c.String("domain"),
	}
	if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()

	root, source, err := kms.LoadRootKey(c.String("kms-root-key-file"), os.Getenv("SEALFS_KMS_ROOT_KEY"), d.dataDir)
	if err != nil {
		return nil, err
	}
	if source == kms.RootKeyGenerated {
		logger.Warn("generated a KMS root key inside the data directory; production keeps it off the data disk (--kms-root-key-file or SEALFS_KMS_ROOT_KEY)",
			"file", kms.RootKeyPath(d.dataDir))
	}
	d.kms, err = kms.OpenLocal(kms.Dir(d.dataDir), root, kms.LocalOptions{Region: d.region, Logger: logger})
	clear(root)
	if err != nil {
		return nil, err
	}
	d.meta, err = meta.Open(filepath.Join(d.dataDir, "meta"), meta.Options{Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("opening metadata: %w", err)
	}
	d.store, err = cryptostore.Open(c.Context, cryptostore.Config{
		Dir:      d.dataDir,
		Meta:     d.meta,
		KMS:      d.kms,
		Region:   d.region,
		Logger:   logger,
		OnChange: d.changed,
	})
	if err != nil {
		return nil, err
	}
	var created bool
	if d.creds, created, err = loadOrCreateCredentials(d.dataDir); err != nil {
		return nil, err
	}
	if created {
		logger.Info("generated S3 credentials", "file", d.creds.File)
	}
	if d.s3Addr != "" {
		if d.cert, d.certFile, err = loadOrCreateCert(d.dataDir, c.String("tls-cert"), c.String("tls-key")); err != nil {
			return nil, err
		}
	}
	d.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the S3 API is not served by this build", http.StatusNotImplemented)
	})
	return d, nil
}

// subscribe registers a function called after every committed change.
//
//lint:ignore U1000 the mount command (in progress) invalidates kernel caches with it
func (d *daemon) subscribe(fn func(cryptostore.ChangeEvent)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onChange = append(d.onChange, fn)
}

func (d *daemon) changed(ev cryptostore.ChangeEvent) {
	d.mu.Lock()
	fns := d.onChange
	d.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// routes puts the health endpoints beside the S3 API.
func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		if _, err := d.store.ListBuckets(r.Context()); err != nil {
			http.Error(w, "store not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("/", d.handler)
	return mux
}

// serve runs the listeners until ctx ends, then shuts them down gracefully:
// requests in flight finish first. ready, if set, is called once every
// listener is bound.
func (d *daemon) serve(ctx context.Context, ready func()) error {
	type listener struct {
		srv *http.Server
		ln  net.Listener
	}
	var ls []listener
	h := d.routes()
	errLog := slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)
	if d.s3Addr != "" {
		ln, err := net.Listen("tcp", d.s3Addr)
		if err != nil {
			return fmt.Errorf("S3 listener on %s: %w", d.s3Addr, err)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
			TLSConfig: &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{d.cert},
				NextProtos:   []string{"http/1.1"}, // HTTP/2 is slower for large bodies here
			},
		}
		ls = append(ls, listener{srv, tls.NewListener(ln, srv.TLSConfig)})
		d.s3Addr = ln.Addr().String()
	}
	if d.s3HTTPAddr != "" {
		ln, err := net.Listen("tcp", d.s3HTTPAddr)
		if err != nil {
			for _, l := range ls {
				l.ln.Close()
			}
			return fmt.Errorf("plain-HTTP listener on %s: %w", d.s3HTTPAddr, err)
		}
		ls = append(ls, listener{&http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, ErrorLog: errLog}, ln})
		d.s3HTTPAddr = ln.Addr().String()
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() { errc <- l.srv.Serve(l.ln) }()
	}
	if ready != nil {
		ready()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, l := range ls {
		if serr := l.srv.Shutdown(shutdown); serr != nil && err == nil {
			err = serr
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// banner tells, once and briefly, where everything is.
func (d *daemon) banner(w io.Writer, mountpoint string) {
	var b strings.Builder
	fmt.Fprintf(&b, "sealfs %s is running (region %s, data %s)\n", version, d.region, d.dataDir)
	if mountpoint != "" {
		fmt.Fprintf(&b, "  mount:       %s\n", mountpoint)
	}
	if d.s3Addr != "" {
		fmt.Fprintf(&b, "  S3 endpoint: https://%s\n", d.s3Addr)
		fmt.Fprintf(&b, "  CA cert:     %s\n", d.certFile)
	}
	if d.s3HTTPAddr != "" {
		fmt.Fprintf(&b, "  plain HTTP:  http://%s (objects of encrypting buckets are refused here)\n", d.s3HTTPAddr)
	}
	if d.creds.File != "" {
		fmt.Fprintf(&b, "  credentials: %s\n", d.creds.File)
	} else {
		fmt.Fprintf(&b, "  credentials: from SEALFS_ACCESS_KEY / SEALFS_SECRET_KEY\n")
	}
	if d.s3Addr != "" {
		creds := "AWS_SHARED_CREDENTIALS_FILE=" + d.creds.File
		if d.creds.File == "" {
			creds = "AWS_ACCESS_KEY_ID=$SEALFS_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SEALFS_SECRET_KEY"
		}
		fmt.Fprintf(&b, "  try:         %s AWS_CA_BUNDLE=%s aws --region %s --endpoint-url https://%s s3 ls\n",
			creds, d.certFile, d.region, d.s3Addr)
	}
	io.WriteString(w, b.String())
}

// close closes the store, then the metadata database and the KMS.
func (d *daemon) close() error {
	var errs []error
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.meta != nil {
		errs = append(errs, d.meta.Close())
	}
	if d.kms != nil {
		errs = append(errs, d.kms.Close())
	}
	return errors.Join(errs...)
}
