package replicate

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

func TestParseXML(t *testing.T) {
	one := Regions{Self: "us-east-1", Targets: []string{"eu-west-1"}}
	two := Regions{Self: "us-east-1", Targets: []string{"ap-south-1", "eu-west-1"}}
	tests := []struct {
		name    string
		body    string
		regions Regions
		want    *Configuration
		code    *s3err.Error // expected error code; nil → success
		msg     string       // substring of the message
	}{
		{
			name:    "filter schema with deletes",
			regions: two,
			body: `<ReplicationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Role>arn:aws:iam::1:role/r</Role>
				<Rule><ID>logs</ID><Priority>2</Priority><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter>
				<DeleteMarkerReplication><Status>Enabled</Status></DeleteMarkerReplication>
				<Destination><Bucket>arn:aws:s3:eu-west-1::backup</Bucket></Destination></Rule>
				<Rule><ID>rest</ID><Priority>1</Priority><Status>Disabled</Status><Filter><And><Prefix>img/</Prefix></And></Filter>
				<Destination><Bucket>arn:aws:s3:ap-south-1::images</Bucket><StorageClass>STANDARD</StorageClass></Destination></Rule>
				</ReplicationConfiguration>`,
			want: &Configuration{Version: configVersion, Role: "arn:aws:iam::1:role/r", Rules: []Rule{
				{ID: "logs", Enabled: true, Priority: 2, Prefix: "logs/", Deletes: true, Region: "eu-west-1", Bucket: "backup"},
				{ID: "rest", Priority: 1, Prefix: "img/", Region: "ap-south-1", Bucket: "images"},
			}},
		},
		{
			name:    "legacy prefix, no namespace, AWS ARN with one target",
			regions: one,
			body: `<ReplicationConfiguration><Role></Role><Rule><Status>Enabled</Status><Prefix>a/</Prefix>
				<Destination><Bucket>arn:aws:s3:::dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			want: &Configuration{Version: configVersion, Rules: []Rule{
				{ID: "rule-1", Enabled: true, Prefix: "a/", Legacy: true, Region: "eu-west-1", Bucket: "dst"},
			}},
		},
		{
			name:    "bare bucket name with one target",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><ID>r</ID><Status>Enabled</Status><Filter/><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			want:    &Configuration{Version: configVersion, Rules: []Rule{{ID: "r", Enabled: true, Region: "eu-west-1", Bucket: "dst"}}},
		},
		{
			name:    "unknown region",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:s3:mars-1::dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidRequest,
			msg:     `Destination region "mars-1" is not a registered replication target`,
		},
		{
			name:    "own region",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:s3:us-east-1::dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidRequest,
			msg:     "own region",
		},
		{
			name:    "AWS ARN with two targets",
			regions: two,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:s3:::dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidRequest,
			msg:     "arn:aws:s3:REGION::dst",
		},
		{
			name:    "AWS ARN with no target",
			regions: Regions{Self: "us-east-1"},
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidRequest,
			msg:     "no replication target is registered",
		},
		{
			name:    "not a bucket ARN",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:iam::123:role/x</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidArgument,
		},
		{
			name:    "invalid bucket name",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>arn:aws:s3:eu-west-1::Bad_Bucket</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidArgument,
		},
		{
			name:    "tag filter",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidRequest,
			msg:     "tag",
		},
		{
			name:    "replica KMS key",
			regions: one,
			body: `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>dst</Bucket>
				<EncryptionConfiguration><ReplicaKmsKeyID>arn:aws:kms:x</ReplicaKmsKeyID></EncryptionConfiguration></Destination></Rule></ReplicationConfiguration>`,
			code: s3err.ErrInvalidRequest,
			msg:  "destination bucket's default encryption",
		},
		{
			name:    "storage class",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Destination><Bucket>dst</Bucket><StorageClass>GLACIER</StorageClass></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrInvalidStorageClass,
		},
		{
			name:    "duplicate ids",
			regions: one,
			body: `<ReplicationConfiguration>
				<Rule><ID>x</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix>a</Prefix></Filter><Destination><Bucket>dst</Bucket></Destination></Rule>
				<Rule><ID>x</ID><Priority>2</Priority><Status>Enabled</Status><Filter><Prefix>b</Prefix></Filter><Destination><Bucket>dst</Bucket></Destination></Rule>
				</ReplicationConfiguration>`,
			code: s3err.ErrInvalidArgument,
			msg:  "used twice",
		},
		{
			name:    "overlapping prefixes at one priority",
			regions: one,
			body: `<ReplicationConfiguration>
				<Rule><ID>a</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter><Destination><Bucket>dst</Bucket></Destination></Rule>
				<Rule><ID>b</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix>logs/2024/</Prefix></Filter><Destination><Bucket>dst</Bucket></Destination></Rule>
				</ReplicationConfiguration>`,
			code: s3err.ErrInvalidRequest,
			msg:  "same priority",
		},
		{
			name:    "mixed schemas",
			regions: one,
			body: `<ReplicationConfiguration>
				<Rule><ID>a</ID><Status>Enabled</Status><Prefix>x/</Prefix><Destination><Bucket>dst</Bucket></Destination></Rule>
				<Rule><ID>b</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix>y/</Prefix></Filter><Destination><Bucket>dst</Bucket></Destination></Rule>
				</ReplicationConfiguration>`,
			code: s3err.ErrInvalidRequest,
			msg:  "mix",
		},
		{
			name:    "bad status",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>On</Status><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrMalformedXML,
		},
		{
			name:    "bad delete marker status",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><Status>Enabled</Status><Filter/><DeleteMarkerReplication><Status>Yes</Status></DeleteMarkerReplication><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			code:    s3err.ErrMalformedXML,
		},
		{
			name:    "no rules",
			regions: one,
			body:    `<ReplicationConfiguration><Role>r</Role></ReplicationConfiguration>`,
			code:    s3err.ErrMalformedXML,
		},
		{
			name:    "not XML",
			regions: one,
			body:    `{"rules": []}`,
			code:    s3err.ErrMalformedXML,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseXML(strings.NewReader(tc.body), tc.regions)
			if tc.code == nil {
				if err != nil {
					t.Fatalf("ParseXML: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("ParseXML:\n got %+v\nwant %+v", got, tc.want)
				}
				return
			}
			var e *s3err.Error
			if !errors.As(err, &e) || !errors.Is(err, tc.code) {
				t.Fatalf("want %s, have %v", tc.code.Code, err)
			}
			if e.HTTPStatus != 400 {
				t.Fatalf("status: want 400, have %d", e.HTTPStatus)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("message %q does not say %q", e.Message, tc.msg)
			}
		})
	}
}

func TestConfigurationXMLRoundTrip(t *testing.T) {
	regions := Regions{Self: "us-east-1", Targets: []string{"ap-south-1", "eu-west-1"}}
	for _, c := range []*Configuration{
		{Version: configVersion, Role: "role", Rules: []Rule{
			{ID: "a", Enabled: true, Priority: 3, Prefix: "x/", Deletes: true, Region: "eu-west-1", Bucket: "one"},
			{ID: "b", Priority: 1, Region: "ap-south-1", Bucket: "two"},
		}},
		{Version: configVersion, Rules: []Rule{{ID: "legacy", Enabled: true, Prefix: "p", Legacy: true, Region: "eu-west-1", Bucket: "one"}}},
	} {
		doc, err := s3xml.Marshal(c.XML())
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseXML(strings.NewReader(string(doc)), regions)
		if err != nil {
			t.Fatalf("parsing %s: %v", doc, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("XML round trip:\n got %+v\nwant %+v\n doc %s", got, c, doc)
		}
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
