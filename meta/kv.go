package meta

// The engine interface: meta's records, key layout (keys.go) and
// transactions are one implementation over an ordered, transactional
// key-value store. An engine only moves bytes; it is one file
// (kv_<name>.go) that registers a constructor for its URL scheme(s) in an
// init function. The contract every engine must keep is written in doc.go
// ("Engines"); in short:
//
//   - Keys are byte strings ordered by unsigned byte-wise comparison
//     (bytes.Compare); values are byte strings (an empty value is a value).
//   - A read-write transaction is serializable at least with respect to
//     the keys it read (get, or seen by an iterator): when another
//     transaction committed a write to one of them after this
//     transaction's snapshot, and committing both would not be
//     serializable, the commit (or an earlier operation) fails with an
//     error wrapping ErrConflict. Badger and etcd fail it whenever such a
//     key was written; PostgreSQL (SERIALIZABLE) only when the outcome
//     would not be serializable, and covers scanned ranges too. The write
//     fences of keys.go make meta correct with key-level checks alone.
//   - A transaction reads its own writes, from get and from iterators.
//   - commit returns nil only once the transaction is committed; an error
//     that leaves the outcome unknown (the connection died during commit)
//     is reported as an error, never as success, and never as ErrConflict
//     (meta retries conflicts, and must not repeat a commit that may have
//     happened).
//   - Durability: see kvEngine.sync.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrConflict is wrapped by the error of a transaction that conflicted with
// another one and was not committed (Update retries those, up to a bound).
var ErrConflict = errors.New("transaction conflict")

// ErrTxnTooBig is wrapped by the error of a write that does not fit in the
// engine's transaction (UpdateBulk splits its work on it).
var ErrTxnTooBig = errors.New("transaction too big")

// ErrReadOnlyTxn is wrapped by the error of a write in a View transaction.
var ErrReadOnlyTxn = errors.New("write in a read-only transaction")

// kvEngine is an ordered transactional key-value store. It is safe for
// concurrent use. Engines that several gateways share also implement
// kvWatcher (watch.go), their change feed.
type kvEngine interface {
	// begin starts a transaction: read-write when write is true, else a
	// read-only one on a consistent snapshot. ctx bounds the
	// transaction's operations (engines that talk to a server use it;
	// Badger ignores it). The transaction must end with discard, after
	// commit or not.
	begin(ctx context.Context, write bool) (kvTxn, error)

	// writable returns nil when a read-write transaction may commit, else
	// why not (Badger: ErrSyncFailed after a failed sync, ErrNoSpace below
	// the free-space reserve, honouring UseReserve(ctx)). Engines without
	// such state return nil.
	writable(ctx context.Context) error
	// sync returns once every transaction committed before the call is
	// durable. Engines whose commit is durable when it returns (PostgreSQL
	// with synchronous_commit on, etcd) return nil at once; Badger runs
	// its group commit here. Update calls it after each commit unless
	// ctx is WithoutSync.
	sync() error
	// checkSpace is DB.CheckSpace: nil unless the engine shares a disk
	// with the gateway's files and that disk is below its reserve.
	checkSpace() error
	// readOnly is DB.ReadOnly.
	readOnly() bool
	// close releases the engine. Transactions must have ended.
	close() error
}

// rangeConflicter is implemented by engines that also detect conflicts on
// the key ranges a transaction scanned (a key inserted into or removed from
// a range another transaction read). meta then neither writes nor reads
// the write fences of keys.go on them.
type rangeConflicter interface {
	detectsRangeConflicts() bool
}

