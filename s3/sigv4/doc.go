// Package sigv4 owns the authentication of sealfs's S3 requests and the
// verification of their payloads: AWS Signature Version 4 in the
// Authorization header and in presigned URLs, and every x-amz-content-sha256
// payload mode S3 clients send, decoded and verified as the body streams.
//
// # Authenticating a request
//
// A Verifier checks a request's signature against the secret of its access
// key and returns an *Auth describing who signed it and how the payload is
// protected:
//
//	v := &sigv4.Verifier{Lookup: creds.Secret, Region: "us-east-1"}
//	auth, err := v.Verify(r)
//	if err != nil {
//		s3err.WriteXML(w, r, err, reqID) // every error is an *s3err.Error
//		return
//	}
//
// Only AWS4-HMAC-SHA256 is accepted. Signature Version 2 (an "AWS ak:sig"
// Authorization header or Signature/AWSAccessKeyId query parameters) and any
// other scheme are refused with InvalidRequest and a message saying sealfs
// accepts only Signature Version 4; a request with no authentication at all
// is AccessDenied (errors.Is(err, ErrAnonymous) tells the two apart from a
// bad signature). Browser POST-policy uploads are not handled here.
//
// The canonical request is built the way S3 defines it: the path is decoded
// once and every segment re-encoded once (no double encoding, '/' kept), query
// parameters are encoded and sorted, signed headers are lower-cased, trimmed
// and have runs of spaces collapsed, and host must be among them. Every
// x-amz-* header present must be signed, as S3 requires. Signatures are
// compared in constant time. Derived signing keys are cached per
// (secret, date, region, service) inside the Verifier.
//
// # Reading the payload
//
// Auth.Body returns a *Payload, an io.ReadCloser of the decoded payload that
// verifies as it streams, in one pass over the bytes:
//
//   - UNSIGNED-PAYLOAD: passed through.
//   - a hex SHA-256: hashed, compared at the end (XAmzContentSHA256Mismatch).
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD: aws-chunked; every chunk's
//     signature is checked against the chain that starts at the request's
//     seed signature (SignatureDoesNotMatch).
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER and
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: aws-chunked with trailing
//     headers; in the signed form the trailer signature is checked too.
//
// Content-MD5 (InvalidDigest when malformed, BadDigest when wrong) and the
// x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256} values, sent as headers
// or as trailers, are verified against the decoded bytes (BadDigest). The
// decoded length is checked against x-amz-decoded-content-length and
// Content-Length (IncompleteBody).
//
// Chunks are never buffered and their size is not capped: a 64 MiB body sent
// as one chunk streams through in O(small) memory, hashed incrementally.
// The price of streaming is that bytes are handed to the caller before the
// signature or checksum that covers them has been checked. The contract is:
//
//	Nothing read from a Payload may be committed until Read has returned
//	io.EOF. Any other error means the payload is to be discarded.
//
// Every verification failure is returned by Read before io.EOF would be, and
// sticks: later reads return the same error.
//
// After io.EOF, Payload.Checksums reports the checksums computed over the
// decoded bytes (those the client sent, now verified, plus any requested with
// WithChecksums) and Payload.MD5 the MD5 if it was requested (WithMD5) or
// needed to check Content-MD5, so the caller can store them.
//
// This package never logs, never stores anything and never sees a secret it
// did not get from Lookup; it returns errors from package s3err.
package sigv4
