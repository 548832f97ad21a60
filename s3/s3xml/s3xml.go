// Package s3xml owns the XML documents of sealfs's S3 API: the request bodies
// it decodes and the response bodies it encodes, with the element names and
// namespace S3 clients expect, plus the strict decoder for request bodies and
// S3's encoding-type=url key encoding for listings.
//
// Response documents carry the S3 namespace
// (http://s3.amazonaws.com/doc/2006-03-01/) on their root element. Documents
// that travel both ways (VersioningConfiguration,
// ServerSideEncryptionConfiguration, ReplicationConfiguration, and the
// request bodies) decode whether or not the client put the namespace on them
// (encoding/xml would reject a namespaced tag on a body sent without one) and
// always encode with it: their MarshalXML fills the Xmlns attribute.
//
// Request bodies are decoded only with Decode, which bounds the body, insists
// on one well-formed document whose root element is the expected one, and
// answers every failure with s3err.ErrMalformedXML.
//
// The package never touches the store, the network or the request; it is data
// types and their wire form only.
package s3xml

import (
	"encoding/xml"
	"time"
)

// Namespace is the S3 XML namespace.
const Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// TimeLayout is the timestamp format S3 uses in XML bodies: ISO 8601 in UTC
// with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Time is a timestamp written in S3's layout (TimeLayout, always UTC). A
// zero Time is omitted from the output entirely.
type Time struct {
	time.Time
}

// NewTime returns t as a Time.
func NewTime(t time.Time) Time { return Time{Time: t} }

// MarshalXML writes the time in TimeLayout, or nothing when it is zero.
func (t Time) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if t.IsZero() {
		return nil
	}
	return e.EncodeElement(t.UTC().Format(TimeLayout), start)
}

// UnmarshalXML reads an RFC 3339 timestamp (TimeLayout is one).
func (t *Time) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s string
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// Owner identifies the owner of a bucket, object or upload.
type Owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

// Initiator identifies who started a multipart upload.
type Initiator struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName,omitempty"`
}

// CommonPrefix is one rolled-up prefix of a delimited listing.
type CommonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// Checksums are the additional checksums S3 reports on objects and parts,
// base64 as on the wire. Empty ones are omitted.
type Checksums struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

// ---------------------------------------------------------------------------
// Buckets

// ListAllMyBucketsResult answers ListBuckets (GET /).
type ListAllMyBucketsResult struct {
	XMLName           xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner             Owner    `xml:"Owner"`
	Buckets           []Bucket `xml:"Buckets>Bucket"`
	ContinuationToken string   `xml:"ContinuationToken,omitempty"`
	Prefix            string   `xml:"Prefix,omitempty"`
}

// Bucket is one entry of ListAllMyBucketsResult.
type Bucket struct {
	Name         string `xml:"Name"`
	CreationDate Time   `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

// CreateBucketConfiguration is the optional body of CreateBucket.
type CreateBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	Xmlns              string   `xml:"xmlns,attr,omitempty"`
	LocationConstraint string   `xml:"LocationConstraint,omitempty"`
}

// LocationConstraint answers GetBucketLocation. S3 answers an empty element
// for us-east-1.
type LocationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

// VersioningConfiguration is the body of PutBucketVersioning and the answer
// to GetBucketVersioning (both fields empty for a bucket that never had
// versioning).
type VersioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`    // Enabled | Suspended
	MfaDelete string   `xml:"MfaDelete,omitempty"` // Enabled | Disabled
}

// ---------------------------------------------------------------------------
// Listings

