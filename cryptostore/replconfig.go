package cryptostore

// A bucket's replication configuration, as the front doors state it and
// the store keeps it (as versioned JSON in the bucket record, through
// SetBucketReplication). The rules' meaning — which regions they may name,
// whether they overlap, what is queued — is package replicate's; the types
// are here so that a front door (the S3 API's PutBucketReplication, the
// admin API) can hand rules over without importing the replication engine,
// and the engine can refuse them without making S3 errors.

import (
	"encoding/json"
	"errors"
	"strings"
)

// ReplicationRule is one replication rule.
type ReplicationRule struct {
	ID       string `json:"id"`
	Enabled  bool   `json:"enabled"`
	Priority int    `json:"priority,omitempty"`
	// Prefix selects the keys the rule applies to ("" is every key).
	Prefix string `json:"prefix,omitempty"`
	// Legacy records that the rule came in S3's older schema (a top-level
	// Prefix rather than a Filter), so that it is written back that way.
	Legacy bool `json:"legacy,omitempty"`
	// Deletes: deletes of matching keys replicate too
	// (DeleteMarkerReplication Enabled).
	Deletes bool `json:"deletes,omitempty"`
	// Region and Bucket name the destination: a registered target and a
	// bucket there.
	Region string `json:"region"`
	Bucket string `json:"bucket"`
	// Dest is the destination as a request named it (a bucket ARN, or a
	// bucket name when one target is registered), not yet resolved into
	// Region and Bucket; the replication engine resolves it. Never kept.
	Dest string `json:"-"`
}

// Matches reports whether the rule is enabled and applies to key.
func (r *ReplicationRule) Matches(key string) bool {
	return r.Enabled && strings.HasPrefix(key, r.Prefix)
}

// Destination is the rule's destination in sealfs's ARN form.
func (r *ReplicationRule) Destination() string { return DestinationARN(r.Region, r.Bucket) }

// DestinationARN is sealfs's ARN of a bucket in a region.
func DestinationARN(region, bucket string) string {
	return "arn:aws:s3:" + region + "::" + bucket
}

// ReplicationConfig is a bucket's replication configuration.
type ReplicationConfig struct {
	// Version of this encoding; ReplicationConfigVersion when written.
	Version int               `json:"v"`
	Role    string            `json:"role,omitempty"`
	Rules   []ReplicationRule `json:"rules"`
}

// ReplicationConfigVersion is the version of the JSON kept in the bucket
// record.
const ReplicationConfigVersion = 1

// MaxReplicationRules is the most rules one configuration holds (S3's
// limit).
const MaxReplicationRules = 1000

// Match returns the rule that decides for key: among the enabled rules
// whose prefix matches, the one with the highest priority (the first of
// equals). nil when no rule applies.
func (c *ReplicationConfig) Match(key string) *ReplicationRule {
	var best *ReplicationRule
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Matches(key) && (best == nil || r.Priority > best.Priority) {
			best = r
		}
	}
	return best
}

// Encode returns the form kept in the bucket record.
func (c *ReplicationConfig) Encode() ([]byte, error) {
	c.Version = ReplicationConfigVersion
	return json.Marshal(c)
}

// ErrNoReplication: the bucket has no replication configuration.
var ErrNoReplication = errors.New("no replication configuration")

// ErrInvalidReplicationRule: a replication configuration the replication
// engine refuses. The errors that wrap it are *ReplicationRuleError.
var ErrInvalidReplicationRule = errors.New("invalid replication rule")

// RuleErrorKind says what is wrong with a refused configuration, so that
// a front door can answer in its own terms (S3: InvalidArgument,
// InvalidRequest, MalformedXML).
type RuleErrorKind int

const (
	// RuleBadArgument: a value out of its domain (a rule id too long or
	// used twice, a destination that is not a bucket ARN or bucket name).
	RuleBadArgument RuleErrorKind = iota + 1
	// RuleBadRequest: well-formed, but not something sealfs can apply
	// (a destination that is not a registered target in another region,
	// overlapping rules at one priority, mixed schemas).
	RuleBadRequest
	// RuleBadSchema: the configuration breaks the schema (no rules, too
	// many).
	RuleBadSchema
)

// ReplicationRuleError is a refused configuration: its kind and a message
// meant for the user.
type ReplicationRuleError struct {
	Kind    RuleErrorKind
	Message string
}

func (e *ReplicationRuleError) Error() string { return e.Message }

// Unwrap makes the error match ErrInvalidReplicationRule.
func (e *ReplicationRuleError) Unwrap() error { return ErrInvalidReplicationRule }
