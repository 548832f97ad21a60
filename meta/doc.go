// Package meta is sealfs's metadata store: the records of buckets, objects,
// multipart uploads and their parts, kept in an embedded Badger database.
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
//     seeking past common prefixes so a page costs O(page) reads.
//   - The replication queue (queue.go): durable FIFO work items, at most
//     one per key, written in the caller's transaction, numbered by a
//     Sequence; and configuration records (config.go): named opaque values.
//     What an item or a record means is its owner's business.
//   - Record authentication (recordauth.go): once the caller hands it a
//     RecordMAC (SetRecordAuth), every bucket, object, upload and part
//     record is written with a MAC over its key and bytes, and every read
//     checks it (ErrRecordTampered). meta asks for MACs; it never holds the
//     key. SealRecords seals the records of a store written before.
//   - Badger's upkeep: its tuning for a small daemon, its log routed to the
//     slog logger, and the value-log garbage collector.
//   - Durability failures (db.go): the first failed sync is permanent;
//     every later write, commit and Sync fails with ErrSyncFailed until
//     restart, reads go on.
//   - The free-space reserve (space.go): Badger maps sparse files and dies
//     of SIGBUS when the disk runs out under them, so writes are refused
//     with ErrNoSpace below Reserve bytes free (CheckSpace lets the blob
//     and spool writers keep it too; UseReserve lets deletions use half of
//     it); on a full disk the store opens read-only and turns read-write
//     by itself when space returns.
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
// effect outside the transaction. Badger detects conflicts on the keys a
// transaction read; see keys.go for the write fences that extend that to
// "the bucket became non-empty" and "the upload gained a part".
package meta
