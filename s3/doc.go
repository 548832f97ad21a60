// Package s3 owns sealfs's S3 request handlers: the http.Handler the daemon
// serves on its HTTPS listener (and, if asked, on a plain-HTTP one). It turns
// each S3 request into calls on the store (package cryptostore) and each
// result or error into the response S3 clients expect.
//
// It is a front door: it reaches metadata, blobs and keys only through the
// store, and imports neither meta nor kms (the records, key ARNs and KMS
// errors it shows come through cryptostore), nor replicate: the bucket
// replication configuration is served by the Config.Replication it is
// given, and replica writes arriving from another region are read with
// package s3replica and committed as cryptostore.Replica writes.
//
// # What it owns
//
//   - Addressing: path style (/BUCKET/KEY) always; virtual-host style
//     (Host: BUCKET.DOMAIN) when Config.Domain is set.
//   - Choosing the operation from the method, the path and the query's
//     subresources (?uploads, ?encryption, ?list-type=2, ...).
//   - Authentication through package sigv4 (Signature Version 4 in the
//     Authorization header or a presigned URL; anonymous requests are
//     AccessDenied, Signature Version 2 is refused with a clear error), and
//     reading every body through sigv4's verifying reader. Authentication
//     comes first: nothing about a bucket or key is looked at for a request
//     that is not authenticated, so its answer is the same whatever it
//     names and tells nothing about what exists or is encrypted.
//   - Authorization (authz.go): the admin's access key (Config.Credentials)
//     is allowed everything; any other is a user's (the store's Principal),
//     and the user's policy (package iam) is evaluated for the operation's
//     IAM action right after the signature is checked, before anything
//     about a bucket or key is looked at: AccessDenied with AWS's message
//     otherwise. The request's context carries the user, so the store
//     checks kms:Decrypt and kms:GenerateDataKey on the bucket's key.
//   - Design rule 6: requests that write into a bucket with default
//     encryption or read an encrypted object (PutObject, CopyObject, the
//     multipart writes, GetObject, HeadObject) must come over TLS and be
//     signed with Signature Version 4. Requests not signed with Signature
//     Version 4 are refused before anything is looked up (above); an
//     authenticated request over plain HTTP is refused with AWS's words
//     (InvalidArgument, 400) before its body is read. That check costs a
//     metadata lookup, made only for authenticated plain-HTTP requests.
//   - The mapping of store errors to S3 error codes, with an S3 XML error
//     body, x-amz-request-id and x-amz-id-2 on every response.
//   - One log line per request (request id, operation, bucket, key, status,
//     bytes, duration) at info level. Errors the client caused, 4xx and
//     NotImplemented, are only in that line; a server failure is also
//     logged at error level.
//   - ACLs (acl.go): one owner and no grants to anyone else, so
//     GetBucketAcl and GetObjectAcl answer the owner's FULL_CONTROL, the
//     truth; setting an ACL is NotImplemented.
//   - The HTTPS listener's connections beneath TLS (batchconn.go):
//     BatchListener and ConnContext, which the daemon installs, let a GET
//     write each piece of its body to the socket in one call instead of one
//     per TLS record, and read request bodies ahead while they stream in.
//   - Listings (list.go) are sent in pieces: ListObjects and ListObjectsV2
//     read a page's records out of the store undecoded
//     (cryptostore.RecordPage), then check, decode and send them a piece
//     at a time, so the client parses the first objects while the daemon
//     works on the next. A record that fails its check after the first
//     piece cuts the connection, as a GET's damaged data does.
//
// # Bodies and integrity
//
// A request body is never buffered: it streams from the connection through
// sigv4's decoder (aws-chunked of any chunk size, chunk signatures, trailing
// checksums) into cryptostore.Put, which hashes, seals and writes it in one
// pass. What the client declared about the body (Content-MD5,
// x-amz-checksum-*, the signed SHA-256, chunk signatures, the length) is
// checked before the store commits anything: the store calls the request's
// Verify hook only once the body has been read to a verified end. Each
// digest is computed once: Content-MD5 is checked against the MD5 the store
// computes (for a plain object's ETag anyway; for an object stored
// encrypted, whose ETag is random, only because Content-MD5 was sent), and
// the checksums the client sent are computed by sigv4 and stored as they
// are.
//
// # Encryption
//
// Whether an object is encrypted is decided by the store from the bucket's
// default-encryption setting (design rules 2–4); this package never decides
// it. Request headers asking for SSE-S3 or SSE-KMS change nothing (a request
// that asked in a bucket without default encryption gets no SSE header back,
// and is logged once per bucket: sse.go); a customer-supplied key (SSE-C) or
// a KMS key other than the bucket's own is refused, since sealfs offers
// neither (rule 1). Malformed SSE headers are refused as AWS refuses them: a
// value that names no algorithm on a write, SSE-KMS headers on a read.
// Responses about encrypted objects carry x-amz-server-side-encryption:
// aws:kms and the key's ARN.
//
// # Following AWS where clients look
//
// User metadata that is not US-ASCII is decoded from RFC 2047 before it is
// stored and returned RFC 2047 encoded (headers.go); Content-Encoding is
// returned byte-exact; a repeated CompleteMultipartUpload of an upload that
// completed answers the first result (cryptostore remembers completions for
// cryptostore.CompletedUploadTTL). README.md's "Differences from AWS S3"
// lists every place where sealfs answers differently on purpose.
//
// # What it must never do
//
// Log a secret, key material or object content; buffer a whole body; write
// object data except through the store; answer an error with its internal
// text (an unknown error is InternalError with the generic message, and its
// cause goes to the log).
package s3
