package replicate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sealfs/sealfs/cryptostore"
)

// Errors about targets. Callers test them with errors.Is.
var (
	// ErrNoSuchTarget: no target is registered for the region.
	ErrNoSuchTarget = errors.New("no such replication target")
	// ErrInvalidTarget: a target's region, endpoint or CA is not usable.
	ErrInvalidTarget = errors.New("invalid replication target")
	// ErrTargetInUse: a bucket's rule still sends to the target.
	ErrTargetInUse = errors.New("replication target in use")
)

// targetRecordPrefix names the targets' records among replication's
// records (cryptostore.ReplicationQueue.Record).
const targetRecordPrefix = "target/"

// Target is a remote sealfs daemon replication sends to: the region it
// serves, its S3 endpoint and the access key to sign with. Its secret key
// is kept sealed and never leaves the daemon.
type Target struct {
	Region    string `json:"region"`
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"accessKey"`
	// CA holds PEM certificates trusted for the endpoint besides the
	// system's (a self-signed sealfs certificate, say).
	CA    string    `json:"ca,omitempty"`
	Added time.Time `json:"added"`
}

// TargetInput registers a target.
type TargetInput struct {
	Region    string `json:"region"`
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
	CA        string `json:"ca,omitempty"`
}

// targetRecord is what the configuration record holds: the target and its
// secret key sealed under the store's system key
// (cryptostore.ReplicationQueue.SealSecret): the KMS's ciphertext and the
// key's id, the format every sealfs so far has stored.
type targetRecord struct {
	Target
	SecretKeyID  string `json:"secretKeyId"`
	SealedSecret []byte `json:"sealedSecret"`
}

var regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// validRegion checks a region name: lower-case letters, digits and dashes.
func validRegion(region string) error {
	if !regionPattern.MatchString(region) {
		return fmt.Errorf("%w: region %q: want 1 to 63 lower-case letters, digits and dashes", ErrInvalidTarget, region)
	}
	return nil
}

// checkEndpoint accepts an https URL naming a host (and port), nothing more.
func checkEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("%w: endpoint %q: %v", ErrInvalidTarget, endpoint, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("%w: endpoint %q: replication goes over HTTPS: want https://HOST[:PORT]", ErrInvalidTarget, endpoint)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return "", fmt.Errorf("%w: endpoint %q: want https://HOST[:PORT] and nothing else", ErrInvalidTarget, endpoint)
	}
	return "https://" + u.Host, nil
}

// certPool returns the system's roots plus the PEM certificates in ca.
func certPool(ca string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if ca != "" && !pool.AppendCertsFromPEM([]byte(ca)) {
		return nil, fmt.Errorf("%w: CA: no PEM certificate found", ErrInvalidTarget)
	}
	return pool, nil
}

func secretContext(region string) map[string]string {
	return map[string]string{"sealfs": "replication-target-secret", "region": region}
}

// AddTarget registers (or replaces) the target of a region. Its secret key
// is sealed under the store's system key before it is stored.
func (m *Manager) AddTarget(ctx context.Context, in *TargetInput) (*Target, error) {
	if err := validRegion(in.Region); err != nil {
		return nil, err
	}
	if in.Region == m.cfg.Region {
		return nil, fmt.Errorf("%w: %q is this daemon's own region: a target is another region", ErrInvalidTarget, in.Region)
	}
	endpoint, err := checkEndpoint(in.Endpoint)
	if err != nil {
		return nil, err
	}
	if in.AccessKey == "" || in.SecretKey == "" {
		return nil, fmt.Errorf("%w: an access key and a secret key are required", ErrInvalidTarget)
	}
	if _, err := certPool(in.CA); err != nil {
		return nil, err
	}
	keyID, sealed, err := m.cfg.Queue.SealSecret(ctx, secretContext(in.Region), []byte(in.SecretKey))
	if err != nil {
		return nil, fmt.Errorf("sealing the secret key: %w", err)
	}
	rec := targetRecord{
		Target: Target{
			Region:    in.Region,
			Endpoint:  endpoint,
			AccessKey: in.AccessKey,
			CA:        in.CA,
			Added:     time.Now().UTC(),
		},
		SecretKeyID:  keyID,
		SealedSecret: sealed,
	}
	data, err := json.Marshal(&rec)
	if err != nil {
		return nil, err
	}
	if err := m.cfg.Queue.PutRecord(ctx, targetRecordPrefix+in.Region, data); err != nil {
		return nil, err
	}
	m.dropClient(in.Region)
	m.log.Info("replication target registered", "region", in.Region, "endpoint", endpoint)
	m.Notify()
	t := rec.Target
	return &t, nil
}

// Targets returns the registered targets, sorted by region.
func (m *Manager) Targets(ctx context.Context) ([]Target, error) {
	recs, err := m.targetRecords(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Target)
	}
	return out, nil
}

func (m *Manager) targetRecords(ctx context.Context) ([]targetRecord, error) {
	var out []targetRecord
	err := m.cfg.Queue.ScanRecords(ctx, targetRecordPrefix, func(name string, value []byte) error {
		var r targetRecord
		if err := json.Unmarshal(value, &r); err != nil {
			return fmt.Errorf("replication target record %q: %w", name, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// targetRegions lists the registered regions.
func (m *Manager) regions(ctx context.Context) (Regions, error) {
	recs, err := m.targetRecords(ctx)
	if err != nil {
		return Regions{}, err
	}
	r := Regions{Self: m.cfg.Region}
	for _, t := range recs {
		r.Targets = append(r.Targets, t.Region)
	}
	return r, nil
}

// RemoveTarget unregisters a target. A target that a bucket's rule still
// names is not removed (ErrTargetInUse): disable that replication first.
func (m *Manager) RemoveTarget(ctx context.Context, region string) error {
	store, err := m.storeOrErr()
	if err != nil {
		return err
	}
	buckets, err := store.ListBuckets(ctx)
	if err != nil {
		return err
	}
	for _, b := range buckets {
		c, err := m.parsed(b.Replication)
		if err != nil || c == nil {
			continue
		}
		for _, r := range c.Rules {
			if r.Region == region {
				return fmt.Errorf("%w: bucket %q rule %q replicates to %s; disable it first (sealfs replicate disable %s)",
					ErrTargetInUse, b.Name, r.ID, region, b.Name)
			}
		}
	}
	err = m.cfg.Queue.DeleteRecord(ctx, targetRecordPrefix+region)
	if errors.Is(err, cryptostore.ErrNoSuchRecord) {
		return fmt.Errorf("%w: %q", ErrNoSuchTarget, region)
	}
	if err != nil {
		return err
	}
	m.dropClient(region)
	m.log.Info("replication target removed", "region", region)
	return nil
}

// targetClient is a target's S3 client and its health, shared by the
// workers.
type targetClient struct {
	target Target
	s3     *s3.Client
	http   *http.Client

	mu           sync.Mutex
	failures     int // consecutive transient failures
	blockedUntil time.Time
	lastError    string
	lastErrorAt  time.Time
	lastSuccess  time.Time
}

// blocked returns when the target may be tried again, if later than now.
func (tc *targetClient) blocked(now time.Time) (time.Time, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.blockedUntil, tc.blockedUntil.After(now)
}

func (tc *targetClient) succeeded(now time.Time) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.failures = 0
	tc.blockedUntil = time.Time{}
	tc.lastSuccess = now
}

// failed records a transient failure and holds the target back for the
// backoff of its consecutive failures.
func (tc *targetClient) failed(now time.Time, err error, b backoff) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.failures++
	tc.blockedUntil = now.Add(b.delay(tc.failures))
	tc.lastError = describe(err)
	tc.lastErrorAt = now
}

// permanentError records a failure that is not the target's health (it
// does not hold the target back).
func (tc *targetClient) permanentError(now time.Time, err error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.lastError = describe(err)
	tc.lastErrorAt = now
}

// client returns the S3 client of region's target, building it (and
// unsealing its secret key) the first time.
func (m *Manager) client(ctx context.Context, region string) (*targetClient, error) {
	m.mu.Lock()
	tc, ok := m.clients[region]
	m.mu.Unlock()
	if ok {
		return tc, nil
	}
	var rec targetRecord
	v, err := m.cfg.Queue.Record(ctx, targetRecordPrefix+region)
	if errors.Is(err, cryptostore.ErrNoSuchRecord) {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchTarget, region)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("replication target record %q: %w", region, err)
	}
	secret, err := m.cfg.Queue.OpenSecret(ctx, rec.SecretKeyID, rec.SealedSecret, secretContext(region))
	if err != nil {
		return nil, fmt.Errorf("unsealing the secret key of target %s: %w", region, err)
	}
	pool, err := certPool(rec.CA)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: m.cfg.ResponseTimeout,
		MaxIdleConnsPerHost:   m.cfg.Workers,
		IdleConnTimeout:       90 * time.Second,
	}}
	creds := credentials.NewStaticCredentialsProvider(rec.AccessKey, string(secret), "")
	clear(secret)
	client := s3.New(s3.Options{
		Region:       region,
		Credentials:  creds,
		HTTPClient:   hc,
		BaseEndpoint: aws.String(rec.Endpoint),
		UsePathStyle: true,
		// Retries are this package's: it tells transient from permanent
		// errors and keeps the queue, so the SDK tries each request once.
		Retryer: aws.NopRetryer{},
		// Bodies go as aws-chunked with a trailing CRC32 the target checks:
		// integrity end to end, one pass over the (decrypted) source.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	})
	tc = &targetClient{target: rec.Target, s3: client, http: hc}
	m.mu.Lock()
	if cur, ok := m.clients[region]; ok {
		tc = cur
	} else {
		m.clients[region] = tc
	}
	m.mu.Unlock()
	return tc, nil
}

// dropClient forgets a target's client (its record changed).
func (m *Manager) dropClient(region string) {
	m.mu.Lock()
	tc, ok := m.clients[region]
	delete(m.clients, region)
	m.mu.Unlock()
	if ok {
		tc.http.CloseIdleConnections()
	}
}

// knownClients returns the clients built so far, sorted by region.
func (m *Manager) knownClients() []*targetClient {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*targetClient, 0, len(m.clients))
	for _, tc := range m.clients {
		out = append(out, tc)
	}
	slices.SortFunc(out, func(a, b *targetClient) int {
		switch {
		case a.target.Region < b.target.Region:
			return -1
		case a.target.Region > b.target.Region:
			return 1
		}
		return 0
	})
	return out
}
