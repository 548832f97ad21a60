package replicate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/cryptostore"
)

// ErrInvalidRule: a replication rule breaks the schema or names something
// sealfs cannot replicate to. Errors from Resolve and Validate wrap it and
// are *cryptostore.ReplicationRuleError values, whose Kind says what is
// wrong (a front door answers in its own terms: the S3 API with
// InvalidArgument, InvalidRequest or MalformedXML).
var ErrInvalidRule = cryptostore.ErrInvalidReplicationRule

// maxRuleIDLen is S3's limit on a rule id.
const maxRuleIDLen = 255

// Rule is one replication rule, in the form sealfs keeps it (the type is
// the store's, so that front doors can hand rules over without importing
// this package).
type Rule = cryptostore.ReplicationRule

// Configuration is a bucket's replication configuration.
type Configuration = cryptostore.ReplicationConfig

// configVersion is the version of the JSON kept in the bucket record.
const configVersion = cryptostore.ReplicationConfigVersion

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
func DestinationARN(region, bucket string) string { return cryptostore.DestinationARN(region, bucket) }

// Regions says which regions rules may name.
type Regions struct {
	// Self is this daemon's region: replication to it is refused.
	Self string
	// Targets are the registered target regions.
	Targets []string
}

func invalid(kind cryptostore.RuleErrorKind, format string, args ...any) error {
	return &cryptostore.ReplicationRuleError{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// ParseDestination reads a Destination Bucket: arn:PARTITION:s3:REGION::BUCKET,
// or arn:PARTITION:s3:::BUCKET or BUCKET when exactly one target is
// registered.
func ParseDestination(dest string, regions Regions) (region, bucket string, err error) {
	bucket = dest
	if strings.HasPrefix(dest, "arn:") {
		parts := strings.SplitN(dest, ":", 6)
		if len(parts) != 6 || parts[1] == "" || parts[2] != "s3" || parts[4] != "" || parts[5] == "" || strings.Contains(parts[5], "/") {
			return "", "", invalid(cryptostore.RuleBadArgument,
				"Destination Bucket %q is not a bucket ARN: sealfs names a target as arn:aws:s3:REGION::BUCKET.", dest)
		}
		region, bucket = parts[3], parts[5]
	}
	if err := cryptostore.ValidBucketName(bucket); err != nil {
		return "", "", invalid(cryptostore.RuleBadArgument, "Destination Bucket %q: %q is not a valid bucket name.", dest, bucket)
	}
	if region == "" {
		switch len(regions.Targets) {
		case 1:
			region = regions.Targets[0]
		case 0:
			return "", "", invalid(cryptostore.RuleBadRequest,
				"Destination Bucket %q: no replication target is registered; register one with `sealfs replicate target add REGION --endpoint URL ...`.", dest)
		default:
			return "", "", invalid(cryptostore.RuleBadRequest,
				"Destination Bucket %q does not name a region and %d targets are registered (%s): use arn:aws:s3:REGION::%s.",
				dest, len(regions.Targets), strings.Join(regions.Targets, ", "), bucket)
		}
	}
	if region == regions.Self {
		return "", "", invalid(cryptostore.RuleBadRequest,
			"Destination Bucket %q is in this daemon's own region %q: replication goes to another region.", dest, region)
	}
	if !slices.Contains(regions.Targets, region) {
		known := "none is registered"
		if len(regions.Targets) > 0 {
			known = "registered: " + strings.Join(regions.Targets, ", ")
		}
		return "", "", invalid(cryptostore.RuleBadRequest,
			"Destination region %q is not a registered replication target (%s); register it with `sealfs replicate target add %s --endpoint URL ...`.",
			region, known, region)
	}
	return region, bucket, nil
}

// Resolve fills in each rule's Region and Bucket from the destination a
// request named (Rule.Dest: a bucket ARN, or a bucket name when exactly one
// target is registered), gives rules without an id one ("rule-N"), and
// checks the whole (Validate). Errors are *cryptostore.ReplicationRuleError.
func Resolve(c *Configuration, regions Regions) error {
	c.Version = configVersion
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.ID == "" {
			r.ID = "rule-" + strconv.Itoa(i+1)
		}
		if r.Dest == "" {
			continue
		}
		region, bucket, err := ParseDestination(r.Dest, regions)
		if err != nil {
			return err
		}
		r.Region, r.Bucket, r.Dest = region, bucket, ""
	}
	return Validate(c, regions)
}

// Validate checks a configuration as a whole: one to 1000 rules, unique ids
// of at most 255 characters, destinations that are registered targets in
// another region, all rules in one schema, and no two enabled rules whose
// prefixes overlap at the same priority (which of them decides would be
// arbitrary).
func Validate(c *Configuration, regions Regions) error {
	if len(c.Rules) == 0 || len(c.Rules) > cryptostore.MaxReplicationRules {
		return invalid(cryptostore.RuleBadSchema, "A replication configuration has 1 to %d rules, not %d.", cryptostore.MaxReplicationRules, len(c.Rules))
	}
	ids := make(map[string]bool, len(c.Rules))
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.ID == "" || len(r.ID) > maxRuleIDLen {
			return invalid(cryptostore.RuleBadArgument, "Rule id %q: want 1 to %d characters.", r.ID, maxRuleIDLen)
		}
		if ids[r.ID] {
			return invalid(cryptostore.RuleBadArgument, "Rule id %q is used twice: rule ids must be unique.", r.ID)
		}
		ids[r.ID] = true
		if r.Legacy != c.Rules[0].Legacy {
			return invalid(cryptostore.RuleBadRequest, "Rules %q and %q mix the Filter and the Prefix schema: use one for every rule.", c.Rules[0].ID, r.ID)
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
				return invalid(cryptostore.RuleBadRequest,
					"Rules %q and %q apply to overlapping prefixes (%q, %q) with the same priority %d: give them different Priority values.",
					a.ID, b.ID, a.Prefix, b.Prefix, a.Priority)
			}
		}
	}
	return nil
}
