// Package cryptostore is the only code in sealfs that writes or reads object
// data. The front doors — the FUSE mount (package fs), the S3 listener
// (package s3) and the admin API (package admin) — and the replication
// worker call it; none of them touches a blob, a data key or the metadata
// database directly.
//
// # The front doors' contract
//
// A front door imports neither meta nor kms (internal/archtest checks it).
// What it needs to name is named here (frontdoor.go): the records the store
// takes and returns (Object, ObjectMeta, Bucket, ListPage, Upload, ...,
// aliases of meta's: the store hands out decoded values, not access), the
// names of the POSIX metadata keys, ValidKey and ValidBucketName, the
// errors of the layers below; key management (Keys, DescribeKey,
// EnableKey, DisableKey — which refuses the system key — and RotateKey)
// and the key lifecycle: Rewrap and RetireKeyVersion (rewrap.go: data keys
// wrapped again under the current version, no blob touched),
// EncryptExisting (encrypt_existing.go: copy in place under the bucket's
// setting) and ScheduleKeyDeletion/CancelKeyDeletion (shred.go), each
// resumable from a checkpoint record under kms/ in the configuration
// records;
// replica writes (replica.go: Replica, ErrStaleReplica); and a bucket's
// replication rules in a form both the S3 layer and package replicate
// speak (replconfig.go). Package replicate reaches its durable queue,
// leases, target records and sealed target secrets only through
// ReplicationQueue (replqueue.go), and the commit hook enqueues through
// the narrow CommitQueue it is handed. Below the store, meta's engines (Badger, etcd,
// PostgreSQL behind meta's key-value interface) and the blob store are
// chosen by the daemon and never seen by a front door.
//
// # What it owns
//
//   - The blob format (FORMAT.md, blob.go): chunked AES-256-GCM for
//     encrypted objects, chunked CRC32C for plain ones, random access by chunk.
//   - Composed versions (compose.go, FORMAT.md section 12): Compose stages a
//     version made of extents — ranges of the blobs of the version it
//     edits, shared under that version's data key, one new blob for what
//     changed, and holes stored nowhere — with its CRC64NVME derived
//     without reading the shared bytes (crcalgebra.go); the commit removes
//     only the blobs the new version no longer reads.
//   - The one write path: Put streams a body through hashing (CRC64NVME and
//     any requested checksums; the MD5 only for data stored plain, whose
//     ETag it is, or when a client's Content-MD5 must be checked: an
//     encrypted object's ETag is random, see sums.go) and sealing in parallel
//     stages, writes a new blob (into a file made ahead under its final
//     name, blobpool.go → fsync; or temp file → fsync → rename → fsync dir) or,
//     for small objects, keeps the sealed bytes inline in the metadata store,
//     then commits the object record in one metadata transaction. Copy,
//     multipart Complete and replicas arriving from another region go through
//     the same commit. Stage is Put cut in two (staged.go): the data is
//     written and sealed, readable, visible to nobody and kept from the
//     orphan collector until Staged.Commit commits it through that same
//     commit (or Discard drops it); the mount stages a file being written
//     this way so that nothing of it is visible before close.
//   - The encryption decision. An object is encrypted iff its bucket's
//     default encryption is on when the object is committed. The setting is
//     read before the data is written and read again inside the commit
//     transaction; if it changed in between, the staged data is rewritten
//     under the new setting before the commit is tried again. Request headers
//     asking for encryption change nothing.
//   - Blob lifetime: blobs replaced or deleted by a commit are removed once
//     that commit is durable (at once for a synced commit; after the next
//     sync for one made WithoutSync, see durable.go), and not before the
//     last reader lets go of them. From then on they count as gone, and a
//     background goroutine deletes them, so the request that replaced them
//     does not wait. Blobs left behind by a crash are found and removed by
//     the orphan collector, which syncs the metadata after its snapshot and
//     before it removes anything.
//   - Where blobs live: a BlobStore (blobstore.go). The file store
//     (blobfiles.go, the default: DATA/blobs or a shared directory) or an
//     S3 bucket (blobstore_s3.go: PutObject or a streamed multipart
//     upload, ranged GETs of the chunks a read touches, ListObjectsV2 for
//     the orphan collector, which keeps unreferenced blobs younger than
//     Config.BlobGrace). Either holds the same sealed bytes; which blob
//     may go, and when, is decided by the same bookkeeping (blobFiles:
//     in-flight writes, reader pins, removals waiting for a sync) whatever
//     the store.
//   - The mount's staging (Spool): a random-access temporary file sealed
//     under a throwaway key, with a fresh nonce for every chunk write.
//   - Durability: every commit is synced before it returns unless its
//     context is marked WithoutSync (the mount, which syncs on fsync with
//     Sync); a background sync (Config.SyncInterval) makes those durable
//     within its period. Blob data is synced before any record points at it
//     either way. After a failed sync no blob is removed any more. A
//     Delete that finds no key syncs too before it says so: the absence
//     it reports may be an unsynced commit's.
//   - Checking what is stored: Scrub reads objects back and verifies them;
//     Stats counts objects, bytes and the encrypted share.
//   - Users, access keys and the permission to use a key (users.go): users
//     with IAM policies (package iam) and access keys whose secrets are
//     stored sealed under the system key; Principal finds who signed with
//     an access key. A front door serving a user puts a Caller in the
//     context (WithCaller), and every data key issued or unwrapped under it
//     is checked (kms:GenerateDataKey, kms:Decrypt on the bucket key's ARN)
//     and reported to Config.Audit. The front doors check the S3 actions;
//     the store checks the key uses, because only it knows which key a
//     call uses.
//
// # Several gateways
//
// Over a shared metadata engine (meta.DB.Shared: PostgreSQL, etcd) several
// gateways — sealfs processes, each with its own Dir for TLS, credentials,
// spool and temporary files — serve one namespace, with their blobs in one
// shared BlobDir (shared.go has the details). Shared, in the metadata: the
// records, the bucket settings the commit reads (so the encryption decision
// is the committing gateway's, whichever it is), the replication queue and
// its leases, the doomed blobs and the read pins. Per gateway, in memory,
// and made safe for the others as follows:
//
//   - Change events: a gateway's own commits reach its OnChange at once;
//     the others' arrive from the engine's change feed (within a second;
//     milliseconds in practice), and a gap in the feed becomes ChangeAll.
//   - Reader pins (blobFiles.refs) and pending removals: a replaced blob is
//     not removed by the committer but doomed in the metadata with a grace
//     period (Config.SharedGrace); any gateway removes it after that, unless
//     a read pin recorded in the metadata names it. Gateways record pins
//     for the blobs they hold every quarter of the grace period, so a read
//     longer than that is covered before the grace runs out.
//   - Blobs in flight: written to the gateway's own temporary directory and
//     kept young (their mtime refreshed) until committed; a shared store's
//     orphan collector removes only unreferenced blobs older than four grace
//     periods and not doomed.
//   - The group commit and the background sync are Badger's: the server
//     engines' commits are durable when they return.
//   - The mount's inode table (package fs) is per gateway: inode numbers
//     are hashes of bucket and key in each mount, and mean nothing to
//     another gateway.
//
// # Commit order
//
// Data is written to a new blob and synced before the metadata transaction
// that points at it commits; the blob it replaces is removed only once that
// transaction is on disk. A crash or a power cut therefore leaves at worst an
// orphan blob, never a record pointing at a missing or half-written blob.
//
// # Keys
//
// Each encrypted object has its own data key from the KMS, wrapped by its
// bucket's master key and bound to the encryption context {bucket, object id}.
// Every chunk's associated data binds the object id and blob index. The object
// id is immutable: Rename moves the record, not the data, and neither the
// wrapped key nor the chunks change.
//
// # What it must never do
//
// Write plaintext of an encrypted object anywhere on disk; log a data key or
// object content; decide encryption from anything but the bucket's setting at
// commit time.
package cryptostore
