package cryptostore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/sealfs/sealfs/meta"
)

// S3BlobConfig configures a blob store in an S3 bucket (s3://BUCKET/PREFIX).
type S3BlobConfig struct {
	Bucket string
	Prefix string // key prefix: "" or ending in "/"
	// Endpoint is the server's URL (https://host:port); "" → AWS. Requests
	// are path-style when it is set.
	Endpoint string
	Region   string // "" → us-east-1
	// AccessKey and SecretKey sign requests; both "" → the SDK's default
	// credential chain (environment, shared files, instance role).
	AccessKey string
	SecretKey string
	// CAFile is a PEM bundle trusted besides the system's roots.
	CAFile string
	// PartSize is the multipart upload's part size (0 → 8 MiB) and
	// Concurrency the parts uploaded at once (0 → 2): a blob upload holds
	// about (Concurrency+1) × PartSize bytes of memory. Blobs smaller than
	// a part go up in one PutObject.
	PartSize    int64
	Concurrency int
	// Timeout bounds the wait for a response's headers and a connection
	// (0 → 30 s), so a backend that is down or hung gives an error, not a
	// hang. Each request is retried by the SDK's standard retryer (3
	// attempts).
	Timeout time.Duration
	// Transport, if set, wraps the HTTP transport (tests count bytes).
	Transport func(http.RoundTripper) http.RoundTripper
	Logger    *slog.Logger
}

// s3Blobs is a BlobStore in an S3 bucket: blob id → object PREFIX<32 hex>,
// holding exactly the bytes the file store would (sealed, FORMAT.md).
type s3Blobs struct {
	cfg    S3BlobConfig
	client *s3.Client
	//lint:ignore SA1019 the uploader in go.mod; transfermanager is not
	uploader *manager.Uploader
	logger   *slog.Logger
}

// Read-ahead of a blob read sequentially: it starts at readAheadMin past
// the bytes asked for and doubles with every sequential read up to
// readAheadMax. A read elsewhere fetches the bytes asked for only.
const (
	readAheadMin = 1 << 20
	readAheadMax = 8 << 20
	// getTimeout bounds one ranged GET, body included.
	getTimeout = 5 * time.Minute
)

// OpenS3Blobs opens a blob store in an S3 bucket and checks that the bucket
// is reachable.
func OpenS3Blobs(ctx context.Context, cfg S3BlobConfig) (BlobStore, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 blob store: no bucket")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 8 << 20
	}
	if cfg.PartSize < manager.MinUploadPartSize {
		cfg.PartSize = manager.MinUploadPartSize
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = cfg.Timeout
	tr.ResponseHeaderTimeout = cfg.Timeout
	tr.MaxIdleConnsPerHost = 32
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3 blob store: CA bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 blob store: no certificate in %s", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if cfg.Transport != nil {
		rt = cfg.Transport(rt)
	}
	httpClient := &http.Client{Transport: rt}

	var awsCfg aws.Config
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		// Explicit credentials: nothing is read from the environment.
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
			Logger:      logging.Nop{},
		}
	} else {
		var err error
		awsCfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(cfg.Region), config.WithLogger(logging.Nop{}))
		if err != nil {
			return nil, fmt.Errorf("s3 blob store: %w", err)
		}
	}
	awsCfg.HTTPClient = httpClient
	awsCfg.Retryer = func() aws.Retryer { return retry.NewStandard() }
	// Blobs are authenticated by their own AEAD; TLS protects the
	// transfer. Checksums only when the API requires them.
	awsCfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	awsCfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	b := &s3Blobs{
		cfg:    cfg,
		client: client,
		//lint:ignore SA1019 see s3Blobs.uploader
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = cfg.PartSize
			u.Concurrency = cfg.Concurrency
			u.LeavePartsOnError = false
		}),
		logger: cfg.Logger,
	}
	hctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout)
	defer cancel()
	if _, err := client.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, fmt.Errorf("s3 blob store %s: bucket: %w", b, err)
	}
	return b, nil
}

func (b *s3Blobs) String() string {
	s := "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix
	if b.cfg.Endpoint != "" {
		s += " at " + b.cfg.Endpoint
	}
	return s
}

func (b *s3Blobs) key(id meta.BlobID) string { return b.cfg.Prefix + id.String() }

// Create starts an upload streamed from the writes: one PutObject for a
// blob smaller than a part, else a multipart upload with a few parts in
// flight. The object appears in the bucket only when Commit returns.
func (b *s3Blobs) Create(ctx context.Context, id meta.BlobID) (BlobUpload, error) {
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	u := &s3Upload{pw: pw, cancel: cancel, done: make(chan error, 1)}
	go func() {
		//lint:ignore SA1019 see s3Blobs.uploader
		_, err := b.uploader.Upload(uctx, &s3.PutObjectInput{
			Bucket:      aws.String(b.cfg.Bucket),
			Key:         aws.String(b.key(id)),
			Body:        pr,
			ContentType: aws.String("application/octet-stream"),
		})
		if err != nil {
			pr.CloseWithError(fmt.Errorf("uploading blob to %s: %w", b, err))
		} else {
			pr.Close()
		}
		u.done <- err
	}()
	return u, nil
}

type s3Upload struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (u *s3Upload) Write(p []byte) (int, error) { return u.pw.Write(p) }

