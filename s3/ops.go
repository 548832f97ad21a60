package s3

import (
	"net/http"
	"slices"

	"github.com/sealfs/sealfs/s3/s3err"
)

// operation is what a request asks for.
type operation struct {
	name  string
	serve func(q *request) error
	// sealed, if set, reports whether the request reads or writes the data
	// of an encrypted object (or of an object that will be encrypted): such
	// requests must be made over TLS with Signature Version 4 (design rule
	// 6). It is asked only for authenticated (so Signature Version 4)
	// requests over plain HTTP, and must not read the body.
	sealed func(q *request) bool
}

// configSubresource reports whether name is a subresource naming bucket or
// object configuration sealfs does not keep, and for those S3 can answer
// "none configured" for, that answer. Reading one answers it; anything else
// on such a subresource is NotImplemented.
func configSubresource(name string) (absent *s3err.Error, ok bool) {
	switch name {
	case "policy":
		return s3err.ErrNoSuchBucketPolicy, true
	case "cors":
		return s3err.ErrNoSuchCORSConfiguration, true
	case "lifecycle":
		return s3err.ErrNoSuchLifecycleConfiguration, true
	case "tagging":
		return s3err.ErrNoSuchTagSet, true
	case "website":
		return s3err.ErrNoSuchWebsiteConfiguration, true
	case "object-lock":
		return s3err.ErrObjectLockConfigNotFound, true
	case "replication":
		return s3err.ErrReplicationConfigurationNotFound, true
	case "acl", "logging", "notification", "accelerate", "requestPayment", "analytics",
		"inventory", "metrics", "intelligent-tiering", "ownershipControls", "publicAccessBlock",
		"policyStatus", "legal-hold", "retention", "torrent", "restore", "select", "attributes":
		return nil, true
	}
	return nil, false
}

// pick chooses the operation from the method, the addressing and the
// query's subresources.
func pick(q *request) operation {
	m := q.r.Method
	has := func(name string) bool { _, ok := q.query[name]; return ok }
	if q.bucket == "" {
		if m == http.MethodGet {
			return operation{name: "ListBuckets", serve: listBuckets}
		}
		return notAllowed("Service")
	}
	if op, ok := replicationOp(q); ok {
		return op
	}
	if q.key == "" {
		switch m {
		case http.MethodGet:
			switch {
			case has("location"):
				return operation{name: "GetBucketLocation", serve: getBucketLocation}
			case has("versioning"):
				return operation{name: "GetBucketVersioning", serve: getBucketVersioning}
			case has("encryption"):
				return operation{name: "GetBucketEncryption", serve: getBucketEncryption}
			case has("acl"):
				return operation{name: "GetBucketAcl", serve: getBucketACL}
			case has("uploads"):
				return operation{name: "ListMultipartUploads", serve: listUploads}
			case has("versions"):
				return operation{name: "ListObjectVersions", serve: listVersions}
			case q.query.Get("list-type") == "2":
				return operation{name: "ListObjectsV2", serve: listObjectsV2}
			}
			if op, ok := configOp(q, "GetBucket"); ok {
				return op
			}
			return operation{name: "ListObjects", serve: listObjectsV1}
		case http.MethodHead:
			return operation{name: "HeadBucket", serve: headBucket}
		case http.MethodPut:
			switch {
			case has("encryption"):
				return operation{name: "PutBucketEncryption", serve: putBucketEncryption}
			case has("versioning"):
				return operation{name: "PutBucketVersioning", serve: putBucketVersioning}
			}
			if op, ok := configOp(q, "PutBucket"); ok {
				return op
			}
			return operation{name: "CreateBucket", serve: createBucket}
		case http.MethodDelete:
			if has("encryption") {
				return operation{name: "DeleteBucketEncryption", serve: deleteBucketEncryption}
			}
			if op, ok := configOp(q, "DeleteBucket"); ok {
				return op
			}
			return operation{name: "DeleteBucket", serve: deleteBucket}
		case http.MethodPost:
			if has("delete") {
				return operation{name: "DeleteObjects", serve: deleteObjects}
			}
			return notImplemented("PostObject")
		}
		return notAllowed("Bucket")
	}
	switch m {
	case http.MethodGet:
		if has("uploadId") {
			return operation{name: "ListParts", serve: listParts}
		}
		if has("acl") {
			return operation{name: "GetObjectAcl", serve: getObjectACL}
		}
		if op, ok := configOp(q, "GetObject"); ok {
			return op
		}
		return operation{name: "GetObject", serve: getObject, sealed: objectSealed}
	case http.MethodHead:
		return operation{name: "HeadObject", serve: headObject, sealed: objectSealed}
	case http.MethodPut:
		copySrc := q.r.Header.Get("X-Amz-Copy-Source") != ""
		switch {
		case has("uploadId") && copySrc:
			return operation{name: "UploadPartCopy", serve: uploadPartCopy, sealed: uploadPartCopySealed}
		case has("uploadId") || has("partNumber"):
			return operation{name: "UploadPart", serve: uploadPart, sealed: uploadSealed}
		}
		if op, ok := configOp(q, "PutObject"); ok {
			return op
		}
		if copySrc {
			return operation{name: "CopyObject", serve: copyObject, sealed: copySealed}
		}
		return operation{name: "PutObject", serve: putObject, sealed: bucketSealed}
	case http.MethodDelete:
		if has("uploadId") {
			return operation{name: "AbortMultipartUpload", serve: abortUpload}
		}
		if op, ok := configOp(q, "DeleteObject"); ok {
			return op
		}
		return operation{name: "DeleteObject", serve: deleteObject}
	case http.MethodPost:
		switch {
		case has("uploads"):
			return operation{name: "CreateMultipartUpload", serve: createUpload, sealed: bucketSealed}
		case has("uploadId"):
			return operation{name: "CompleteMultipartUpload", serve: completeUpload, sealed: uploadSealed}
		}
		if op, ok := configOp(q, "PostObject"); ok {
			return op
		}
		return notImplemented("PostObject")
	}
	return notAllowed("Object")
}

// configOp handles the subresources of configSubresource: reads answer "none
// configured" where S3 has such an answer, everything else is
// NotImplemented.
func configOp(q *request, prefix string) (operation, bool) {
	names := make([]string, 0, len(q.query))
	for name := range q.query {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		absent, ok := configSubresource(name)
		if !ok {
			continue
		}
		opName := prefix + "-" + name
		if q.r.Method == http.MethodGet && absent != nil {
			return operation{name: opName, serve: func(*request) error { return absent }}, true
		}
		return notImplemented(opName), true
	}
	return operation{}, false
}

func notImplemented(name string) operation {
	return operation{name: name, serve: func(*request) error {
		return s3err.ErrNotImplemented.WithMessage("sealfs does not implement " + name + ".")
	}}
}

func notAllowed(what string) operation {
	return operation{name: "MethodNotAllowed", serve: func(q *request) error {
		return s3err.ErrMethodNotAllowed.WithMessage("The specified method (" + q.r.Method + ") is not allowed against this resource (" + what + ").")
	}}
}
