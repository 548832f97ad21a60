package replicate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// ErrInvalidRule: a replication rule breaks the schema or names something
// sealfs cannot replicate to. Errors from ParseXML and Validate wrap it and
// are *s3err.Error values (400).
var ErrInvalidRule = errors.New("invalid replication rule")

// maxRuleIDLen is S3's limit on a rule id.
const maxRuleIDLen = 255

// Rule is one replication rule, in the form sealfs keeps it.
type Rule struct {
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
}

// Matches reports whether the rule is enabled and applies to key.
func (r *Rule) Matches(key string) bool {
	return r.Enabled && strings.HasPrefix(key, r.Prefix)
}

// Destination is the rule's destination in sealfs's ARN form.
func (r *Rule) Destination() string { return DestinationARN(r.Region, r.Bucket) }

// Configuration is a bucket's replication configuration.
type Configuration struct {
	// Version of this encoding; configVersion when written.
	Version int    `json:"v"`
	Role    string `json:"role,omitempty"`
	Rules   []Rule `json:"rules"`
}

// configVersion is the version of the JSON kept in meta.Bucket.Replication.
const configVersion = 1

// Match returns the rule that decides for key: among the enabled rules
// whose prefix matches, the one with the highest priority (the first of
// equals). nil when no rule applies.
func (c *Configuration) Match(key string) *Rule {
	var best *Rule
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Matches(key) && (best == nil || r.Priority > best.Priority) {
			best = r
		}
	}
	return best
}

// Encode returns the form kept in the bucket record.
func (c *Configuration) Encode() ([]byte, error) {
	c.Version = configVersion
	return json.Marshal(c)
}

// DecodeConfiguration reads what Encode wrote. Empty data is no
// configuration: (nil, nil).
func DecodeConfiguration(data []byte) (*Configuration, error) {
	if len(data) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var c Configuration
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("replicate: bucket configuration: %w", err)
	}
	if c.Version != configVersion {
		return nil, fmt.Errorf("replicate: bucket configuration: want version %d, have %d", configVersion, c.Version)
	}
	return &c, nil
}

// DestinationARN is sealfs's ARN of a bucket in a region.
func DestinationARN(region, bucket string) string {
	return "arn:aws:s3:" + region + "::" + bucket
}

// Regions says which regions rules may name.
type Regions struct {
	// Self is this daemon's region: replication to it is refused.
	Self string
	// Targets are the registered target regions.
	Targets []string
}

func invalid(code *s3err.Error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return code.WithMessage(msg).Wrap(fmt.Errorf("%w: %s", ErrInvalidRule, msg))
}

// ParseDestination reads a Destination Bucket: arn:PARTITION:s3:REGION::BUCKET,
// or arn:PARTITION:s3:::BUCKET or BUCKET when exactly one target is
// registered.
func ParseDestination(dest string, regions Regions) (region, bucket string, err error) {
	bucket = dest
	if strings.HasPrefix(dest, "arn:") {
		parts := strings.SplitN(dest, ":", 6)
		if len(parts) != 6 || parts[1] == "" || parts[2] != "s3" || parts[4] != "" || parts[5] == "" || strings.Contains(parts[5], "/") {
			return "", "", invalid(s3err.ErrInvalidArgument,
				"Destination Bucket %q is not a bucket ARN: sealfs names a target as arn:aws:s3:REGION::BUCKET.", dest)
		}
		region, bucket = parts[3], parts[5]
	}
	if err := meta.ValidBucketName(bucket); err != nil {
		return "", "", invalid(s3err.ErrInvalidArgument, "Destination Bucket %q: %q is not a valid bucket name.", dest, bucket)
	}
	if region == "" {
		switch len(regions.Targets) {
		case 1:
			region = regions.Targets[0]
		case 0:
			return "", "", invalid(s3err.ErrInvalidRequest,
				"Destination Bucket %q: no replication target is registered; register one with `sealfs replicate target add REGION --endpoint URL ...`.", dest)
		default:
			return "", "", invalid(s3err.ErrInvalidRequest,
				"Destination Bucket %q does not name a region and %d targets are registered (%s): use arn:aws:s3:REGION::%s.",
				dest, len(regions.Targets), strings.Join(regions.Targets, ", "), bucket)
		}
	}
	if region == regions.Self {
		return "", "", invalid(s3err.ErrInvalidRequest,
			"Destination Bucket %q is in this daemon's own region %q: replication goes to another region.", dest, region)
	}
	if !slices.Contains(regions.Targets, region) {
		known := "none is registered"
		if len(regions.Targets) > 0 {
			known = "registered: " + strings.Join(regions.Targets, ", ")
		}
		return "", "", invalid(s3err.ErrInvalidRequest,
			"Destination region %q is not a registered replication target (%s); register it with `sealfs replicate target add %s --endpoint URL ...`.",
			region, known, region)
	}
	return region, bucket, nil
}

