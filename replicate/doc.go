// Package replicate is sealfs's cross-region replication: objects committed
// in a source bucket are copied, asynchronously, to a bucket on another
// sealfs daemon (another region) over HTTPS with Signature Version 4.
//
// # What it owns
//
//   - Rules: a bucket's replication configuration (rules.go): resolving
//     the destinations rules name and checking them against the registered
//     targets; kept in the bucket record as versioned JSON. The types are
//     the store's (cryptostore.ReplicationConfig), so that front doors hand
//     rules over without importing this package; S3's XML form is the s3
//     package's, and a refused rule is a plain error with a kind
//     (*cryptostore.ReplicationRuleError), never an S3 error.
//   - Targets: the remote daemons, one per region (targets.go), registered
//     with an endpoint, an access key and a secret key that is stored only
//     sealed by the KMS, under a master key kept for system secrets.
//   - The queue: the commit hook (hook.go) runs inside every object commit
//     transaction of the store and queues the work in that same transaction
//     (meta's queue), setting the new version's status to PENDING. An
//     acknowledged write therefore cannot miss replication, crash or not.
//   - The workers (worker.go): a pool that takes queued items in order,
//     reads the current source version through the store (decrypted), sends
//     it to the target with its content headers, user metadata and POSIX
//     attributes, and marks the source COMPLETED, or FAILED on a permanent
//     error or once retries are exhausted. Transient errors are retried with
//     capped exponential backoff, per item and per target.
//   - The target side is not here: the headers a replica carries are
//     package s3replica's (shared by this sender and the s3 receiver), and
//     the condition under which a target stores it, so that a replica
//     older than what the target holds is never stored over it, is the
//     store's (cryptostore.Replica).
//   - Resync (resync.go) and the status figures (stats.go).
//
// # Wire form
//
// A replica is an ordinary S3 PutObject (or DeleteObject) on the target
// bucket, signed with the target's credentials, carrying two headers (both
// signed; a target honours them only from an authenticated request that
// signed them):
//
//	x-sealfs-replica-source-mtime   the source version's LastModified (a
//	                                delete: the deletion time), RFC 3339
//	                                with nanoseconds, UTC
//	x-sealfs-replica-source-region  the source daemon's region
//
// The target commits it through the one write path (cryptostore.Put), so
// the target bucket's own default-encryption setting alone decides whether
// the replica is encrypted. The replica's status is REPLICA and it records
// the source time (cryptostore.Object.ReplicaSourceModified). A replica whose
// source time is older than the version the target holds is not stored:
// the target answers 200 with x-sealfs-replica-skipped: stale, and the
// source counts it as done. Deletes are applied only to an older version.
//
// # Destination ARNs
//
// A rule's Destination Bucket names the target region and bucket as
//
//	arn:aws:s3:REGION::BUCKET
//
// (any partition is accepted in place of "aws"). AWS's own form
// arn:aws:s3:::BUCKET, or a bare bucket name, is accepted when exactly one
// target is registered, and then means that target. GetBucketReplication
// always answers with the REGION form.
//
// # Layering
//
// The package reaches objects through cryptostore and speaks to other
// regions with the AWS SDK, adding the replica headers of package
// s3replica; it neither parses S3 XML nor makes S3 errors. It imports
// neither meta nor kms (internal/archtest holds it to that): its durable
// state — the queue, its sequence, the target records and the leases of a
// shared store — and the sealing of target secrets under the system key
// are reached through one cryptostore.ReplicationQueue (Config.Queue). The
// commit hook gets a cryptostore.CommitQueue, the commit's transaction
// narrowed to Enqueue; the workers read and settle items in
// cryptostore.QueueTxn transactions, which reach the queue, the leases and
// a bucket's record and nothing else.
//
// # What it must never do
//
// Write objects except through cryptostore (Put on the target;
// SetReplicationStatus and DeleteReplica for status and replica deletes);
// store or log a target's secret key in clear; replicate a replica (status
// REPLICA is never queued, so two-way rules do not loop); mark an object
// COMPLETED unless the version sent is still the current one.
package replicate