// Object is one entry (Contents) of a ListObjects/ListObjectsV2 result.
type Object struct {
	Key               string `xml:"Key"`
	LastModified      Time   `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              int64  `xml:"Size"`
	Owner             *Owner `xml:"Owner,omitempty"`
	StorageClass      string `xml:"StorageClass"`
}

// ListBucketResult answers ListObjects (version 1). S3 always sends Marker,
// even empty.
type ListBucketResult struct {
	XMLName        xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name           string         `xml:"Name"`
	Prefix         string         `xml:"Prefix"`
	Marker         string         `xml:"Marker"`
	NextMarker     string         `xml:"NextMarker,omitempty"`
	MaxKeys        int            `xml:"MaxKeys"`
	Delimiter      string         `xml:"Delimiter,omitempty"`
	IsTruncated    bool           `xml:"IsTruncated"`
	EncodingType   string         `xml:"EncodingType,omitempty"`
	Contents       []Object       `xml:"Contents"`
	CommonPrefixes []CommonPrefix `xml:"CommonPrefixes"`
}

// EncodeURL applies encoding-type=url to the fields S3 encodes in a version 1
// listing (Marker, NextMarker, Delimiter, each Key and common prefix) and
// sets EncodingType. Call it once, after filling the result.
//
// The top-level Prefix stays as sent. AWS's API reference lists Prefix among
// the encoded elements, but the service returns it unencoded in version 1,
// and AWS's own SDKs rely on that: botocore decodes Delimiter, Marker,
// NextMarker, keys and common prefixes of a ListObjects answer, not Prefix,
// so an encoded one reaches boto3's and the aws CLI's callers as "%0A".
// (Version 2 encodes Prefix, and botocore decodes it there.)
func (l *ListBucketResult) EncodeURL() {
	l.EncodingType = "url"
	l.Marker = URLEncode(l.Marker)
	l.NextMarker = URLEncode(l.NextMarker)
	l.Delimiter = URLEncode(l.Delimiter)
	for i := range l.Contents {
		l.Contents[i].Key = URLEncode(l.Contents[i].Key)
	}
	for i := range l.CommonPrefixes {
		l.CommonPrefixes[i].Prefix = URLEncode(l.CommonPrefixes[i].Prefix)
	}
}

// ListBucketResultV2 answers ListObjectsV2 (list-type=2). Its root element is
// also ListBucketResult.
type ListBucketResultV2 struct {
	XMLName               xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	MaxKeys               int            `xml:"MaxKeys"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	IsTruncated           bool           `xml:"IsTruncated"`
	KeyCount              int            `xml:"KeyCount"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	Contents              []Object       `xml:"Contents"`
	CommonPrefixes        []CommonPrefix `xml:"CommonPrefixes"`
}

// EncodeURL applies encoding-type=url to the fields S3 encodes in a version 2
// listing (Prefix, StartAfter, Delimiter, each Key and common prefix; the
// continuation tokens are opaque and left alone) and sets EncodingType.
func (l *ListBucketResultV2) EncodeURL() {
	l.EncodingType = "url"
	l.Prefix = URLEncode(l.Prefix)
	l.StartAfter = URLEncode(l.StartAfter)
	l.Delimiter = URLEncode(l.Delimiter)
	for i := range l.Contents {
		l.Contents[i].Key = URLEncode(l.Contents[i].Key)
	}
	for i := range l.CommonPrefixes {
		l.CommonPrefixes[i].Prefix = URLEncode(l.CommonPrefixes[i].Prefix)
	}
}

// ObjectVersion is one entry of ListVersionsResult: a version or, when
// DeleteMarker is set, a delete marker. S3 interleaves the two element kinds
// in key order, which is why they share one slice; a delete marker is written
// as <DeleteMarker> with only the fields S3 gives one.
type ObjectVersion struct {
	DeleteMarker      bool
	Key               string
	VersionID         string
	IsLatest          bool
	LastModified      Time
	ETag              string
	ChecksumAlgorithm string
	ChecksumType      string
	Size              int64
	StorageClass      string
	Owner             *Owner
}

type versionXML struct {
	Key               string `xml:"Key"`
	VersionID         string `xml:"VersionId"`
	IsLatest          bool   `xml:"IsLatest"`
	LastModified      Time   `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              int64  `xml:"Size"`
	StorageClass      string `xml:"StorageClass"`
	Owner             *Owner `xml:"Owner,omitempty"`
}

type deleteMarkerXML struct {
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified Time   `xml:"LastModified"`
	Owner        *Owner `xml:"Owner,omitempty"`
}

// MarshalXML writes <Version> or <DeleteMarker>.
func (v ObjectVersion) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if v.DeleteMarker {
		start.Name = xml.Name{Local: "DeleteMarker"}
		return e.EncodeElement(deleteMarkerXML{
			Key: v.Key, VersionID: v.VersionID, IsLatest: v.IsLatest,
			LastModified: v.LastModified, Owner: v.Owner,
		}, start)
	}
	start.Name = xml.Name{Local: "Version"}
	return e.EncodeElement(versionXML{
		Key: v.Key, VersionID: v.VersionID, IsLatest: v.IsLatest,
		LastModified: v.LastModified, ETag: v.ETag,
		ChecksumAlgorithm: v.ChecksumAlgorithm, ChecksumType: v.ChecksumType,
		Size: v.Size, StorageClass: v.StorageClass, Owner: v.Owner,
	}, start)
}

