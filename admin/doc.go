// Package admin is sealfs's admin API: what `sealfs bucket|kms|status|scrub|
// replicate ...` ask of a running daemon. It is a front door of its own,
// beside package fs (the mount) and package s3 (the S3 API): an
// http.Handler over a *cryptostore.Store (buckets, master keys, status,
// scrub) and a *replicate.Manager (targets, rules, status, resync). Like
// the other front doors it reaches metadata, blobs and keys only through
// the store: it imports neither meta nor kms. The daemon (cmd/sealfs) only
// builds it (New) and mounts it under Prefix beside the S3 API.
//
// The key lifecycle (keys.go: `sealfs kms rewrap|retire|delete|cancel-delete|
// rotate --every`, `sealfs bucket encrypt-existing` and `bucket rm --shred`)
// is here as well; rewrap and encrypt-existing run as jobs in the daemon,
// started by a POST and polled by id, as a scrub is.
//
// Users and access keys (users.go: `sealfs user|accesskey ...`) are managed
// here too: only the admin's credentials reach this API, never a user's.
//
// It is served on the S3 listeners, under Prefix, and every request is
// authenticated like an S3 request: Signature Version 4 with the daemon's
// credentials (service "s3", any region); anonymous requests are refused
// with 403, and so are requests over the plain-HTTP listener (bodies carry
// secrets). Bodies are JSON both ways; an error is
//
//	{"error": {"code": "NoSuchTarget", "message": "no such replication target: \"eu-west-1\""}}
//
// with the HTTP status that fits (400, 403, 404, 409, 500).
//
// Adding a route is one line in New (or storeRoutes): a method and a path
// under Prefix, and a function from the request and its decoded JSON body
// to the answer (adminJSON).
package admin
