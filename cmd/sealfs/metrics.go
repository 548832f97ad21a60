package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/replicate"
)

// Prometheus metrics, served on their own plain-HTTP listener (--metrics,
// off by default) so that they can be bound to a private address: they
// carry bucket-level counts, never keys, secrets or content.

func metricsFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "metrics", EnvVars: []string{"SEALFS_METRICS"}, Category: "Monitoring",
			Usage: "address of a plain-HTTP listener serving Prometheus metrics on /metrics (off unless given; bind it to a private address)"},
		&cli.BoolFlag{Name: "pprof", EnvVars: []string{"SEALFS_PPROF"}, Category: "Monitoring",
			Usage: "also serve Go's profiler under /debug/pprof/ on the --metrics listener, with blocking and mutex profiles sampled (for finding where time goes; costs a little CPU)"},
	}, auditFlags()...)
}

type metrics struct {
	reg   *prometheus.Registry
	pprof bool // serve /debug/pprof/ beside /metrics

	s3Requests *prometheus.CounterVec
	s3Duration *prometheus.HistogramVec
	s3BytesIn  *prometheus.CounterVec
	s3BytesOut *prometheus.CounterVec
	kmsOps     *prometheus.CounterVec
	fuseOps    *prometheus.CounterVec
	fuseDur    *prometheus.HistogramVec
	keyUses    *prometheus.CounterVec // audit.go
	auditFull  prometheus.Counter     // audit.go
	// commitPhases: the metadata store's write transactions' time, a
	// histogram per phase (filled in newMetrics, read-only after).
	commitPhases map[meta.CommitPhase]prometheus.Observer
	blobCommit   prometheus.Histogram // cryptostore.Config.ObserveBlobCommit
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		s3Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_s3_requests_total", Help: "S3 requests by operation and HTTP status.",
		}, []string{"op", "status"}),
		s3Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sealfs_s3_request_duration_seconds", Help: "S3 request latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"op"}),
		s3BytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_s3_received_bytes_total", Help: "Request body bytes received by operation.",
		}, []string{"op"}),
		s3BytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_s3_sent_bytes_total", Help: "Response body bytes sent by operation.",
		}, []string{"op"}),
		kmsOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_kms_operations_total", Help: "KMS operations by kind and result (ok, disabled, not_found, invalid, error).",
		}, []string{"op", "result"}),
		fuseOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_fuse_operations_total", Help: "FUSE operations by kind and result (ok or the errno's name).",
		}, []string{"op", "result"}),
		keyUses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealfs_key_uses_total", Help: "Uses of master keys (the audit log's lines) by action, result (allowed, denied, failed) and user (the admin's users, few, and admin).",
		}, []string{"action", "result", "user"}),
		auditFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealfs_audit_queue_full_total", Help: "Audit log lines that waited for room in the writer's queue (the request waited with them).",
		}),
		fuseDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sealfs_fuse_operation_duration_seconds", Help: "FUSE operation latency by kind.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 3, 14),
		}, []string{"op"}),
	}
	commitDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sealfs_meta_commit_phase_seconds",
		Help:    "Time of each phase of the metadata store's write transactions, per try: begin (starting the transaction; Badger waits there for earlier commits to be applied), body (its reads and writes), commit (the engine's commit, not yet synced on Badger), sync (waiting for the commit to be durable).",
		Buckets: prometheus.ExponentialBuckets(0.000005, 3, 14),
	}, []string{"phase"})
	m.commitPhases = map[meta.CommitPhase]prometheus.Observer{}
	for _, p := range meta.CommitPhases() {
		m.commitPhases[p] = commitDur.WithLabelValues(p.String())
	}
	m.blobCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sealfs_blob_commit_seconds",
		Help:    "Time a written blob took to become durable once its last byte was written: the file store's fsync (and rename and directory sync for a file not created ahead), a remote store's completion of the upload.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
	})
	m.reg.MustRegister(m.s3Requests, m.s3Duration, m.s3BytesIn, m.s3BytesOut, m.kmsOps, m.fuseOps, m.fuseDur, m.keyUses, m.auditFull,
		commitDur, m.blobCommit, faultCollector{},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series a dashboard or an alert names exists, at zero, from
	// the start: a rate() over a series that appears with its first event
	// misses that event, and an absent series looks like a broken scrape.
	for _, op := range s3Ops {
		m.s3Requests.WithLabelValues(op, "200")
		m.s3Duration.WithLabelValues(op)
		m.s3BytesIn.WithLabelValues(op)
		m.s3BytesOut.WithLabelValues(op)
	}
	for _, op := range []string{"CreateKey", "GenerateDataKey", "Decrypt", "Encrypt"} {
		for _, result := range []string{"ok", "disabled", "not_found", "invalid", "error"} {
			m.kmsOps.WithLabelValues(op, result)
		}
	}
	for _, action := range []string{"kms:GenerateDataKey", "kms:Decrypt"} {
		for _, result := range []string{"allowed", "denied", "failed"} {
			m.keyUses.WithLabelValues(action, result, "admin")
		}
	}
	for _, op := range fuseOps {
		m.fuseOps.WithLabelValues(op, "ok")
		m.fuseOps.WithLabelValues(op, "EIO")
		m.fuseDur.WithLabelValues(op)
	}
	b := readBuildInfo()
	commit := b.Commit
	if b.Modified {
		commit += "-modified"
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sealfs_build_info", Help: "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": commit, "goversion": b.Go},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(buildInfo)
	return m
}

// s3Ops are the S3 operations whose series exist from the start.
var s3Ops = []string{"ListBuckets", "CreateBucket", "DeleteBucket", "HeadBucket", "ListObjects", "ListObjectsV2",
	"GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects",
	"CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload"}

// fuseOps are the FUSE operations whose series exist from the start.
var fuseOps = []string{"Lookup", "GetAttr", "SetAttr", "Mkdir", "Unlink", "Rmdir", "Rename", "Symlink",
	"SetXAttr", "RemoveXAttr", "Create", "Open", "Flush", "Fsync", "OpenDir", "ReadDir", "ReadDirPlus", "StatFs", "Read", "Write"}

// Counting the store's contents reads every object record, so a scrape
// counts again only when something changed since the last count and that
// count is at least storeStatsMinAge old (or, changed or not, every
// storeStatsMaxAge).
const (
	storeStatsMinAge = 5 * time.Second
	storeStatsMaxAge = 5 * time.Minute
)

// storeCollector exports the store's contents: buckets, objects, bytes
// and the encrypted share, in total and per bucket.
type storeCollector struct {
	stats  func(context.Context) ([]cryptostore.BucketStats, error)
	logger *slog.Logger

	changed atomic.Bool // set without waiting for a count in progress

	mu   sync.Mutex
	last []cryptostore.BucketStats
	at   time.Time
}

// change notes a committed change (subscribed to the store's events).
func (c *storeCollector) change(cryptostore.ChangeEvent) { c.changed.Store(true) }

var (
	descBuckets       = prometheus.NewDesc("sealfs_buckets", "Buckets.", nil, nil)
	descObjects       = prometheus.NewDesc("sealfs_objects", "Objects in all buckets.", nil, nil)
	descBytes         = prometheus.NewDesc("sealfs_bytes", "Bytes of objects in all buckets.", nil, nil)
	descEncObjects    = prometheus.NewDesc("sealfs_encrypted_objects", "Objects stored encrypted.", nil, nil)
	descEncBytes      = prometheus.NewDesc("sealfs_encrypted_bytes", "Bytes of objects stored encrypted.", nil, nil)
	descEncShare      = prometheus.NewDesc("sealfs_encrypted_share", "Share of the stored bytes that are encrypted, 0 to 1 (by objects when no object has bytes; 1 when empty).", nil, nil)
	descBucketObjects = prometheus.NewDesc("sealfs_bucket_objects", "Objects in a bucket.", []string{"bucket"}, nil)
	descBucketBytes   = prometheus.NewDesc("sealfs_bucket_bytes", "Bytes of objects in a bucket.", []string{"bucket"}, nil)
	descBucketEnc     = prometheus.NewDesc("sealfs_bucket_encrypted_bytes", "Bytes of a bucket's objects stored encrypted.", []string{"bucket"}, nil)
	descBucketDefault = prometheus.NewDesc("sealfs_bucket_default_encryption", "1 when the bucket's default encryption is on.", []string{"bucket"}, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuckets, descObjects, descBytes, descEncObjects, descEncBytes, descEncShare,
		descBucketObjects, descBucketBytes, descBucketEnc, descBucketDefault} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if age := time.Since(c.at); c.last == nil || age > storeStatsMaxAge || (c.changed.Load() && age > storeStatsMinAge) {
		c.changed.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := c.stats(ctx)
		cancel()
		if err != nil {
			c.changed.Store(true)
			c.logger.Warn("store metrics", "err", err)
		} else {
			c.last, c.at = st, time.Now()
		}
	}
	stats := c.last
	c.mu.Unlock()
	var objs, bytes, encObjs, encBytes int64
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, b := range stats {
		objs += b.Objects
		bytes += b.Bytes
		encObjs += b.EncryptedObjects
		encBytes += b.EncryptedBytes
		gauge(descBucketObjects, float64(b.Objects), b.Bucket)
		gauge(descBucketBytes, float64(b.Bytes), b.Bucket)
		gauge(descBucketEnc, float64(b.EncryptedBytes), b.Bucket)
		on := 0.0
		if b.Encryption {
			on = 1
		}
		gauge(descBucketDefault, on, b.Bucket)
	}
	share := 1.0
	switch {
	case bytes > 0:
		share = float64(encBytes) / float64(bytes)
	case objs > 0:
		share = float64(encObjs) / float64(objs)
	}
	gauge(descBuckets, float64(len(stats)))
	gauge(descObjects, float64(objs))
	gauge(descBytes, float64(bytes))
	gauge(descEncObjects, float64(encObjs))
	gauge(descEncBytes, float64(encBytes))
	gauge(descEncShare, share)
}

// observeS3 records one S3 request.
func (m *metrics) observeS3(op string, status int, in, out int64, d time.Duration) {
	m.s3Requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.s3Duration.WithLabelValues(op).Observe(d.Seconds())
	if in > 0 {
		m.s3BytesIn.WithLabelValues(op).Add(float64(in))
	}
	if out > 0 {
		m.s3BytesOut.WithLabelValues(op).Add(float64(out))
	}
}

// gauge registers a value read when scraped.
func (m *metrics) gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// serve serves /metrics on ln until ctx ends.
func (m *metrics) serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if m.pprof {
		servePprof(mux)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// countingKMS counts every KMS call by kind and result. It passes ARN
// through so the store can name keys.
type countingKMS struct {
	kms.KMS
	arn func(string) string
	ops *prometheus.CounterVec
}

func (k *countingKMS) ARN(id string) string { return k.arn(id) }

func (k *countingKMS) count(op string, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, kms.ErrKeyDisabled), errors.Is(err, kms.ErrKeyPendingDeletion):
		result = "disabled"
	case errors.Is(err, kms.ErrKeyNotFound):
		result = "not_found"
	case errors.Is(err, kms.ErrInvalidCiphertext):
		result = "invalid"
	default:
		result = "error"
	}
	k.ops.WithLabelValues(op, result).Inc()
}