func (u *s3Upload) wait() error {
	u.once.Do(func() { u.err = <-u.done; u.cancel() })
	return u.err
}

// Commit ends the body and waits for the upload to complete
// (PutObject or CompleteMultipartUpload returned).
func (u *s3Upload) Commit() error {
	u.pw.Close()
	if err := u.wait(); err != nil {
		return fmt.Errorf("committing blob: %w", err)
	}
	return nil
}

var errUploadAborted = errors.New("blob upload aborted")

// Abort stops the upload; a multipart upload is aborted on the server.
func (u *s3Upload) Abort() {
	u.pw.CloseWithError(errUploadAborted)
	u.cancel()
	u.wait()
}

// Open returns a reader of ranged GETs.
func (b *s3Blobs) Open(_ context.Context, id meta.BlobID) (BlobObject, error) {
	return &s3Object{b: b, key: b.key(id), size: -1, next: -1, ahead: readAheadMin}, nil
}

// s3Object reads a blob by ranged GETs, keeping the last one's bytes. A
// read fetches the bytes asked for (BlobReader asks for the chunks it
// needs), except in a sequential run: from the third read in a row that
// starts where the one before ended, a read-ahead more.
type s3Object struct {
	b   *s3Blobs
	key string

	mu     sync.Mutex
	size   int64 // stored size, -1 until a response told it
	buf    []byte
	bufOff int64
	next   int64 // where the last read ended
	run    int   // reads in a row that started where the last ended
	ahead  int
}

func (o *s3Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read blob: negative offset %d", off)
	}
	o.mu.Lock()
	if o.size >= 0 && off >= o.size {
		o.mu.Unlock()
		return 0, io.EOF
	}
	// What the last response holds is served from it; only the rest is
	// fetched.
	n := 0
	if off >= o.bufOff && off < o.bufOff+int64(len(o.buf)) {
		n = copy(p, o.buf[off-o.bufOff:])
	}
	if n == len(p) {
		o.next = off + int64(n)
		o.mu.Unlock()
		return n, nil
	}
	from, want := off+int64(n), len(p)-n
	if off == o.next {
		o.run++
	} else {
		o.run, o.ahead = 0, readAheadMin
	}
	if o.run >= 2 {
		// The third read in a row that starts where the last ended.
		want += o.ahead
		o.ahead = min(2*o.ahead, readAheadMax)
	}
	if o.size >= 0 {
		want = int(min(int64(want), o.size-from))
	}
	o.mu.Unlock()

	data, size, err := o.get(from, want)
	if err != nil {
		return n, err
	}
	k := copy(p[n:], data)
	o.mu.Lock()
	if size >= 0 {
		o.size = size
	}
	o.next = from + int64(k)
	if len(data) > k {
		o.buf, o.bufOff = data, from
	}
	o.mu.Unlock()
	n += k
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// get fetches want bytes at off (fewer at the end of the object) and
// returns them with the object's size (-1 if not told).
func (o *s3Object) get(off int64, want int) ([]byte, int64, error) {
	if want <= 0 {
		return nil, -1, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), getTimeout)
	defer cancel()
	out, err := o.b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(o.b.cfg.Bucket),
		Key:    aws.String(o.key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(want)-1)),
	})
	if err != nil {
		if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			return nil, -1, nil // at or past the end
		}
		return nil, -1, fmt.Errorf("reading blob %s from %s: %w", o.key, o.b, err)
	}
	defer out.Body.Close()
	size := int64(-1)
	if cr := aws.ToString(out.ContentRange); cr != "" {
		if _, total, ok := strings.Cut(cr, "/"); ok {
			if v, err := strconv.ParseInt(total, 10, 64); err == nil {
				size = v
			}
		}
	}
	buf := make([]byte, want)
	n, err := io.ReadFull(out.Body, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, -1, fmt.Errorf("reading blob %s from %s: %w", o.key, o.b, err)
	}
	return buf[:n], size, nil
}

func (o *s3Object) Close() error {
	o.mu.Lock()
	o.buf = nil
	o.mu.Unlock()
	return nil
}

// Exists asks with HeadObject.
func (b *s3Blobs) Exists(ctx context.Context, id meta.BlobID) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*b.cfg.Timeout)
	defer cancel()
	_, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.key(id))})
	switch {
	case err == nil:
		return true, nil
	case httpStatus(err) == http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("blob %s in %s: %w", id, b, err)
	}
}

// Remove deletes the object (deleting a missing one succeeds).
func (b *s3Blobs) Remove(ctx context.Context, id meta.BlobID) error {
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.key(id))})
	if err != nil && httpStatus(err) != http.StatusNotFound {
		return fmt.Errorf("removing blob %s from %s: %w", id, b, err)
	}
	return nil
}

// List lists the prefix (ListObjectsV2); keys that are not blob ids are
// skipped.
func (b *s3Blobs) List(ctx context.Context, fn func(BlobInfo) error) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.cfg.Bucket),
		Prefix: aws.String(b.cfg.Prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s: %w", b, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), b.cfg.Prefix)
			id, err := meta.ParseBlobID(name)
			if err != nil {
				continue
			}
			if err := fn(BlobInfo{ID: id, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// httpStatus returns the HTTP status of an SDK error, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NoSuchKey":
			return http.StatusNotFound
		case "InvalidRange":
			return http.StatusRequestedRangeNotSatisfiable
		}
	}
	return 0
}
