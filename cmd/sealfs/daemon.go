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
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/sealfs/sealfs/admin"
	"github.com/sealfs/sealfs/console"
	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/replicate"
	"github.com/sealfs/sealfs/s3"
)

// defaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT
// is unset. The daemon's resident size is what the runtime holds plus the
// pages of Badger's mapped files it has touched, and the heap grows to the
// limit under load. Badger's tables are not compressed (meta), so a block
// read is a slice of its mapped table instead of a decompressed copy on
// the heap: the mapped pages peak ~120 MiB in make bench-s3 (~94 MiB when
// tables were compressed) and the heap needs less. With 176 MiB, as when
// tables were compressed, the peak reached 257–268 MiB in three of five
// runs of the 4 KiB rows; with 160 MiB it read 231 and 234 MiB, the
// compressed build's 227–247 MiB.
const defaultMemoryLimit = 160 << 20

// defaultGCPercent is the collector's GOGC when GOGC is unset: a collection
// starts when the heap has grown by half of what is live, not by all of
// it. The limit above is a ceiling, and with GOGC at 100 the heap reached
// it under small writes (the anonymous peak 124-157 MiB in make bench-s3's
// 4 KiB rows), while the mapped pages of Badger's tables and logs, which
// the limit does not count, reached ~120 MiB at other times: the peak
// resident size read 243-271 MiB in some runs. At 50 the anonymous peak
// read 102-112 MiB and the resident peak 210-232 MiB, with PUT and GET
// 4 KiB x16 at 1.00-1.09x and 0.98-1.05x of GOGC 100 in the same runs,
// and an untar into the mount no slower.
const defaultGCPercent = 50

