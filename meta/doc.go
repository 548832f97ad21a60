// Package meta is sealfs's metadata store: the records of buckets, objects,
// multipart uploads and their parts, kept in an ordered transactional
// key-value engine: an embedded Badger database (the default), or a
// PostgreSQL or etcd server shared by several gateways.
//
// # What it owns
//
//   - The records (types.go) and their compact, versioned binary encoding
//     (record.go), which decodes strictly and never panics on bad input.
//   - The key layout (keys.go): a table of every key, and the typed builders
//     that are the only code allowed to build keys.
//   - Transactions: Update (conflicts retried, durable on return through a
//     group commit that lets concurrent committers share one disk sync),
//     View, and UpdateBulk for work too big for one transaction.
//   - Listing (list.go) in S3's shape: prefix, delimiter, after, max-keys,
//     seeking past common prefixes so a page costs O(page) reads. List
//     decodes a page's objects; ListRecords copies their records out of
//     the transaction undecoded (RecordPage), for a listing that checks and
//     decodes what it shows (ObjectSummary) while it answers.
//   - The replication queue (queue.go): durable FIFO work items, at most
//     one per key, written in the caller's transaction, numbered by a
//     Sequence; and configuration records (config.go): named opaque values.
//     What an item or a record means is its owner's business.
//   - Record authentication (recordauth.go): once the caller hands it a
//     RecordMAC (SetRecordAuth), every bucket, object, upload and part
//     record is written with a MAC over its key and bytes, and every read
//     checks it (ErrRecordTampered). meta asks for MACs; it never holds the
//     key. SealRecords seals the records of a store written before.
//   - Users and access keys (users.go): authenticated records of who may
//     sign requests, each user's policy document as given, and each access
//     key's secret only as the KMS sealed it (the caller seals and opens).
//   - The coordination of gateways sharing a store (shared.go): doomed
//     blobs, read pins and leases; and the change feed (watch.go,
//     watch_<name>.go): Watch reports the object and bucket records other
//     gateways commit.
//   - The engines (kv.go, kv_<name>.go): the interface every engine
//     implements, the choice of one by URL (Open), and the engines
//     themselves.
//   - Badger's upkeep (kv_badger.go): its tuning for a small daemon, its
//     log routed to the slog logger, and the value-log garbage collector.
//   - Durability failures (Badger, kv_badger.go): the first failed sync is permanent;
//     every later write, commit and Sync fails with ErrSyncFailed until
//     restart, reads go on.
//   - The free-space reserve (Badger, space.go): Badger maps sparse files and dies
//     of SIGBUS when the disk runs out under them, so writes are refused
//     with ErrNoSpace below Reserve bytes free (CheckSpace lets the blob
//     and spool writers keep it too; UseReserve lets deletions use half of
//     it); on a full disk the store opens read-only and turns read-write
//     by itself when space returns.
//   - Purging deleted inline data (purge.go, Badger): PurgeInline drops the
//     bytes of deleted objects' inline data from the engine's logs and
//     tables at once (encrypt-existing's plaintext); shared engines report
//     that they cannot.
//
// # What it must never do
//
//   - Hold object data, except the blob bytes of small objects kept inline
//     (PutInline), which it stores as given: already encrypted when the
//     object is. It never sees a plaintext key or encrypts anything: the
//     wrapped data key in Encryption is opaque bytes to it.
//   - Know about HTTP, S3 wire formats, FUSE or the blob files. The caller
//     (cryptostore, the one write path) decides what a record says; meta
//     stores it, finds it and lists it.
//   - Log record contents.
//
// # Transactions
//
// A Txn is only valid inside the callback that received it. An Update
// callback may run more than once (on a conflict), so it must have no
// effect outside the transaction. Every engine detects conflicts on the
// keys a transaction read; see keys.go for the write fences that extend
// that to "the bucket became non-empty" and "the upload gained a part".
//
// # Engines
//
// Open takes a URL and picks the engine by its scheme:
//
//	badger://DIR (or a plain path)   embedded Badger in DIR: one gateway
//	postgres://user@host:port/db?…   PostgreSQL (the URL goes to pgx as it is;
//	                                 ?search_path=NAME picks a schema)
//	etcd://host1:2379,host2:2379/prefix[?…]  etcd 3.4+, keys under the prefix
//	                                 (options: kv_etcd.go)
//
// meta's key layout (keys.go) and record encoding are one implementation
// over a small interface (kv.go): transactions with get, set, delete and
// an ordered iterator over a prefix that can seek (with a keys-only
// option). An engine is one file that registers a constructor for its URL
// scheme. What an engine must guarantee:
//
//   - Order: keys compare as unsigned bytes (bytes.Compare); an iterator
//     visits the keys under its prefix in that order, from any key it
//     seeks to, forward or back.
//   - Isolation: a read-only transaction reads one consistent snapshot. A
//     read-write transaction reads its own writes, and its commit is
//     serializable at least with respect to the keys it read: when a key
//     it read (by get, or returned by an iterator) was written by a
//     transaction that committed after its snapshot, and committing both
//     would not be serializable, it fails with an error wrapping
//     ErrConflict and nothing of it is applied. Ranges scanned need not be
//     checked: the write fences of keys.go turn every phantom meta cares
//     about into a key read. Badger checks the keys read (optimistically,
//     at commit); etcd compares the revisions of the keys read and of the
//     ranges scanned at commit (kv_etcd.go); PostgreSQL runs SERIALIZABLE,
//     whose predicate locks cover scanned ranges too.
//   - Conflict reporting: ErrConflict (at commit, or at any operation
//     before it) means "not applied, run it again"; Update and UpdateBulk
//     retry it, engine-neutrally, up to 16 times with jittered backoff.
//     An error whose outcome is unknown (the connection died during the
//     commit) must not be ErrConflict and must not be reported as success:
//     Update returns it, and the caller decides.
//   - Durability at commit: when Update returns nil the commit survives a
//     crash of the gateway and of the engine's servers. Badger gets there
//     through the group commit (sync, after the commit; WithoutSync skips
//     it, Sync catches up); PostgreSQL (synchronous_commit on, the default)
//     and etcd (a commit is a raft entry fsynced by a quorum) are durable
//     when commit returns, so Sync and WithoutSync change nothing there.
//   - Size: a write that does not fit in a transaction fails with
//     ErrTxnTooBig, and UpdateBulk splits its work on it (Badger and etcd
//     have limits; PostgreSQL has none that meta reaches).
//
// Badger-only: the disk-space reserve and the read-only mode of a full
// disk (space.go), the permanent sync failure (ErrSyncFailed), the group
// commit and the value-log GC. On the server engines CheckSpace returns
// nil and ReadOnly false.
//
// # What is per gateway and what is shared
//
// With a server engine several gateways open the same store. Shared (in
// the engine, under keys.go's layout): every record (buckets, objects,
// inline data, uploads, parts), the fences, the replication queue and its
// index, configuration records, the sequences' counters (a Sequence
// leases a block of numbers in a transaction, so numbers are unique across
// gateways, increasing within one gateway's Sequence, not across them),
// and the coordination records of shared.go: doomed blobs (replaced blobs
// waiting out their grace period), read pins (a gateway's claim that it
// still reads a blob, with an expiry) and leases (one owner at a time,
// with an expiry: replication takes one per queued key). Per gateway (in
// its process, never relied on by another): the DB handle and its
// connection pool, the change-feed listener, the record-authentication key
// handed to SetRecordAuth, a Sequence's unused lease, and, for Badger, the
// whole store, its group commit and its disk reserve (Badger is one
// gateway: nothing is shared). Nothing in meta caches records between
// transactions on a shared engine, so every read sees every gateway's
// commits. On Badger, DB.GetBucket keeps the bucket records it read until
// a commit writes one (bucketcache.go): every writer is in this process.
//
// # The change feed
//
// Watch (watch.go) reports, after each commit of any gateway, the object
// and bucket keys it wrote: from etcd's Watch on the store's prefix
// (watch_etcd.go), from PostgreSQL's LISTEN/NOTIFY fed by a row trigger on
// the key-value table (watch_postgres.go). The delay is the engine's (a few
// milliseconds on loopback, measured in the tests; the documented bound
// for a gateway's caches is one second). A gap (a lost connection, a
// watch cancelled by compaction) is reported as a reset, after the feed
// is listening again: the subscriber drops everything it caches. Badger
// has no feed (ErrNoWatch; Shared reports false).
//
// Time: pins, doomed blobs and leases compare the gateways' wall clocks;
// their skew must stay well below the grace periods and lease durations.
package meta