// ParseXML reads a PutBucketReplication body and checks it (Validate).
// Errors are *s3err.Error: MalformedXML for a document that does not parse
// or breaks S3's schema, InvalidArgument or InvalidRequest (wrapping
// ErrInvalidRule) for a rule sealfs cannot apply.
func ParseXML(body io.Reader, regions Regions) (*Configuration, error) {
	var doc s3xml.ReplicationConfiguration
	if err := s3xml.Decode(body, 0, &doc); err != nil {
		return nil, err
	}
	c := &Configuration{Version: configVersion, Role: doc.Role}
	for i, xr := range doc.Rules {
		r := Rule{ID: xr.ID, Enabled: xr.Status == "Enabled"}
		if r.ID == "" {
			r.ID = "rule-" + strconv.Itoa(i+1)
		}
		if xr.Priority != nil {
			r.Priority = *xr.Priority
		}
		switch {
		case xr.Prefix != nil:
			r.Prefix, r.Legacy = *xr.Prefix, true
		case xr.Filter != nil:
			f := xr.Filter
			if f.Tag != nil || (f.And != nil && len(f.And.Tags) > 0) {
				return nil, invalid(s3err.ErrInvalidRequest, "Rule %q: sealfs has no object tags, so replication rules cannot filter by tag; filter by Prefix.", r.ID)
			}
			r.Prefix = xr.EffectivePrefix()
		}
		if dm := xr.DeleteMarkerReplication; dm != nil {
			switch dm.Status {
			case "Enabled":
				r.Deletes = true
			case "Disabled", "":
			default:
				return nil, invalid(s3err.ErrMalformedXML, "Rule %q: DeleteMarkerReplication Status must be Enabled or Disabled, not %q.", r.ID, dm.Status)
			}
		}
		d := xr.Destination
		if d.EncryptionConfiguration != nil && d.EncryptionConfiguration.ReplicaKmsKeyID != "" {
			return nil, invalid(s3err.ErrInvalidRequest,
				"Rule %q: sealfs does not take a ReplicaKmsKeyID: a replica is encrypted when, and as, the destination bucket's default encryption says.", r.ID)
		}
		if d.StorageClass != "" && d.StorageClass != "STANDARD" {
			return nil, invalid(s3err.ErrInvalidStorageClass, "Rule %q: sealfs stores every object as STANDARD, not %q.", r.ID, d.StorageClass)
		}
		region, bucket, err := ParseDestination(d.Bucket, regions)
		if err != nil {
			return nil, err
		}
		r.Region, r.Bucket = region, bucket
		c.Rules = append(c.Rules, r)
	}
	if err := Validate(c, regions); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks a configuration as a whole: one to 1000 rules, unique ids
// of at most 255 characters, destinations that are registered targets in
// another region, all rules in one schema, and no two enabled rules whose
// prefixes overlap at the same priority (which of them decides would be
// arbitrary).
func Validate(c *Configuration, regions Regions) error {
	if len(c.Rules) == 0 || len(c.Rules) > s3xml.MaxReplicationRules {
		return invalid(s3err.ErrMalformedXML, "A replication configuration has 1 to %d rules, not %d.", s3xml.MaxReplicationRules, len(c.Rules))
	}
	ids := make(map[string]bool, len(c.Rules))
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.ID == "" || len(r.ID) > maxRuleIDLen {
			return invalid(s3err.ErrInvalidArgument, "Rule id %q: want 1 to %d characters.", r.ID, maxRuleIDLen)
		}
		if ids[r.ID] {
			return invalid(s3err.ErrInvalidArgument, "Rule id %q is used twice: rule ids must be unique.", r.ID)
		}
		ids[r.ID] = true
		if r.Legacy != c.Rules[0].Legacy {
			return invalid(s3err.ErrInvalidRequest, "Rules %q and %q mix the Filter and the Prefix schema: use one for every rule.", c.Rules[0].ID, r.ID)
		}
		if _, _, err := ParseDestination(r.Destination(), regions); err != nil {
			return err
		}
	}
	for i := range c.Rules {
		a := &c.Rules[i]
		for j := i + 1; j < len(c.Rules); j++ {
			b := &c.Rules[j]
			if !a.Enabled || !b.Enabled || a.Priority != b.Priority {
				continue
			}
			if strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix) {
				return invalid(s3err.ErrInvalidRequest,
					"Rules %q and %q apply to overlapping prefixes (%q, %q) with the same priority %d: give them different Priority values.",
					a.ID, b.ID, a.Prefix, b.Prefix, a.Priority)
			}
		}
	}
	return nil
}

// XML returns the configuration as GetBucketReplication answers it.
func (c *Configuration) XML() *s3xml.ReplicationConfiguration {
	doc := &s3xml.ReplicationConfiguration{Role: c.Role}
	for _, r := range c.Rules {
		xr := s3xml.ReplicationRule{
			ID:          r.ID,
			Status:      "Disabled",
			Destination: s3xml.ReplicationDestination{Bucket: r.Destination()},
		}
		if r.Enabled {
			xr.Status = "Enabled"
		}
		prefix := r.Prefix
		if r.Legacy {
			xr.Prefix = &prefix
		} else {
			p := r.Priority
			xr.Priority = &p
			xr.Filter = &s3xml.ReplicationFilter{Prefix: &prefix}
			status := "Disabled"
			if r.Deletes {
				status = "Enabled"
			}
			xr.DeleteMarkerReplication = &s3xml.DeleteMarkerReplication{Status: status}
		}
		doc.Rules = append(doc.Rules, xr)
	}
	return doc
}