// kvTxn is one transaction of an engine. It is not safe for concurrent use.
// Slices given to set and delete must not be modified afterwards (Badger
// keeps them until the transaction ends); slices it hands out are valid
// only as documented, and must not be modified.
//
// No method takes a callback: meta's hot path calls these through the
// interface, and a function passed to an interface method always escapes
// to the heap (an allocation per call).
type kvTxn interface {
	// get returns the value stored under key and whether there is one.
	// The value is valid until the next call on the transaction or on one
	// of its iterators (Badger copies it into a buffer of the
	// transaction).
	get(key []byte) (value []byte, found bool, err error)
	// set stores value under key. An error wrapping ErrTxnTooBig means
	// the transaction cannot take more writes.
	set(key, value []byte) error
	// delete deletes key (absent keys are not an error).
	delete(key []byte) error
	// deletePrefix deletes every key starting with prefix, as a delete of
	// each would, but as one write: an engine that bounds the writes of a
	// transaction (etcd) counts it once, however many keys it removes.
	// The transaction must not write under prefix afterwards (etcd refuses
	// a put inside a range its request also deletes); a write queued
	// before is deleted with the rest.
	deletePrefix(prefix []byte) error
	// iterate returns an iterator over the keys starting with prefix, in
	// order. keysOnly says the caller will not ask for values, so the
	// engine need not fetch them.
	iterate(prefix []byte, keysOnly bool) kvIterator
	// commit commits a read-write transaction: nil when committed; an
	// error wrapping ErrConflict when it was not because of a conflict;
	// any other error when it failed or its outcome is unknown.
	commit() error
	// discard ends the transaction, rolling it back unless committed. It
	// may be called more than once.
	discard()
}

// kvIterator walks the keys under one prefix in byte order. Use:
//
//	for it.seek(start); it.valid(); it.next() { k := it.key() ... }
//	if err := it.err(); err != nil { ... }
//	it.close()
type kvIterator interface {
	// seek moves to the first key at or after k (k below the prefix means
	// the prefix's first key). It may be called again at any time, to
	// move forward or backward.
	seek(k []byte)
	// valid reports whether the iterator is at a key under the prefix.
	// It is false at the end and after an error.
	valid() bool
	// next moves to the following key.
	next()
	// key returns the current key, valid until the next seek, next or
	// close.
	key() []byte
	// value returns the current key's value (not for a keysOnly
	// iterator), valid until the next seek, next or close.
	value() ([]byte, error)
	// err returns the error that ended the walk, if any: check it after
	// valid turns false.
	err() error
	// close releases the iterator.
	close()
}

// engineOpener opens an engine from its URL (the whole URL, scheme
// included). dataDir-relative defaults are the caller's business: Open
// passes the URL as given.
type engineOpener func(url string, opts Options) (kvEngine, error)

// engines maps a URL scheme to its constructor. Engines register in their
// init functions (registerEngine) and nothing writes it after.
var engines = map[string]engineOpener{}

// registerEngine registers an engine's constructor for a URL scheme.
func registerEngine(scheme string, open engineOpener) {
	if _, dup := engines[scheme]; dup {
		panic("meta: engine registered twice: " + scheme)
	}
	engines[scheme] = open
}

// Engines returns the URL schemes of the engines compiled in, sorted.
func Engines() []string {
	var out []string
	for s := range engines {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// openEngine picks the engine of url: "scheme://…" by its scheme, and a
// plain path (no "://") as a Badger directory.
func openEngine(url string, opts Options) (kvEngine, error) {
	scheme, _, ok := strings.Cut(url, "://")
	if !ok {
		return openBadger(url, opts)
	}
	open := engines[strings.ToLower(scheme)]
	if open == nil {
		return nil, fmt.Errorf("meta: unknown metadata engine %q (have %s)", scheme, strings.Join(Engines(), ", "))
	}
	return open(url, opts)
}

// RedactURL returns url with any password (user:password@, or a
// password= parameter) replaced by "xxxxx", for logs.
func RedactURL(url string) string {
	if i := strings.Index(url, "password="); i >= 0 {
		end := strings.IndexAny(url[i:], "& ")
		rest := ""
		if end >= 0 {
			rest = url[i+end:]
		}
		url = url[:i] + "password=xxxxx" + rest
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	at := strings.LastIndexByte(rest, '@')
	slash := strings.IndexByte(rest, '/')
	if at < 0 || (slash >= 0 && slash < at) {
		return url
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return url
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