// ListVersionsResult answers ListObjectVersions (?versions).
type ListVersionsResult struct {
	XMLName             xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string          `xml:"Name"`
	Prefix              string          `xml:"Prefix"`
	KeyMarker           string          `xml:"KeyMarker"`
	VersionIDMarker     string          `xml:"VersionIdMarker"`
	NextKeyMarker       string          `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string          `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int             `xml:"MaxKeys"`
	Delimiter           string          `xml:"Delimiter,omitempty"`
	IsTruncated         bool            `xml:"IsTruncated"`
	EncodingType        string          `xml:"EncodingType,omitempty"`
	Versions            []ObjectVersion `xml:"Version"`
	CommonPrefixes      []CommonPrefix  `xml:"CommonPrefixes"`
}

// EncodeURL applies encoding-type=url (Prefix, KeyMarker, NextKeyMarker,
// Delimiter, each Key and common prefix) and sets EncodingType.
func (l *ListVersionsResult) EncodeURL() {
	l.EncodingType = "url"
	l.Prefix = URLEncode(l.Prefix)
	l.KeyMarker = URLEncode(l.KeyMarker)
	l.NextKeyMarker = URLEncode(l.NextKeyMarker)
	l.Delimiter = URLEncode(l.Delimiter)
	for i := range l.Versions {
		l.Versions[i].Key = URLEncode(l.Versions[i].Key)
	}
	for i := range l.CommonPrefixes {
		l.CommonPrefixes[i].Prefix = URLEncode(l.CommonPrefixes[i].Prefix)
	}
}

// ---------------------------------------------------------------------------
// Multi-object delete

// Delete is the body of DeleteObjects (POST ?delete).
type Delete struct {
	XMLName xml.Name           `xml:"Delete"`
	Xmlns   string             `xml:"xmlns,attr,omitempty"`
	Quiet   bool               `xml:"Quiet,omitempty"`
	Objects []ObjectIdentifier `xml:"Object"`
}

// MaxDeleteObjects is the most keys one DeleteObjects request may name.
const MaxDeleteObjects = 1000

// ObjectIdentifier names one object of a Delete request.
type ObjectIdentifier struct {
	Key              string `xml:"Key"`
	VersionID        string `xml:"VersionId,omitempty"`
	ETag             string `xml:"ETag,omitempty"`
	LastModifiedTime *Time  `xml:"LastModifiedTime,omitempty"`
	Size             *int64 `xml:"Size,omitempty"`
}

func (d *Delete) validate() error {
	if len(d.Objects) == 0 || len(d.Objects) > MaxDeleteObjects {
		return errInvalid("Delete must name between 1 and 1000 objects")
	}
	for _, o := range d.Objects {
		if o.Key == "" {
			return errInvalid("Delete names an object with an empty key")
		}
	}
	return nil
}

// DeleteResult answers DeleteObjects.
type DeleteResult struct {
	XMLName xml.Name        `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []DeletedObject `xml:"Deleted"`
	Errors  []DeleteError   `xml:"Error"`
}

// DeletedObject is one success of a DeleteObjects request.
type DeletedObject struct {
	Key                   string `xml:"Key"`
	VersionID             string `xml:"VersionId,omitempty"`
	DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
}

// DeleteError is one failure of a DeleteObjects request.
type DeleteError struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
}

// ---------------------------------------------------------------------------
// Copy

// CopyObjectResult answers CopyObject.
type CopyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	ETag         string   `xml:"ETag"`
	LastModified Time     `xml:"LastModified"`
	ChecksumType string   `xml:"ChecksumType,omitempty"`
	Checksums
}

// CopyPartResult answers UploadPartCopy.
type CopyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified Time     `xml:"LastModified"`
	Checksums
}

// ---------------------------------------------------------------------------
// Multipart uploads

// InitiateMultipartUploadResult answers CreateMultipartUpload.
type InitiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

// MaxPartNumber is the highest part number S3 accepts.
const MaxPartNumber = 10000

// CompleteMultipartUpload is the body of CompleteMultipartUpload.
type CompleteMultipartUpload struct {
	XMLName xml.Name       `xml:"CompleteMultipartUpload"`
	Xmlns   string         `xml:"xmlns,attr,omitempty"`
	Parts   []CompletePart `xml:"Part"`
}

// CompletePart names one part of CompleteMultipartUpload.
type CompletePart struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
	Checksums
}

func (c *CompleteMultipartUpload) validate() error {
	if len(c.Parts) == 0 {
		return errInvalid("CompleteMultipartUpload names no parts")
	}
	if len(c.Parts) > MaxPartNumber {
		return errInvalid("CompleteMultipartUpload names too many parts")
	}
	return nil
}

// CompleteMultipartUploadResult answers CompleteMultipartUpload.
type CompleteMultipartUploadResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location     string   `xml:"Location"`
	Bucket       string   `xml:"Bucket"`
	Key          string   `xml:"Key"`
	ETag         string   `xml:"ETag"`
	ChecksumType string   `xml:"ChecksumType,omitempty"`
	Checksums
}

// Part is one entry of ListPartsResult.
type Part struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified Time   `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Checksums
}