func (k *countingKMS) CreateKey(ctx context.Context, req *kms.CreateKeyRequest) (*kms.KeyMetadata, error) {
	km, err := k.KMS.CreateKey(ctx, req)
	k.count("CreateKey", err)
	return km, err
}

func (k *countingKMS) GenerateDataKey(ctx context.Context, req *kms.GenerateDataKeyRequest) (kms.DEK, error) {
	dek, err := k.KMS.GenerateDataKey(ctx, req)
	k.count("GenerateDataKey", err)
	return dek, err
}

func (k *countingKMS) Decrypt(ctx context.Context, req *kms.DecryptRequest) ([]byte, error) {
	p, err := k.KMS.Decrypt(ctx, req)
	k.count("Decrypt", err)
	return p, err
}

func (k *countingKMS) Encrypt(ctx context.Context, req *kms.EncryptRequest) ([]byte, error) {
	c, err := k.KMS.Encrypt(ctx, req)
	k.count("Encrypt", err)
	return c, err
}

// replicationMetrics exports the replication backlog and counters, read
// from the queue when scraped.
func (d *daemon) replicationMetrics() {
	// One scrape reads the queue once: Stats is kept for a second.
	var mu sync.Mutex
	var last *replicate.Stats
	var at time.Time
	stat := func(fn func(st *replicate.Stats) float64) func() float64 {
		return func() float64 {
			mu.Lock()
			defer mu.Unlock()
			if last == nil || time.Since(at) > time.Second {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				st, err := d.repl.Stats(ctx)
				cancel()
				if err != nil {
					d.logger.Warn("replication metrics", "err", err)
					return 0
				}
				last, at = st, time.Now()
			}
			return fn(last)
		}
	}
	m := d.metrics
	m.gauge("sealfs_replication_backlog", "Objects queued for replication.",
		stat(func(st *replicate.Stats) float64 { return float64(st.Backlog) }))
	m.gauge("sealfs_replication_oldest_pending_seconds", "Age of the oldest queued replication work.",
		stat(func(st *replicate.Stats) float64 { return st.OldestPendingAge.Seconds() }))
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sealfs_replication_failed_total", Help: "Objects marked FAILED."},
			stat(func(st *replicate.Stats) float64 { return float64(st.Failed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sealfs_replication_completed_total", Help: "Objects replicated."},
			stat(func(st *replicate.Stats) float64 { return float64(st.Completed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sealfs_replication_retries_total", Help: "Transient replication failures retried."},
			stat(func(st *replicate.Stats) float64 { return float64(st.Retries) })),
	)
}

// observeCommit records one phase of a metadata write transaction
// (meta.Options.ObserveCommit).
func (m *metrics) observeCommit(p meta.CommitPhase, d time.Duration) {
	if o := m.commitPhases[p]; o != nil {
		o.Observe(d.Seconds())
	}
}

// observeBlobCommit records one blob made durable
// (cryptostore.Config.ObserveBlobCommit).
func (m *metrics) observeBlobCommit(d time.Duration) { m.blobCommit.Observe(d.Seconds()) }

// faultCollector exports the daemon's page faults (getrusage). On a
// virtual machine a first touch of a page can cost microseconds: writes
// into memory-mapped files (Badger's logs and tables) and fresh heap pay
// it per page.
type faultCollector struct{}

var (
	descMinorFaults = prometheus.NewDesc("sealfs_process_minor_page_faults_total", "Page faults the daemon took that needed no disk read (getrusage ru_minflt).", nil, nil)
	descMajorFaults = prometheus.NewDesc("sealfs_process_major_page_faults_total", "Page faults the daemon took that read from disk (getrusage ru_majflt).", nil, nil)
)

func (faultCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMinorFaults
	ch <- descMajorFaults
}

func (faultCollector) Collect(ch chan<- prometheus.Metric) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descMinorFaults, prometheus.CounterValue, float64(ru.Minflt))
	ch <- prometheus.MustNewConstMetric(descMajorFaults, prometheus.CounterValue, float64(ru.Majflt))
}

// observeFUSE records one FUSE operation.
func (m *metrics) observeFUSE(op string, errno syscall.Errno, d time.Duration) {
	m.fuseOps.WithLabelValues(op, errnoLabel(errno)).Inc()
	m.fuseDur.WithLabelValues(op).Observe(d.Seconds())
}

// errnoLabel names the results worth telling apart; the label's values
// stay few.
func errnoLabel(e syscall.Errno) string {
	switch e {
	case 0:
		return "ok"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.EIO:
		return "EIO"
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENODATA:
		return "ENODATA"
	case syscall.ENOTEMPTY:
		return "ENOTEMPTY"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.EXDEV:
		return "EXDEV"
	case syscall.ENOKEY:
		return "ENOKEY"
	case syscall.ERANGE:
		return "ERANGE"
	case syscall.ENOTSUP:
		return "ENOTSUP"
	case syscall.ENOSYS:
		return "ENOSYS"
	}
	return "other"
}
