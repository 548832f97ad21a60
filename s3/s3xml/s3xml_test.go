package s3xml

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sealfs/sealfs/s3/s3err"
)

func TestDecodeStrictness(t *testing.T) {
	cases := []struct {
		name string
		body string
		ok   bool
	}{
		{name: "namespaced", ok: true, body: `<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"a"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
		{name: "no namespace", ok: true, body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`},
		{name: "comment and space", ok: true, body: "\n<!-- hi -->\n<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>\n<!-- bye -->\n"},
		{name: "unknown child ignored", ok: true, body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><Future>x</Future></Part></CompleteMultipartUpload>`},
		{name: "empty", body: ""},
		{name: "blank", body: "  \n "},
		{name: "wrong root", body: `<Delete><Object><Key>k</Key></Object></Delete>`},
		{name: "not closed", body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>`},
		{name: "two roots", body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload><CompleteMultipartUpload/>`},
		{name: "trailing text", body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>junk`},
		{name: "leading text", body: `junk<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
		{name: "doctype", body: `<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
		{name: "unknown entity", body: `<CompleteMultipartUpload><Part><ETag>&bogus;</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
		{name: "latin1", body: `<?xml version="1.0" encoding="ISO-8859-1"?><CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`},
		{name: "no parts", body: `<CompleteMultipartUpload></CompleteMultipartUpload>`},
		{name: "bad number", body: `<CompleteMultipartUpload><Part><PartNumber>one</PartNumber></Part></CompleteMultipartUpload>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v CompleteMultipartUpload
			err := Decode(strings.NewReader(tc.body), 0, &v)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if len(v.Parts) != 1 || v.Parts[0].PartNumber != 1 {
					t.Fatalf("decoded %+v", v)
				}
				return
			}
			if !errors.Is(err, s3err.ErrMalformedXML) {
				t.Fatalf("want MalformedXML, got %v", err)
			}
		})
	}
}

func TestDecodeLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("<Delete>")
	for i := 0; i < 100; i++ {
		b.WriteString("<Object><Key>k</Key></Object>")
	}
	b.WriteString("</Delete>")
	var d Delete
	if err := Decode(strings.NewReader(b.String()), int64(b.Len()), &d); err != nil {
		t.Fatal(err)
	}
	if err := Decode(strings.NewReader(b.String()), int64(b.Len()-1), &d); !errors.Is(err, s3err.ErrMalformedXML) {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestDeleteLimits(t *testing.T) {
	build := func(n int, key string) string {
		var b strings.Builder
		b.WriteString(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>`)
		for i := 0; i < n; i++ {
			b.WriteString("<Object><Key>" + key + "</Key><VersionId>v1</VersionId></Object>")
		}
		b.WriteString("</Delete>")
		return b.String()
	}
	var d Delete
	if err := DecodeBytes([]byte(build(1000, "k")), &d); err != nil || len(d.Objects) != 1000 || !d.Quiet || d.Objects[0].VersionID != "v1" {
		t.Fatalf("1000 objects: %v", err)
	}
	for name, body := range map[string]string{"1001 objects": build(1001, "k"), "none": build(0, "k"), "empty key": build(1, "")} {
		if err := DecodeBytes([]byte(body), &Delete{}); !errors.Is(err, s3err.ErrMalformedXML) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEncodeNamespaces(t *testing.T) {
	cases := []struct {
		name string
		v    any
		want string
	}{
		{name: "list buckets", v: ListAllMyBucketsResult{}, want: `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`},
		{name: "sse", v: ServerSideEncryptionConfiguration{}, want: `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`},
		{name: "sse pointer", v: &ServerSideEncryptionConfiguration{}, want: `<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`},
		{name: "versioning", v: VersioningConfiguration{}, want: `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></VersioningConfiguration>`},
		{name: "replication", v: ReplicationConfiguration{}, want: `<ReplicationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`},
		{name: "location", v: LocationConstraint{Region: "eu-west-3"}, want: `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-3</LocationConstraint>`},
		{name: "location us-east-1", v: LocationConstraint{}, want: `<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`},
	}
	for _, tc := range cases {
		out, err := Marshal(tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) || !bytes.Contains(out, []byte(tc.want)) {
			t.Errorf("%s: %s", tc.name, out)
		}
	}
}

func TestTimeLayout(t *testing.T) {
	ts := time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.FixedZone("x", 3600))
	out, err := Marshal(CopyObjectResult{ETag: `"e"`, LastModified: NewTime(ts)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("<LastModified>2025-03-14T14:09:26.535Z</LastModified>")) {
		t.Fatalf("%s", out)
	}
	out, _ = Marshal(Bucket{Name: "b"})
	if bytes.Contains(out, []byte("CreationDate")) {
		t.Fatalf("zero time written: %s", out)
	}
}

func TestVersionsInterleaved(t *testing.T) {
	v := ListVersionsResult{Name: "b", Versions: []ObjectVersion{
		{Key: "a", VersionID: "2", IsLatest: true, ETag: `"x"`, Size: 0, StorageClass: "STANDARD"},
		{Key: "a", VersionID: "1", DeleteMarker: true},
		{Key: "b", VersionID: "1", IsLatest: true, ETag: `"y"`, Size: 5, StorageClass: "STANDARD"},
	}}
	out, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	i, j, k := strings.Index(s, "<Version><Key>a"), strings.Index(s, "<DeleteMarker><Key>a"), strings.Index(s, "<Version><Key>b")
	if i < 0 || j < i || k < j {
		t.Fatalf("versions not interleaved in order: %s", s)
	}
	if dm := s[j:k]; strings.Contains(dm, "Size") || strings.Contains(dm, "ETag") {
		t.Fatalf("delete marker with object fields: %s", dm)
	}
	if !strings.Contains(s, "<Size>0</Size>") {
		t.Fatal("a zero-size version lost its Size")
	}
}

func TestURLEncode(t *testing.T) {
	keys := []string{"plain/key.txt", "a b+c", "ünï/€", "100%", "x&y=z?", "tab\tnl\n", "~-_.", ""}
	for _, k := range keys {
		enc := URLEncode(k)
		for _, dec := range []func(string) (string, error){url.QueryUnescape, url.PathUnescape} {
			got, err := dec(enc)
			if err != nil || got != k {
				t.Errorf("URLEncode(%q) = %q, decodes to %q, %v", k, enc, got, err)
			}
		}
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c != '%' && !keepByte(c) {
				t.Errorf("URLEncode(%q) = %q leaves %q unencoded", k, enc, c)
			}
		}
	}
	if got := URLEncode("a b/c"); got != "a%20b/c" {
		t.Fatalf("URLEncode(a b/c) = %q", got)
	}
	l := ListBucketResultV2{Prefix: "a b/", Contents: []Object{{Key: "a b/c+d"}}, CommonPrefixes: []CommonPrefix{{Prefix: "a b/x y/"}}}
	l.EncodeURL()
	if l.EncodingType != "url" || l.Prefix != "a%20b/" || l.Contents[0].Key != "a%20b/c%2Bd" || l.CommonPrefixes[0].Prefix != "a%20b/x%20y/" {
		t.Fatalf("%+v", l)
	}
}

func TestReplicationEffectivePrefix(t *testing.T) {
	p := "logs/"
	cases := []struct {
		name string
		rule ReplicationRule
		want string
	}{
		{name: "filter prefix", rule: ReplicationRule{Filter: &ReplicationFilter{Prefix: &p}}, want: "logs/"},
		{name: "filter and", rule: ReplicationRule{Filter: &ReplicationFilter{And: &ReplicationFilterAnd{Prefix: "a/"}}}, want: "a/"},
		{name: "legacy", rule: ReplicationRule{Prefix: &p}, want: "logs/"},
		{name: "empty filter", rule: ReplicationRule{Filter: &ReplicationFilter{}}, want: ""},
	}
	for _, tc := range cases {
		if got := tc.rule.EffectivePrefix(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzDecodeXML feeds arbitrary bodies to the request decoders. They must
// not panic, must fail only with MalformedXML, and whatever they accept must
// survive being encoded and decoded again.
func FuzzDecodeXML(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"e"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`), uint8(0))
	f.Add([]byte(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a&amp;b</Key><VersionId>1</VersionId></Object></Delete>`), uint8(1))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`), uint8(2))
	f.Add([]byte(`<ReplicationConfiguration><Role>r</Role><Rule><ID>1</ID><Priority>1</Priority><Status>Enabled</Status><Filter><Prefix>p/</Prefix></Filter><DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication><Destination><Bucket>arn:aws:s3:::t</Bucket></Destination></Rule></ReplicationConfiguration>`), uint8(3))
	f.Add([]byte(`<ReplicationConfiguration><Rule><Status>Enabled</Status><Prefix></Prefix><Destination><Bucket>t</Bucket></Destination></Rule></ReplicationConfiguration>`), uint8(3))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE d><Delete/>`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		newV := []func() any{
			func() any { return &CompleteMultipartUpload{} },
			func() any { return &Delete{} },
			func() any { return &ServerSideEncryptionConfiguration{} },
			func() any { return &ReplicationConfiguration{} },
		}
		mk := newV[int(which)%len(newV)]
		v := mk()
		err := DecodeBytes(body, v)
		if err != nil {
			if !errors.Is(err, s3err.ErrMalformedXML) {
				t.Fatalf("non-MalformedXML error %v", err)
			}
			return
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("cannot encode an accepted document: %v", err)
		}
		if err := DecodeBytes(out, mk()); err != nil {
			t.Fatalf("re-decoding our own encoding fails: %v\n%s", err, out)
		}
	})
}