// ListPartsResult answers ListParts.
type ListPartsResult struct {
	XMLName              xml.Name   `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string     `xml:"Bucket"`
	Key                  string     `xml:"Key"`
	UploadID             string     `xml:"UploadId"`
	Initiator            *Initiator `xml:"Initiator,omitempty"`
	Owner                *Owner     `xml:"Owner,omitempty"`
	StorageClass         string     `xml:"StorageClass"`
	PartNumberMarker     int        `xml:"PartNumberMarker"`
	NextPartNumberMarker int        `xml:"NextPartNumberMarker"`
	MaxParts             int        `xml:"MaxParts"`
	IsTruncated          bool       `xml:"IsTruncated"`
	ChecksumAlgorithm    string     `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType         string     `xml:"ChecksumType,omitempty"`
	Parts                []Part     `xml:"Part"`
}

// Upload is one entry of ListMultipartUploadsResult.
type Upload struct {
	Key               string     `xml:"Key"`
	UploadID          string     `xml:"UploadId"`
	Initiator         *Initiator `xml:"Initiator,omitempty"`
	Owner             *Owner     `xml:"Owner,omitempty"`
	StorageClass      string     `xml:"StorageClass"`
	Initiated         Time       `xml:"Initiated"`
	ChecksumAlgorithm string     `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string     `xml:"ChecksumType,omitempty"`
}

// ListMultipartUploadsResult answers ListMultipartUploads (?uploads).
type ListMultipartUploadsResult struct {
	XMLName            xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	Prefix             string         `xml:"Prefix,omitempty"`
	EncodingType       string         `xml:"EncodingType,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	Uploads            []Upload       `xml:"Upload"`
	CommonPrefixes     []CommonPrefix `xml:"CommonPrefixes"`
}

// EncodeURL applies encoding-type=url (Prefix, KeyMarker, NextKeyMarker,
// Delimiter, each Key and common prefix) and sets EncodingType.
func (l *ListMultipartUploadsResult) EncodeURL() {
	l.EncodingType = "url"
	l.Prefix = URLEncode(l.Prefix)
	l.KeyMarker = URLEncode(l.KeyMarker)
	l.NextKeyMarker = URLEncode(l.NextKeyMarker)
	l.Delimiter = URLEncode(l.Delimiter)
	for i := range l.Uploads {
		l.Uploads[i].Key = URLEncode(l.Uploads[i].Key)
	}
	for i := range l.CommonPrefixes {
		l.CommonPrefixes[i].Prefix = URLEncode(l.CommonPrefixes[i].Prefix)
	}
}

// ---------------------------------------------------------------------------
// Default encryption

// SSEAlgorithmKMS is the only default-encryption algorithm sealfs offers.
const SSEAlgorithmKMS = "aws:kms"

// ServerSideEncryptionConfiguration is the body of PutBucketEncryption and
// the answer to GetBucketEncryption.
type ServerSideEncryptionConfiguration struct {
	XMLName xml.Name                   `xml:"ServerSideEncryptionConfiguration"`
	Xmlns   string                     `xml:"xmlns,attr,omitempty"`
	Rules   []ServerSideEncryptionRule `xml:"Rule"`
}

// ServerSideEncryptionRule is one rule of the configuration.
type ServerSideEncryptionRule struct {
	ApplyServerSideEncryptionByDefault *ServerSideEncryptionByDefault `xml:"ApplyServerSideEncryptionByDefault,omitempty"`
	BucketKeyEnabled                   *bool                          `xml:"BucketKeyEnabled,omitempty"`
}

// ServerSideEncryptionByDefault names the algorithm and key.
type ServerSideEncryptionByDefault struct {
	SSEAlgorithm   string `xml:"SSEAlgorithm"`
	KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
}

