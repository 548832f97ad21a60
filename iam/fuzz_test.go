package iam

import (
	"errors"
	"net/netip"
	"testing"
)

// FuzzParse: Parse never panics, fails only with ErrInvalidPolicy, and a
// policy it accepts evaluates any request without panicking, deciding
// ExplicitDeny, Allowed or ImplicitDeny.
func FuzzParse(f *testing.F) {
	f.Add([]byte(tenStatements()))
	f.Add([]byte(`{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":"kms:?ecrypt","NotResource":"arn:aws:kms:*","Condition":{"StringNotLikeIfExists":{"s3:prefix":["a*","",1,true]},"NotIpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}}]}`))
	f.Add([]byte(`{"Statement":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not wrap ErrInvalidPolicy", err)
			}
			return
		}
		for _, r := range []Request{
			{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"},
			{Action: "kms:Decrypt", Resource: "arn:aws:kms:r:a:key/x", SecureTransport: true, SourceIP: netip.MustParseAddr("10.0.0.1"), HasPrefix: true, Prefix: "a/"},
			{Action: string(doc), Resource: string(doc), SourceIP: netip.MustParseAddr("::1"), HasPrefix: true},
		} {
			if d := p.Evaluate(&r); d > ExplicitDeny {
				t.Fatalf("decision %v", d)
			}
		}
	})
}
