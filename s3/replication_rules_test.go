package s3

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// parseRules is PutBucketReplication's path for a body: this package reads
// the XML, the replication engine resolves and checks the rules, and its
// refusals get their S3 answers.
func parseRules(body string, regions replicate.Regions) (*cryptostore.ReplicationConfig, error) {
	c, err := parseReplicationXML(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if err := replicate.Resolve(c, regions); err != nil {
		return nil, replicationError(err)
	}
	return c, nil
}

func TestParseReplicationXML(t *testing.T) {
	one := replicate.Regions{Self: "us-east-1", Targets: []string{"eu-west-1"}}
	two := replicate.Regions{Self: "us-east-1", Targets: []string{"ap-south-1", "eu-west-1"}}
	tests := []struct {
		name    string
		body    string
		regions replicate.Regions
		want    *cryptostore.ReplicationConfig
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
			want: &cryptostore.ReplicationConfig{Version: cryptostore.ReplicationConfigVersion, Role: "arn:aws:iam::1:role/r", Rules: []cryptostore.ReplicationRule{
				{ID: "logs", Enabled: true, Priority: 2, Prefix: "logs/", Deletes: true, Region: "eu-west-1", Bucket: "backup"},
				{ID: "rest", Priority: 1, Prefix: "img/", Region: "ap-south-1", Bucket: "images"},
			}},
		},
		{
			name:    "legacy prefix, no namespace, AWS ARN with one target",
			regions: one,
			body: `<ReplicationConfiguration><Role></Role><Rule><Status>Enabled</Status><Prefix>a/</Prefix>
				<Destination><Bucket>arn:aws:s3:::dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			want: &cryptostore.ReplicationConfig{Version: cryptostore.ReplicationConfigVersion, Rules: []cryptostore.ReplicationRule{
				{ID: "rule-1", Enabled: true, Prefix: "a/", Legacy: true, Region: "eu-west-1", Bucket: "dst"},
			}},
		},
		{
			name:    "bare bucket name with one target",
			regions: one,
			body:    `<ReplicationConfiguration><Rule><ID>r</ID><Status>Enabled</Status><Filter/><Destination><Bucket>dst</Bucket></Destination></Rule></ReplicationConfiguration>`,
			want:    &cryptostore.ReplicationConfig{Version: cryptostore.ReplicationConfigVersion, Rules: []cryptostore.ReplicationRule{{ID: "r", Enabled: true, Region: "eu-west-1", Bucket: "dst"}}},
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
			regions: replicate.Regions{Self: "us-east-1"},
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
			got, err := parseRules(tc.body, tc.regions)
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
	regions := replicate.Regions{Self: "us-east-1", Targets: []string{"ap-south-1", "eu-west-1"}}
	for _, c := range []*cryptostore.ReplicationConfig{
		{Version: cryptostore.ReplicationConfigVersion, Role: "role", Rules: []cryptostore.ReplicationRule{
			{ID: "a", Enabled: true, Priority: 3, Prefix: "x/", Deletes: true, Region: "eu-west-1", Bucket: "one"},
			{ID: "b", Priority: 1, Region: "ap-south-1", Bucket: "two"},
		}},
		{Version: cryptostore.ReplicationConfigVersion, Rules: []cryptostore.ReplicationRule{{ID: "legacy", Enabled: true, Prefix: "p", Legacy: true, Region: "eu-west-1", Bucket: "one"}}},
	} {
		doc, err := s3xml.Marshal(replicationXML(c))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseRules(string(doc), regions)
		if err != nil {
			t.Fatalf("parsing %s: %v", doc, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("XML round trip:\n got %+v\nwant %+v\n doc %s", got, c, doc)
		}
	}
}
