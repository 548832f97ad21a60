package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// The S3 tests run `sealfs serve` through the shared Daemon helper
// (daemon_test.go); s3Daemon adds what they need beside it: the address of
// the plain-HTTP listener and clients of every kind.

const s3Region = "us-east-1"

// s3Daemon is a running `sealfs serve`.
type s3Daemon struct {
	*Daemon
	t        *testing.T
	httpAddr string // host:port of the plain-HTTP listener, if any
}

// s3DaemonOptions configures startS3Daemon.
type s3DaemonOptions struct {
	PlainHTTP bool // also serve plain HTTP (--s3-http)
}

// startS3Daemon starts `sealfs serve` on a new data directory; it is
// stopped at the end of the test.
func startS3Daemon(t *testing.T, opts s3DaemonOptions) *s3Daemon {
	t.Helper()
	var do DaemonOptions
	if opts.PlainHTTP {
		do.Args = []string{"--s3-http", "127.0.0.1:0"}
	}
	d := &s3Daemon{Daemon: startDaemon(t, do), t: t}
	d.findHTTPAddr()
	return d
}

// startAgain starts the stopped daemon again on its data directory.
func (d *s3Daemon) startAgain() {
	d.t.Helper()
	d.start()
	d.findHTTPAddr()
}

// findHTTPAddr reads the plain-HTTP listener's address from the daemon's
// "serving" log line. The daemon may answer on its listeners a moment
// before that line is written, so the log is polled, with a deadline.
func (d *s3Daemon) findHTTPAddr() {
	d.t.Helper()
	d.httpAddr = ""
	if !strings.Contains(strings.Join(d.opts.Args, " "), "--s3-http") {
		return
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(d.Logs(), "\n") {
			var rec struct {
				Msg    string `json:"msg"`
				S3HTTP string `json:"s3_http"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				d.httpAddr = rec.S3HTTP
			}
		}
		if d.httpAddr != "" {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no plain-HTTP listener in the daemon's log:\n%s", d.Logs())
		}
	}
}

// httpClient trusts the daemon's certificate (and only it).
func (d *s3Daemon) httpClient() *http.Client {
	d.t.Helper()
	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		d.t.Fatalf("no certificate in %s", d.CAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = false
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr}
}

// clearCAEnv empties the CA bundle variables this machine exports: they
// would override the clients' own trust settings.
func clearCAEnv(t *testing.T) {
	for _, v := range []string{"AWS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
}

// sdk returns an aws-sdk-go-v2 S3 client in its default configuration
// (CRC32 trailing checksums with aws-chunked bodies) for the HTTPS
// listener, path style.
func (d *s3Daemon) sdk() *awss3.Client {
	return d.sdkFor("https://" + d.S3Addr)
}

func (d *s3Daemon) sdkFor(endpoint string) *awss3.Client {
	t := d.t
	t.Helper()
	clearCAEnv(t)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(s3Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(d.AccessKey, d.SecretKey, "")),
		config.WithHTTPClient(d.httpClient()),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// minio returns a minio-go client for the HTTPS listener (secure) or the
// plain-HTTP one.
func (d *s3Daemon) minio(secure bool) *minio.Client {
	t := d.t
	t.Helper()
	addr := d.S3Addr
	if !secure {
		addr = d.httpAddr
	}
	c, err := minio.New(addr, &minio.Options{
		Creds:        miniocreds.NewStaticV4(d.AccessKey, d.SecretKey, ""),
		Secure:       secure,
		Transport:    d.httpClient().Transport,
		Region:       s3Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