func (c *ServerSideEncryptionConfiguration) validate() error {
	if len(c.Rules) == 0 {
		return errInvalid("ServerSideEncryptionConfiguration has no rule")
	}
	for _, r := range c.Rules {
		if r.ApplyServerSideEncryptionByDefault == nil {
			return errInvalid("rule without ApplyServerSideEncryptionByDefault")
		}
		if r.ApplyServerSideEncryptionByDefault.SSEAlgorithm == "" {
			return errInvalid("rule without SSEAlgorithm")
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Replication

// ReplicationConfiguration is the body of PutBucketReplication and the answer
// to GetBucketReplication.
type ReplicationConfiguration struct {
	XMLName xml.Name          `xml:"ReplicationConfiguration"`
	Xmlns   string            `xml:"xmlns,attr,omitempty"`
	Role    string            `xml:"Role"`
	Rules   []ReplicationRule `xml:"Rule"`
}

// ReplicationRule is one rule. A rule has either Filter (the current schema)
// or the legacy top-level Prefix; Priority and DeleteMarkerReplication belong
// to the Filter schema.
type ReplicationRule struct {
	ID                        string                     `xml:"ID,omitempty"`
	Priority                  *int                       `xml:"Priority,omitempty"`
	Status                    string                     `xml:"Status"` // Enabled | Disabled
	Filter                    *ReplicationFilter         `xml:"Filter,omitempty"`
	Prefix                    *string                    `xml:"Prefix,omitempty"`
	DeleteMarkerReplication   *DeleteMarkerReplication   `xml:"DeleteMarkerReplication,omitempty"`
	Destination               ReplicationDestination     `xml:"Destination"`
	SourceSelectionCriteria   *SourceSelectionCriteria   `xml:"SourceSelectionCriteria,omitempty"`
	ExistingObjectReplication *ExistingObjectReplication `xml:"ExistingObjectReplication,omitempty"`
}

// EffectivePrefix returns the key prefix the rule applies to, from the
// Filter (its Prefix or its And's Prefix) or the legacy Prefix.
func (r *ReplicationRule) EffectivePrefix() string {
	switch {
	case r.Filter != nil && r.Filter.Prefix != nil:
		return *r.Filter.Prefix
	case r.Filter != nil && r.Filter.And != nil:
		return r.Filter.And.Prefix
	case r.Prefix != nil:
		return *r.Prefix
	}
	return ""
}

// ReplicationFilter selects the objects a rule applies to.
type ReplicationFilter struct {
	Prefix *string               `xml:"Prefix,omitempty"`
	Tag    *Tag                  `xml:"Tag,omitempty"`
	And    *ReplicationFilterAnd `xml:"And,omitempty"`
}

// ReplicationFilterAnd combines a prefix and tags.
type ReplicationFilterAnd struct {
	Prefix string `xml:"Prefix,omitempty"`
	Tags   []Tag  `xml:"Tag"`
}

// Tag is an object tag.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// DeleteMarkerReplication says whether delete markers are replicated.
type DeleteMarkerReplication struct {
	Status string `xml:"Status"` // Enabled | Disabled
}

// ReplicationDestination names the target bucket (an ARN or a bucket name).
type ReplicationDestination struct {
	Bucket                   string                    `xml:"Bucket"`
	Account                  string                    `xml:"Account,omitempty"`
	StorageClass             string                    `xml:"StorageClass,omitempty"`
	EncryptionConfiguration  *EncryptionConfiguration  `xml:"EncryptionConfiguration,omitempty"`
	AccessControlTranslation *AccessControlTranslation `xml:"AccessControlTranslation,omitempty"`
}

// EncryptionConfiguration names the KMS key replicas are encrypted with.
type EncryptionConfiguration struct {
	ReplicaKmsKeyID string `xml:"ReplicaKmsKeyID,omitempty"`
}

// AccessControlTranslation changes replica ownership.
type AccessControlTranslation struct {
	Owner string `xml:"Owner"`
}

// SourceSelectionCriteria selects source objects by encryption.
type SourceSelectionCriteria struct {
	SseKmsEncryptedObjects *StatusElement `xml:"SseKmsEncryptedObjects,omitempty"`
	ReplicaModifications   *StatusElement `xml:"ReplicaModifications,omitempty"`
}

// ExistingObjectReplication says whether existing objects are replicated.
type ExistingObjectReplication struct {
	Status string `xml:"Status"`
}

// StatusElement is an element holding only a Status.
type StatusElement struct {
	Status string `xml:"Status"`
}

// MaxReplicationRules is the most rules S3 accepts in one configuration.
const MaxReplicationRules = 1000

func (c *ReplicationConfiguration) validate() error {
	if len(c.Rules) == 0 || len(c.Rules) > MaxReplicationRules {
		return errInvalid("ReplicationConfiguration must have between 1 and 1000 rules")
	}
	for _, r := range c.Rules {
		if r.Status != "Enabled" && r.Status != "Disabled" {
			return errInvalid("replication rule Status must be Enabled or Disabled")
		}
		if r.Destination.Bucket == "" {
			return errInvalid("replication rule without Destination Bucket")
		}
		if r.Filter != nil && r.Prefix != nil {
			return errInvalid("replication rule has both Filter and Prefix")
		}
	}
	return nil
}
