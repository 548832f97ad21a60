package replicate

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

func TestConfigurationRecordRoundTrip(t *testing.T) {
	for _, c := range []*Configuration{
		{Version: configVersion, Role: "role", Rules: []Rule{
			{ID: "a", Enabled: true, Priority: 3, Prefix: "x/", Deletes: true, Region: "eu-west-1", Bucket: "one"},
			{ID: "b", Priority: 1, Region: "ap-south-1", Bucket: "two"},
		}},
		{Version: configVersion, Rules: []Rule{{ID: "legacy", Enabled: true, Prefix: "p", Legacy: true, Region: "eu-west-1", Bucket: "one"}}},
	} {
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		dec, err := DecodeConfiguration(enc)
		if err != nil || !reflect.DeepEqual(dec, c) {
			t.Fatalf("record round trip: %+v, %v", dec, err)
		}
	}
	if c, err := DecodeConfiguration(nil); c != nil || err != nil {
		t.Fatalf("empty record: %v, %v", c, err)
	}
	for _, bad := range []string{`{"v":2,"rules":[]}`, `{"v":1,"rules":[],"extra":1}`, `not json`} {
		if _, err := DecodeConfiguration([]byte(bad)); err == nil {
			t.Fatalf("DecodeConfiguration(%s) accepted", bad)
		}
	}
}

// Resolve's refusals are plain errors with a kind, not S3 errors: the S3
// layer gives them their codes (s3/replication_rules_test.go).
func TestResolveKinds(t *testing.T) {
	regions := Regions{Self: "us-east-1", Targets: []string{"eu-west-1"}}
	tests := []struct {
		name string
		c    Configuration
		kind cryptostore.RuleErrorKind
	}{
		{name: "ok", c: Configuration{Rules: []Rule{{Enabled: true, Dest: "arn:aws:s3:eu-west-1::dst"}}}},
		{name: "bad arn", c: Configuration{Rules: []Rule{{Dest: "arn:aws:s3"}}}, kind: cryptostore.RuleBadArgument},
		{name: "own region", c: Configuration{Rules: []Rule{{Dest: "arn:aws:s3:us-east-1::dst"}}}, kind: cryptostore.RuleBadRequest},
		{name: "no rules", c: Configuration{}, kind: cryptostore.RuleBadSchema},
	}
	for _, tc := range tests {
		err := Resolve(&tc.c, regions)
		var re *cryptostore.ReplicationRuleError
		switch {
		case tc.kind == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.kind == 0:
			if r := tc.c.Rules[0]; r.ID != "rule-1" || r.Region != "eu-west-1" || r.Bucket != "dst" || r.Dest != "" {
				t.Errorf("%s: resolved %+v", tc.name, r)
			}
		case !errors.As(err, &re) || re.Kind != tc.kind || !errors.Is(err, ErrInvalidRule):
			t.Errorf("%s: want kind %d, have %v", tc.name, tc.kind, err)
		}
	}
}

func TestMatch(t *testing.T) {
	c := &Configuration{Rules: []Rule{
		{ID: "all", Enabled: true, Priority: 1, Region: "r1", Bucket: "all"},
		{ID: "logs", Enabled: true, Priority: 5, Prefix: "logs/", Region: "r2", Bucket: "logs"},
		{ID: "off", Enabled: false, Priority: 9, Prefix: "logs/x", Region: "r3", Bucket: "off"},
	}}
	tests := []struct {
		key  string
		want string
	}{
		{key: "a.txt", want: "all"},
		{key: "logs/1", want: "logs"},
		{key: "logs/x1", want: "logs"}, // the disabled rule never decides
	}
	for _, tc := range tests {
		if r := c.Match(tc.key); r == nil || r.ID != tc.want {
			t.Errorf("Match(%q): got %+v, want rule %s", tc.key, r, tc.want)
		}
	}
	only := &Configuration{Rules: []Rule{{ID: "p", Enabled: true, Prefix: "p/"}}}
	if r := only.Match("q"); r != nil {
		t.Errorf("Match outside the prefix: %+v", r)
	}
}
