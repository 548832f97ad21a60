package s3

import (
	"encoding/xml"

	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// ACLs: sealfs has one owner (the endpoint's credentials) and no grants to
// anyone else, so the truthful access control list of every bucket and
// object is the owner's FULL_CONTROL. GetBucketAcl and GetObjectAcl answer
// it (s3cmd info and SDKs ask); setting ACLs stays NotImplemented.

// accessControlPolicy is the answer of GetBucketAcl and GetObjectAcl.
type accessControlPolicy struct {
	XMLName xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner   s3xml.Owner `xml:"Owner"`
	Grants  []aclGrant  `xml:"AccessControlList>Grant"`
}

type aclGrant struct {
	Grantee    aclGrantee `xml:"Grantee"`
	Permission string     `xml:"Permission"`
}

// aclGrantee is a canonical user; the xsi attributes are written as S3
// writes them.
type aclGrantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

func (q *request) ownerACL() error {
	o := q.h.owner
	return q.writeXML(accessControlPolicy{
		Owner: o,
		Grants: []aclGrant{{
			Grantee:    aclGrantee{XMLNSXSI: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: o.ID, DisplayName: o.DisplayName},
			Permission: "FULL_CONTROL",
		}},
	})
}

func getBucketACL(q *request) error {
	if _, err := q.h.store.GetBucket(q.ctx, q.bucket); err != nil {
		return err
	}
	return q.ownerACL()
}

func getObjectACL(q *request) error {
	if err := checkKey(q.key); err != nil {
		return err
	}
	if v := q.query.Get("versionId"); v != "" && v != "null" {
		return s3err.ErrNoSuchVersion
	}
	if _, err := q.h.store.Head(q.ctx, q.bucket, q.key); err != nil {
		return err
	}
	return q.ownerACL()
}
