package replicate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
)

// ErrNoConfiguration: the bucket has no replication configuration.
var ErrNoConfiguration = cryptostore.ErrNoReplication

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
			return nil, invalid(cryptostore.RuleBadArgument, "--to %q: want REGION/BUCKET.", in.To)
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

// PutBucketReplication is the S3 operation, for a configuration the S3
// layer has read from the request's XML (rules naming their destination in
// Rule.Dest). Errors: cryptostore.ErrNoSuchBucket,
// *cryptostore.ReplicationRuleError for rules sealfs cannot apply.
func (m *Manager) PutBucketReplication(ctx context.Context, bucket string, c *Configuration) error {
	if _, err := m.Configuration(ctx, bucket); err != nil && !errors.Is(err, ErrNoConfiguration) {
		return err
	}
	regions, err := m.regions(ctx)
	if err != nil {
		return err
	}
	if err := Resolve(c, regions); err != nil {
		return err
	}
	return m.SetConfiguration(ctx, bucket, c)
}

// GetBucketReplication is the S3 operation; a bucket without a
// configuration is ErrNoConfiguration.
func (m *Manager) GetBucketReplication(ctx context.Context, bucket string) (*Configuration, error) {
	return m.Configuration(ctx, bucket)
}

// DeleteBucketReplication is the S3 operation; deleting what is not there
// succeeds, as in S3.
func (m *Manager) DeleteBucketReplication(ctx context.Context, bucket string) error {
	err := m.Disable(ctx, bucket)
	if errors.Is(err, ErrNoConfiguration) {
		return nil
	}
	return err
}
