package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// ErrNoConfiguration: the bucket has no replication configuration.
var ErrNoConfiguration = errors.New("no replication configuration")

// Configuration returns a bucket's replication configuration, or an error
// wrapping ErrNoConfiguration (or cryptostore.ErrNoSuchBucket).
func (m *Manager) Configuration(ctx context.Context, bucket string) (*Configuration, error) {
	store, err := m.storeOrErr()
	if err != nil {
		return nil, err
	}
	b, err := store.GetBucket(ctx, bucket)
	if err != nil {
		return nil, err
	}
	c, err := m.parsed(b.Replication)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("bucket %q: %w", bucket, ErrNoConfiguration)
	}
	return c, nil
}

// SetConfiguration validates c against the registered targets and stores it
// as the bucket's configuration (nil removes it). Queued work follows the
// new rules from then on.
func (m *Manager) SetConfiguration(ctx context.Context, bucket string, c *Configuration) error {
	store, err := m.storeOrErr()
	if err != nil {
		return err
	}
	var data []byte
	if c != nil {
		regions, err := m.regions(ctx)
		if err != nil {
			return err
		}
		if err := Validate(c, regions); err != nil {
			return err
		}
		if data, err = c.Encode(); err != nil {
			return err
		}
	}
	if err := store.SetBucketReplication(ctx, bucket, data); err != nil {
		return err
	}
	m.log.Info("replication configuration set", "bucket", bucket, "rules", ruleCount(c))
	m.Notify()
	return nil
}

func ruleCount(c *Configuration) int {
	if c == nil {
		return 0
	}
	return len(c.Rules)
}

// EnableInput adds (or replaces, by id) one rule: what `sealfs replicate
// enable` asks for.
type EnableInput struct {
	// To is REGION/BUCKET, or a destination ARN.
	To string `json:"to"`
	// ID names the rule; "" → "to-REGION-BUCKET".
	ID       string `json:"id,omitempty"`
	Prefix   string `json:"prefix,omitempty"`
	Deletes  bool   `json:"deletes,omitempty"`
	Priority int    `json:"priority,omitempty"`
}

// Enable adds a rule to a bucket's configuration, or replaces the rule of
// the same id, and returns the configuration now in force.
func (m *Manager) Enable(ctx context.Context, bucket string, in *EnableInput) (*Configuration, error) {
	regions, err := m.regions(ctx)
	if err != nil {
		return nil, err
	}
	dest := in.To
	if !strings.HasPrefix(dest, "arn:") {
		region, b, ok := strings.Cut(dest, "/")
		if !ok {
			return nil, invalid(s3err.ErrInvalidArgument, "--to %q: want REGION/BUCKET.", in.To)
		}
		dest = DestinationARN(region, b)
	}
	region, target, err := ParseDestination(dest, regions)
	if err != nil {
		return nil, err
	}
	r := Rule{
		ID:       in.ID,
		Enabled:  true,
		Priority: in.Priority,
		Prefix:   in.Prefix,
		Deletes:  in.Deletes,
		Region:   region,
		Bucket:   target,
	}
	if r.ID == "" {
		r.ID = "to-" + region + "-" + target
	}
	c, err := m.Configuration(ctx, bucket)
	switch {
	case errors.Is(err, ErrNoConfiguration):
		c = &Configuration{}
	case err != nil:
		return nil, err
	}
	next := &Configuration{Role: c.Role}
	replaced := false
	for _, old := range c.Rules {
		if old.ID == r.ID {
			r.Legacy = old.Legacy
			next.Rules = append(next.Rules, r)
			replaced = true
			continue
		}
		next.Rules = append(next.Rules, old)
	}
	if !replaced {
		if len(c.Rules) > 0 {
			r.Legacy = c.Rules[0].Legacy
		}
		next.Rules = append(next.Rules, r)
	}
	if err := m.SetConfiguration(ctx, bucket, next); err != nil {
		return nil, err
	}
	return next, nil
}

// Disable removes a bucket's replication configuration. Work still queued
// for it ends FAILED (no rule applies any more); `resync` sends it once a
// rule is back.
func (m *Manager) Disable(ctx context.Context, bucket string) error {
	if _, err := m.Configuration(ctx, bucket); err != nil {
		return err
	}
	return m.SetConfiguration(ctx, bucket, nil)
}

// s3Error maps an error of this package to the S3 error that answers it.
func s3Error(err error) error {
	var e *s3err.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, cryptostore.ErrNoSuchBucket):
		return s3err.ErrNoSuchBucket.Wrap(err)
	case errors.Is(err, ErrNoConfiguration):
		return s3err.ErrReplicationConfigurationNotFound.Wrap(err)
	}
	return err
}

// PutBucketReplication is the S3 operation: body is the
// ReplicationConfiguration document. Errors are *s3err.Error values where S3
// has a code for them (NoSuchBucket, MalformedXML, InvalidArgument,
// InvalidRequest for an unknown target region, ...).
func (m *Manager) PutBucketReplication(ctx context.Context, bucket string, body io.Reader) error {
	if _, err := m.Configuration(ctx, bucket); err != nil && !errors.Is(err, ErrNoConfiguration) {
		return s3Error(err)
	}
	regions, err := m.regions(ctx)
	if err != nil {
		return err
	}
	c, err := ParseXML(body, regions)
	if err != nil {
		return err
	}
	return s3Error(m.SetConfiguration(ctx, bucket, c))
}

// GetBucketReplication is the S3 operation; a bucket without a
// configuration is ReplicationConfigurationNotFoundError (404).
func (m *Manager) GetBucketReplication(ctx context.Context, bucket string) (*s3xml.ReplicationConfiguration, error) {
	c, err := m.Configuration(ctx, bucket)
	if err != nil {
		return nil, s3Error(err)
	}
	return c.XML(), nil
}

// DeleteBucketReplication is the S3 operation; deleting what is not there
// succeeds, as in S3.
func (m *Manager) DeleteBucketReplication(ctx context.Context, bucket string) error {
	err := m.Disable(ctx, bucket)
	if errors.Is(err, ErrNoConfiguration) {
		return nil
	}
	return s3Error(err)
}
