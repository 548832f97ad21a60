package iam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

const keyARN = "arn:aws:kms:us-east-1:000000000000:key/3f1c"

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	readOnly := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::photos"},
	    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:HeadObject"], "Resource": "arn:aws:s3:::photos/*"}
	  ]
	}`
	prefixDeny := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"]},
	    {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::photos/private/*"}
	  ]
	}`
	tls := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "Action": "*", "Resource": "*"},
	    {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
	  ]
	}`
	kmsUse := `{
	  "Version": "2012-10-17",
	  "Statement": {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "arn:aws:kms:*:*:key/*"}
	}`
	notAction := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "NotAction": "s3:Delete*", "Resource": "*"},
	    {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::photos*"}
	  ]
	}`
	ipAndPrefix := `{
	  "Version": "2012-10-17",
	  "Statement": [
	    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::photos",
	     "Condition": {"StringLike": {"s3:prefix": ["", "home/*"]}, "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.7"]}}},
	    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*",
	     "Condition": {"NotIpAddress": {"aws:SourceIp": "10.9.0.0/16"}}},
	    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/*",
	     "Condition": {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}}
	  ]
	}`
	ip := netip.MustParseAddr
	cases := []struct {
		name   string
		policy string
		req    Request
		want   Decision
	}{
		{name: "read-only get", policy: readOnly, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/a/b.jpg"}, want: Allowed},
		{name: "action case-insensitive", policy: readOnly, req: Request{Action: "S3:getobject", Resource: "arn:aws:s3:::photos/a"}, want: Allowed},
		{name: "resource case-sensitive", policy: readOnly, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::Photos/a"}, want: ImplicitDeny},
		{name: "read-only put", policy: readOnly, req: Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::photos/a"}, want: ImplicitDeny},
		{name: "read-only list", policy: readOnly, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos"}, want: Allowed},
		{name: "read-only other bucket", policy: readOnly, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photosx/a"}, want: ImplicitDeny},
		{name: "bucket ARN is not object ARN", policy: readOnly, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos"}, want: ImplicitDeny},
		{name: "read-only no kms", policy: readOnly, req: Request{Action: "kms:Decrypt", Resource: keyARN}, want: ImplicitDeny},
		{name: "deny on prefix wins", policy: prefixDeny, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/private/x"}, want: ExplicitDeny},
		{name: "allow outside denied prefix", policy: prefixDeny, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/public/x"}, want: Allowed},
		{name: "deny prefix needs the slash", policy: prefixDeny, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/private"}, want: Allowed},
		{name: "plain http denied", policy: tls, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}, want: ExplicitDeny},
		{name: "https allowed", policy: tls, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", SecureTransport: true}, want: Allowed},
		{name: "kms decrypt", policy: kmsUse, req: Request{Action: "kms:Decrypt", Resource: keyARN}, want: Allowed},
		{name: "kms generate wildcard", policy: kmsUse, req: Request{Action: "kms:GenerateDataKeyWithoutPlaintext", Resource: keyARN}, want: Allowed},
		{name: "kms describe", policy: kmsUse, req: Request{Action: "kms:DescribeKey", Resource: keyARN}, want: ImplicitDeny},
		{name: "kms not s3", policy: kmsUse, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}, want: ImplicitDeny},
		{name: "notaction allows get", policy: notAction, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/k"}, want: Allowed},
		{name: "notaction leaves delete", policy: notAction, req: Request{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::photos/k"}, want: ImplicitDeny},
		{name: "notresource denies others", policy: notAction, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/k"}, want: ExplicitDeny},
		{name: "notresource spares kms", policy: notAction, req: Request{Action: "kms:Decrypt", Resource: keyARN}, want: Allowed},
		{name: "list root from 10/8", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true, SourceIP: ip("10.1.2.3")}, want: Allowed},
		{name: "list home from single address", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true, Prefix: "home/ann/", SourceIP: ip("192.0.2.7")}, want: Allowed},
		{name: "list v4-mapped address", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true, SourceIP: ip("::ffff:10.1.2.3")}, want: Allowed},
		{name: "list other prefix", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true, Prefix: "work/", SourceIP: ip("10.1.2.3")}, want: ImplicitDeny},
		{name: "list from outside", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true, SourceIP: ip("192.0.2.8")}, want: ImplicitDeny},
		{name: "list without prefix key", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", SourceIP: ip("10.1.2.3")}, want: ImplicitDeny},
		{name: "list without address", policy: ipAndPrefix, req: Request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::photos", HasPrefix: true}, want: ImplicitDeny},
		{name: "not-ip outside", policy: ipAndPrefix, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/k", SourceIP: ip("10.8.0.1")}, want: Allowed},
		{name: "not-ip inside", policy: ipAndPrefix, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/k", SourceIP: ip("10.9.0.1")}, want: ImplicitDeny},
		{name: "not-ip without address", policy: ipAndPrefix, req: Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::photos/k"}, want: Allowed},
		{name: "if-exists without address", policy: ipAndPrefix, req: Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::photos/k"}, want: Allowed},
		{name: "if-exists outside", policy: ipAndPrefix, req: Request{Action: "s3:PutObject", Resource: "arn:aws:s3:::photos/k", SourceIP: ip("11.0.0.1")}, want: ImplicitDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.policy)
			if got := p.Evaluate(&tc.req); got != tc.want {
				t.Errorf("Evaluate(%+v) = %v, want %v", tc.req, got, tc.want)
			}
		})
	}
}

func TestNilPolicyDenies(t *testing.T) {
	var p *Policy
	if d := p.Evaluate(&Request{Action: "s3:GetObject", Resource: "*"}); d != ImplicitDeny {
		t.Fatalf("nil policy: %v", d)
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{pat: "*", s: "", want: true},
		{pat: "*", s: "anything", want: true},
		{pat: "a*c", s: "abbbc", want: true},
		{pat: "a*c", s: "abbbd", want: false},
		{pat: "a?c", s: "abc", want: true},
		{pat: "a?c", s: "ac", want: false},
		{pat: "a?c", s: "aéc", want: true},
		{pat: "*/private/*", s: "b/x/private/y", want: true},
		{pat: "a*b*c", s: "aXbYbZc", want: true},
		{pat: "a*b*c", s: "aXbYbZ", want: false},
		{pat: "s3:Get*", s: "S3:GETOBJECT", fold: true, want: true},
		{pat: "s3:Get*", s: "S3:GETOBJECT", fold: false, want: false},
		{pat: "**a", s: "bbba", want: true},
		{pat: "", s: "", want: true},
		{pat: "", s: "a", want: false},
	}
	for _, tc := range cases {
		if got := globMatch(tc.pat, tc.s, tc.fold); got != tc.want {
			t.Errorf("globMatch(%q, %q, %v) = %v, want %v", tc.pat, tc.s, tc.fold, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	st := func(body string) string {
		return `{"Version":"2012-10-17","Statement":[{` + body + `}]}`
	}
	cases := []struct {
		name, doc, want string
	}{
		{name: "not json", doc: `{`, want: "not a JSON object"},
		{name: "trailing", doc: `{"Statement":[]} {}`, want: "more than one JSON value"},
		{name: "version", doc: `{"Version":"2020-01-01","Statement":[]}`, want: "version"},
		{name: "no statement", doc: `{"Version":"2012-10-17"}`, want: "no Statement"},
		{name: "empty statement", doc: `{"Version":"2012-10-17","Statement":[]}`, want: "empty"},
		{name: "unknown top", doc: `{"Version":"2012-10-17","Statment":[]}`, want: `unknown element "Statment"`},
		{name: "effect", doc: st(`"Effect":"allow","Action":"*","Resource":"*"`), want: `Effect "allow"`},
		{name: "no effect", doc: st(`"Action":"*","Resource":"*"`), want: "no Effect"},
		{name: "no action", doc: st(`"Effect":"Allow","Resource":"*"`), want: "no Action"},
		{name: "no resource", doc: st(`"Effect":"Allow","Action":"*"`), want: "no Resource"},
		{name: "both actions", doc: st(`"Effect":"Allow","Action":"*","NotAction":"s3:x","Resource":"*"`), want: "both Action and NotAction"},
		{name: "principal", doc: st(`"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"`), want: "names no principal"},
		{name: "bad action", doc: st(`"Effect":"Allow","Action":"GetObject","Resource":"*"`), want: "want service:action"},
		{name: "bad service", doc: st(`"Effect":"Allow","Action":"s 3:Get","Resource":"*"`), want: "not a service name"},
		{name: "bad resource", doc: st(`"Effect":"Allow","Action":"*","Resource":"photos/*"`), want: "want * or an ARN"},
		{name: "empty action list", doc: st(`"Effect":"Allow","Action":[],"Resource":"*"`), want: "empty list"},
		{name: "action number", doc: st(`"Effect":"Allow","Action":3,"Resource":"*"`), want: "want a string or a list"},
		{name: "unknown operator", doc: st(`"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030"}}`), want: `operator "DateLessThan"`},
		{name: "unknown key", doc: st(`"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"ann"}}`), want: "unknown condition key"},
		{name: "bool op for ip", doc: st(`"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SourceIp":"true"}}`), want: "IpAddress"},
		{name: "bad bool", doc: st(`"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}`), want: "want true or false"},
		{name: "bad cidr", doc: st(`"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), want: "CIDR"},
		{name: "too big", doc: `{"Statement":"` + strings.Repeat("x", MaxPolicySize) + `"}`, want: "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse accepted %s", tc.doc)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("error %v does not wrap ErrInvalidPolicy", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	// A single statement object, a Bool as a JSON boolean, an Id, an
	// omitted Version: all as IAM accepts them.
	p := mustParse(t, `{"Id":"x","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}}`)
	if p.Statements() != 1 {
		t.Fatalf("statements = %d", p.Statements())
	}
	if d := p.Evaluate(&Request{Action: "s3:GetObject", Resource: "*"}); d != ExplicitDeny {
		t.Fatalf("JSON false: %v", d)
	}
}

// tenStatements is a 10-statement policy of the kind users write: buckets,
// prefixes, a Deny, KMS keys, and conditions.
func tenStatements() string {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for i := range 7 {
		fmt.Fprintf(&b, `{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:List*"],"Resource":["arn:aws:s3:::bucket-%d","arn:aws:s3:::bucket-%d/*"]},`, i, i)
	}
	b.WriteString(`{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::bucket-*/secret/*"},`)
	b.WriteString(`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},`)
	b.WriteString(`{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:*:*:key/*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}]}`)
	return b.String()
}

func BenchmarkEvaluate10(b *testing.B) {
	p := mustParse(b, tenStatements())
	if p.Statements() != 10 {
		b.Fatalf("statements = %d", p.Statements())
	}
	reqs := []Request{
		// allowed by the last Allow on a bucket: every statement looked at
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket-6/photos/2024/img.jpg", SecureTransport: true, SourceIP: netip.MustParseAddr("10.1.2.3")},
		// denied implicitly: no statement matches
		{Action: "s3:DeleteObject", Resource: "arn:aws:s3:::other/k", SecureTransport: true, SourceIP: netip.MustParseAddr("10.1.2.3")},
		{Action: "kms:Decrypt", Resource: keyARN, SecureTransport: true, SourceIP: netip.MustParseAddr("10.1.2.3")},
	}
	for _, r := range reqs {
		b.Run(r.Action, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(&r)
			}
		})
	}
}

func BenchmarkParse10(b *testing.B) {
	doc := []byte(tenStatements())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCheckMessage(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret"}]}`)
	user := UserARN("000000000000", "reader")
	if err := p.Check(user, &Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}); err != nil {
		t.Fatalf("allowed request: %v", err)
	}
	err := p.Check(user, &Request{Action: "kms:Decrypt", Resource: keyARN})
	want := "User: arn:aws:iam::000000000000:user/reader is not authorized to perform: kms:Decrypt on resource: " + keyARN + " because no identity-based policy allows the kms:Decrypt action"
	if !errors.Is(err, ErrAccessDenied) || err.Error() != want {
		t.Fatalf("implicit deny: %v\nwant %s", err, want)
	}
	err = p.Check(user, &Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/secret"})
	if !errors.Is(err, ErrAccessDenied) || !strings.HasSuffix(err.Error(), "with an explicit deny in an identity-based policy") {
		t.Fatalf("explicit deny: %v", err)
	}
}