// daemon is one running sealfs: the store and its front doors. One process
// owns a data directory (Badger and the keyring are locked by it).
type daemon struct {
	dataDir string
	region  string
	logger  *slog.Logger
	started time.Time

	meta  *meta.DB
	kms   kmsEngine
	store *cryptostore.Store
	// repl is cross-region replication: the store's commit hook and the
	// workers that send to other regions.
	repl *replicate.Manager
	// replq is replication's queue, records and sealed secrets in the
	// store's metadata (the Manager's only way to them).
	replq *cryptostore.ReplicationQueue

	creds    credentials
	cert     tls.Certificate
	certFile string

	s3Addr, s3HTTPAddr string
	domain             string

	// handler serves the S3 API; health endpoints are served beside it.
	handler http.Handler

	// metrics, when --metrics is given, are served on metricsAddr.
	metrics     *metrics
	metricsAddr string
	// audit is the audit log of key use (audit.go).
	audit *auditLog
	// consoleStats, when the web console is on (--console), count the S3
	// requests for its charts.
	consoleStats *console.Stats

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
	if os.Getenv("GOMEMLIMIT") == "" {
		// Badger keeps up to ~85 MiB of memtables live; without a limit
		// the collector lets the heap grow to twice what is live.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := os.MkdirAll(d.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if c.Bool("pprof") && c.String("metrics") == "" {
		return nil, exitUsage(errors.New("--pprof is served on the --metrics listener: give --metrics too"))
	}
	metaOpts := meta.Options{Logger: logger}
	if addr := c.String("metrics"); addr != "" {
		d.metrics, d.metricsAddr = newMetrics(), addr
		d.metrics.pprof = c.Bool("pprof")
		metaOpts.ObserveCommit = d.metrics.observeCommit
	}

	// The root key leaves the environment as soon as it is read, so that no
	// child process (fusermount3, a hook) inherits it.
	kmsURL := c.String("kms")
	external := kmsURL != "" && kmsURL != "local"
	var (
		root   []byte
		source string
	)
	if envRoot := kms.TakeRootKeyEnv(); external {
		// Master keys live in the external KMS: no root key is read or
		// generated.
	} else if root, source, err = kms.LoadRootKey(c.String("kms-root-key-file"), envRoot, d.dataDir); err != nil {
		return nil, err
	}
	if source == kms.RootKeyGenerated {
		logger.Warn("generated a KMS root key inside the data directory; production keeps it off the data disk (--kms-root-key-file or SEALFS_KMS_ROOT_KEY)",
			"file", kms.RootKeyPath(d.dataDir))
	}
	metaURL := metaLocation(c, d.dataDir)
	d.meta, err = meta.Open(metaURL, metaOpts)
	if err != nil {
		clear(root)
		return nil, fmt.Errorf("opening metadata: %w", err)
	}
	kmsOpts := kms.LocalOptions{Region: d.region, Logger: logger}
	if sharedMeta(metaURL) {
		// Several gateways share this metadata: the keyring lives in it
		// (a keyring file in DATA/kms is imported the first time).
		kmsOpts.Store = kms.MetaKeyring(d.meta)
	}
	if external {
		d.kms, err = openExternalKMS(kmsURL, logger)
	} else {
		d.kms, err = kms.OpenLocal(kms.Dir(d.dataDir), root, kmsOpts)
	}
	clear(root)
	if err != nil {
		return nil, err
	}
	var storeKMS kms.KMS = d.kms
	if d.metrics != nil {
		storeKMS = &countingKMS{KMS: d.kms, arn: d.kms.ARN, ops: d.metrics.kmsOps}
	}
	if d.replq, err = cryptostore.NewReplicationQueue(d.meta, d.kms, logger); err != nil {
		return nil, err
	}
	rc := replicationConfig(c)
	rc.Queue, rc.Region, rc.Logger = d.replq, d.region, logger
	if d.repl, err = replicate.New(rc); err != nil {
		return nil, err
	}
	if d.audit, err = openAuditLog(c, d.dataDir, logger, d.metrics); err != nil {
		return nil, err
	}
	blobDir, blobs, err := openBlobs(c, logger)
	if err != nil {
		return nil, err
	}
	if blobDir == "" && sharedMeta(metaURL) {
		logger.Warn("shared metadata with blobs in this gateway's data directory: other gateways cannot read what this one writes; give every gateway the same --blobs")
	}
	storeCfg := cryptostore.Config{
		Dir:      d.dataDir,
		BlobDir:  blobDir,
		Blobs:    blobs,
		Meta:     d.meta,
		KMS:      storeKMS,
		Region:   d.region,
		Logger:   logger,
		OnCommit: d.repl.OnCommit,
		OnChange: d.changed,
		Audit:    d.audit.record,

		SyncInterval: syncInterval(c),
	}
	if d.metrics != nil {
		storeCfg.ObserveBlobCommit = d.metrics.observeBlobCommit
	}
	d.store, err = cryptostore.Open(c.Context, storeCfg)
	if err != nil {
		return nil, err
	}
	d.subscribe(func(cryptostore.ChangeEvent) { d.repl.Notify() })
	d.repl.Start(d.store)
	if d.metrics != nil {
		d.replicationMetrics()
		sc := &storeCollector{stats: d.store.Stats, logger: logger}
		d.subscribe(sc.change)
		d.metrics.reg.MustRegister(sc)
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
	s3cfg := s3.Config{Store: d.store, Credentials: s3.StaticCredentials(d.creds.AccessKey, d.creds.SecretKey), Region: d.region, Domain: d.domain, Logger: logger, Replication: d.repl}
	if d.metrics != nil {
		s3cfg.Observe = d.metrics.observeS3
	}
	if c.Bool("console") {
		d.consoleStats = console.NewStats()
		s3cfg.Observe = chainObserve(s3cfg.Observe, d.consoleStats.Observe)
	}
	d.handler = s3.NewHandler(s3cfg)
	return d, nil
}

// subscribe registers a function called after every committed change.
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

// routes puts the health endpoints and the admin API beside the S3 API.
func (d *daemon) routes() http.Handler {
	adminAPI := admin.New(admin.Config{Store: d.store, Replication: d.repl, Region: d.region, Version: version,
		Started: d.started, AccessKey: d.creds.AccessKey, SecretKey: d.creds.SecretKey})
	var webConsole http.Handler
	if d.consoleStats != nil {
		con, err := console.New(console.Config{Store: d.store, Replication: d.repl, Region: d.region, Version: version,
			Started: d.started, AccessKey: d.creds.AccessKey, SecretKey: d.creds.SecretKey, Stats: d.consoleStats, Logger: d.logger})
		if err != nil {
			d.logger.Error("the web console is off", "err", err)
		} else {
			webConsole = con
		}
	}
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
	// Only the health paths go through the mux: it cleans paths and would
	// redirect S3 object keys holding "//", "./" or "../".
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/health/live" || p == "/health/ready" {
			mux.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, admin.Prefix) {
			adminAPI.ServeHTTP(w, r)
			return
		}
		// The web console: HTTPS only (it refuses plain HTTP itself), and
		// "/" from a browser (never an S3 client's ListBuckets).
		if webConsole != nil && console.Serves(r) {
			webConsole.ServeHTTP(w, r)
			return
		}
		if webConsole != nil && console.IsBrowserRoot(r) {
			http.Redirect(w, r, console.Prefix, http.StatusSeeOther)
			return
		}
		d.handler.ServeHTTP(w, r)
	})
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
		srv.ConnContext = s3.ConnContext
		ls = append(ls, listener{srv, tls.NewListener(s3.BatchListener(ln), srv.TLSConfig)})
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
	if err := d.writeEndpoint(); err != nil {
		d.logger.Warn("admin commands will not find this daemon from --data", "err", err)
	}
	if d.metrics != nil {
		ln, err := net.Listen("tcp", d.metricsAddr)
		if err != nil {
			err = fmt.Errorf("metrics listener on %s: %w", d.metricsAddr, err)
			for _, l := range ls {
				l.srv.Close()
			}
			return err
		}
		d.metricsAddr = ln.Addr().String()
		go func() {
			if err := d.metrics.serve(ctx, ln); err != nil {
				d.logger.Error("metrics listener", "err", err)
			}
		}()
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
	if d.s3Addr != "" && d.consoleStats != nil {
		fmt.Fprintf(&b, "  console:     https://%s/console/\n", d.s3Addr)
	}
	if d.metrics != nil {
		fmt.Fprintf(&b, "  metrics:     http://%s/metrics\n", d.metricsAddr)
	}
	if d.meta.ReadOnly() {
		fmt.Fprintf(&b, "  read-only:   the data disk is full; writes are refused until %d MiB are free, reads are served\n", meta.Reserve>>20)
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

// close stops replication, closes the store, then the KMS (which may
// read a shared keyring from the metadata) and the metadata database.
func (d *daemon) close() error {
	var errs []error
	if d.repl != nil {
		errs = append(errs, d.repl.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	errs = append(errs, d.audit.Close())
	if d.replq != nil {
		errs = append(errs, d.replq.Close())
	}
	if d.kms != nil {
		errs = append(errs, d.kms.Close())
	}
	if d.meta != nil {
		errs = append(errs, d.meta.Close())
	}
	return errors.Join(errs...)
}

// sharedMeta reports whether the metadata URL names an engine several
// gateways share (anything but the embedded Badger: a plain path or
// badger://).
func sharedMeta(url string) bool {
	scheme, _, ok := strings.Cut(url, "://")
	return ok && !strings.EqualFold(scheme, "badger")
}

// chainObserve calls every non-nil observer of an S3 request in turn.
func chainObserve(fns ...func(op string, status int, in, out int64, d time.Duration)) func(op string, status int, in, out int64, d time.Duration) {
	var live []func(op string, status int, in, out int64, d time.Duration)
	for _, fn := range fns {
		if fn != nil {
			live = append(live, fn)
		}
	}
	return func(op string, status int, in, out int64, d time.Duration) {
		for _, fn := range live {
			fn(op, status, in, out, d)
		}
	}
}
