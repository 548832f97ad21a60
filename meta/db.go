package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure Open.
type Options struct {
	Logger     *slog.Logger  // nil → discard
	GCInterval time.Duration // Badger: value-log GC period; 0 → 5 min

	// ObserveCommit, if set, is told how long each phase of every try of
	// an Update or UpdateBulk took (see CommitPhase), as the phase ends.
	// It is called from the committing goroutine and must be quick.
	ObserveCommit func(CommitPhase, time.Duration)

	// syncWrites makes Badger sync every commit itself instead of the group
	// commit syncer (for the comparison benchmark).
	syncWrites bool
	// statfs replaces the free-space probe (tests, Badger).
	statfs func(dir string) (uint64, error)
}

// CommitPhase names a part of a write transaction's time, for
// Options.ObserveCommit.
type CommitPhase int

const (
	// PhaseBegin: starting the engine's transaction. Badger waits there
	// until every commit before it is readable, so it also takes the
	// time of another commit still being applied (which may be waiting
	// for a memtable to be flushed); PostgreSQL takes a pooled
	// connection and sends BEGIN; etcd sends nothing until the body
	// reads.
	PhaseBegin CommitPhase = iota
	// PhaseBody: the transaction's reads and writes (the caller's
	// function, and the engine's round trips for them).
	PhaseBody
	// PhaseCommit: the engine's commit. Badger: applying the writes to
	// its write-ahead log and memtable, not syncing them; PostgreSQL and
	// etcd: the commit's round trip, durable when it returns.
	PhaseCommit
	// PhaseSync: waiting until the commit is durable (Badger's group
	// commit; nothing on the other engines, and nothing for a commit
	// under WithoutSync).
	PhaseSync
	numCommitPhases
)

// String names the phase as the daemon's metrics label it.
func (p CommitPhase) String() string {
	switch p {
	case PhaseBegin:
		return "begin"
	case PhaseBody:
		return "body"
	case PhaseCommit:
		return "commit"
	case PhaseSync:
		return "sync"
	}
	return fmt.Sprintf("CommitPhase(%d)", int(p))
}

// CommitPhases lists the phases in order.
func CommitPhases() []CommitPhase {
	return []CommitPhase{PhaseBegin, PhaseBody, PhaseCommit, PhaseSync}
}

// phase reports the phase that started at start to the observer, if any,
// and returns the time it ended (the next phase's start).
func (db *DB) phase(p CommitPhase, start time.Time) time.Time {
	if db.observe == nil {
		return start
	}
	now := time.Now()
	db.observe(p, now.Sub(start))
	return now
}

// phaseStart returns the time a phase starts; the zero time when nobody
// observes phases.
func (db *DB) phaseStart() time.Time {
	if db.observe == nil {
		return time.Time{}
	}
	return time.Now()
}

// maxAttempts bounds how often a transaction is tried when it conflicts,
// and maxBackoff the pause between two tries (drawn at random, doubling),
// on Badger, whose commits take microseconds.
const (
	maxAttempts = 16
	maxBackoff  = 6400 * time.Microsecond
)

// retryTuner is implemented by engines whose commits take a network round
// trip (milliseconds): many writers of one hot key need more tries, spread
// over a longer time, before each has had its turn.
type retryTuner interface {
	retryPolicy() (attempts int, maxBackoff time.Duration)
}

// DB is the metadata store. It is safe for concurrent use.
type DB struct {
	kv kvEngine
	// fences: the engine needs keys.go's write fences (it detects conflicts
	// on keys read, not on ranges scanned).
	fences bool
	log    *slog.Logger

	// auth seals and checks records (recordauth.go); nil until
	// SetRecordAuth.
	auth atomic.Pointer[recordAuth]

	closeOnce sync.Once
	closeErr  error

	buckets bucketCache // GetBucket's (bucketcache.go)

	observe func(CommitPhase, time.Duration) // Options.ObserveCommit
}

// Open opens the metadata store named by url (see doc.go, "Engines"):
//
//	badger://DIR                      an embedded Badger store in DIR
//	DIR                               the same (a plain path)
//	postgres://user@host:port/db?...  a PostgreSQL database
//
// Other engines register their own schemes (Engines lists them).
func Open(url string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		opts.Logger = log
	}
	kv, err := openEngine(url, opts)
	if err != nil {
		return nil, err
	}
	rc, ok := kv.(rangeConflicter)
	return &DB{kv: kv, log: log, fences: !ok || !rc.detectsRangeConflicts(), observe: opts.ObserveCommit}, nil
}

// ReadOnly reports whether the store is open read-only because the disk
// was full when it opened (Badger; it turns read-write by itself when space
// returns). Other engines are never read-only.
func (db *DB) ReadOnly() bool { return db.kv.readOnly() }

// CheckSpace returns an error wrapping ErrNoSpace when the disk holding
// the store has less than the reserve free, or the store is read-only
// because of that. Writers of other files on the same disk (blobs, spool
// files) call it before they write, so that they never eat the space
// Badger needs. After a failed sync it returns that failure
// (ErrSyncFailed): nothing written would be committed anyway. Engines that
// keep no local files (PostgreSQL, etcd) return nil.
func (db *DB) CheckSpace() error { return db.kv.checkSpace() }

type useReserveKey struct{}

// UseReserve marks ctx so that Update and UpdateBulk under it go ahead
// while the disk holds at least half the reserve, instead of all of it:
// for commits that free space (deleting objects, aborting uploads), so a
// full disk can be emptied through the store.
func UseReserve(ctx context.Context) context.Context {
	return context.WithValue(ctx, useReserveKey{}, true)
}

func usesReserve(ctx context.Context) bool {
	v, _ := ctx.Value(useReserveKey{}).(bool)
	return v
}

// Close closes the engine (for Badger: stops the value-log GC goroutine,
// waits for it, and closes Badger). Transactions must have ended. Calling
// Close again returns the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.kv.close() })
	return db.closeErr
}

// Update runs fn in a read-write transaction and commits it. When the
// transaction conflicts with another one (an error wrapping ErrConflict,
// from the commit or, on engines that detect conflicts early, from an
// operation inside fn) fn runs again in a fresh transaction, up to 16 times
// in all with a short jittered pause between tries, stopping early when ctx
// ends: fn must have no effect outside tx. When Update returns nil the
// commit is durable. An error other than a conflict is returned as it is;
// when it comes from the commit the transaction may or may not have
// committed (a connection lost during the commit), and Update does not try
// again. Before fn runs, Update refuses with an error wrapping
// ErrSyncFailed once a sync has failed, and with one wrapping ErrNoSpace
// below the free-space reserve (Badger, space.go).
func (db *DB) Update(ctx context.Context, fn func(tx *Txn) error) error {
	if err := db.kv.writable(ctx); err != nil {
		return err
	}
	var wroteBuckets bool
	err := db.retry(ctx, func() error {
		t := db.phaseStart()
		ktx, err := db.kv.begin(ctx, true)
		t = db.phase(PhaseBegin, t)
		if err != nil {
			return err
		}
		defer ktx.discard()
		tx := &Txn{kv: ktx, auth: db.auth.Load(), fences: db.fences}
		err = fn(tx)
		t = db.phase(PhaseBody, t)
		wroteBuckets = wroteBuckets || tx.wroteBuckets
		if err != nil {
			return err
		}
		err = ktx.commit()
		db.phase(PhaseCommit, t)
		return err
	})
	if wroteBuckets {
		// Whether or not the commit went in (a failed sync may follow a
		// commit that did): GetBucket reads the records again.
		db.buckets.changed()
	}
	if err != nil {
		return err
	}
	if deferred(ctx) {
		return nil
	}
	t := db.phaseStart()
	err = db.durable()
	db.phase(PhaseSync, t)
	return err
}

type withoutSyncKey struct{}

// WithoutSync marks ctx so that Update and UpdateBulk return once their
// commit is visible, without waiting for it to reach the disk: a crash may
// then lose it (whole, never half). Sync makes every such commit durable.
// The mount uses it for what POSIX makes durable only on fsync. On engines
// whose every commit is durable when it returns (PostgreSQL, etcd) it
// changes nothing.
func WithoutSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, withoutSyncKey{}, true)
}

func deferred(ctx context.Context) bool {
	v, _ := ctx.Value(withoutSyncKey{}).(bool)
	return v
}

// Sync makes every commit made so far durable (on Badger it shares a sync
// with concurrent committers). Once a sync has failed, Sync fails too, with
// an error wrapping ErrSyncFailed, until the store is opened again.
func (db *DB) Sync() error { return db.kv.sync() }

// View runs fn in a read-only transaction on one consistent snapshot.
// Writes in it fail with an error wrapping ErrReadOnlyTxn.
func (db *DB) View(ctx context.Context, fn func(tx *Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ktx, err := db.kv.begin(ctx, false)
	if err != nil {
		return err
	}
	defer ktx.discard()
	return fn(&Txn{kv: ktx, auth: db.auth.Load(), fences: db.fences})
}

// UpdateBulk applies fn(tx, i) for every i in [0, n), as many items per
// transaction as fit: when item i makes the transaction too big (an error
// wrapping ErrTxnTooBig), the transaction is dropped, items [start, i) are
// applied again in a fresh one and committed, and the next transaction
// starts at item i. An item too big for a transaction of its own is an
// error. Each item is atomic, the whole is not: on error, the items of the
// transactions already committed stay. Conflicts are retried as in Update,
// so fn must have no effect outside tx. When UpdateBulk returns nil every
// item is durable.
func (db *DB) UpdateBulk(ctx context.Context, n int, fn func(tx *Txn, i int) error) error {
	for start := 0; start < n; {
		end := n
		if err := db.kv.writable(ctx); err != nil {
			return err
		}
		err := db.retry(ctx, func() error {
			for {
				t := db.phaseStart()
				ktx, err := db.kv.begin(ctx, true)
				t = db.phase(PhaseBegin, t)
				if err != nil {
					return err
				}
				tx := &Txn{kv: ktx, auth: db.auth.Load(), fences: db.fences}
				defer func() {
					if tx.wroteBuckets {
						db.buckets.changed()
					}
				}()
				i := start
				for ; i < end; i++ {
					if (i-start)%256 == 255 {
						if err = ctx.Err(); err != nil {
							break
						}
					}
					if err = fn(tx, i); err != nil {
						break
					}
				}
				t = db.phase(PhaseBody, t)
				if err == nil {
					err = ktx.commit()
					db.phase(PhaseCommit, t)
					ktx.discard()
					return err
				}
				ktx.discard()
				if !errors.Is(err, ErrTxnTooBig) {
					return err
				}
				if i == start {
					return fmt.Errorf("meta: bulk item %d does not fit in a transaction of its own: %w", i, err)
				}
				end = i // apply [start, i) again, alone
			}
		})
		if err != nil {
			return err
		}
		start = end
	}
	if n <= 0 || deferred(ctx) {
		return nil
	}
	t := db.phaseStart()
	err := db.durable()
	db.phase(PhaseSync, t)
	return err
}

// ForEachBlobRef calls fn with the id of every blob an object or an
// uploaded part refers to, reading one consistent snapshot. A blob shared by
// several records may be reported more than once. fn's error stops the walk
// and is returned.
func (db *DB) ForEachBlobRef(ctx context.Context, fn func(BlobID) error) error {
	return db.View(ctx, func(tx *Txn) error {
		report := func(id BlobID) error {
			if id == (BlobID{}) {
				return nil
			}
			return fn(id)
		}
		n := 0
		err := tx.scan(objectsPrefix(), nil, func(k, v []byte) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			err := objectRecordBlobs(v, report)
			if errors.Is(err, ErrCorruptRecord) {
				b, key, _ := parseObjectKey(k)
				err = fmt.Errorf("object %s/%s: %w", b, key, err)
			}
			return err == nil, err
		})
		if err != nil {
			return err
		}
		return tx.scan(allPartsPrefix(), nil, func(k, v []byte) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			var p Part
			if err := decodePart(v, &p); err != nil {
				id, num, _ := parsePartKey(k)
				return false, fmt.Errorf("upload %s part %d: %w", id, num, err)
			}
			if err := report(p.Blob.ID); err != nil {
				return false, err
			}
			return true, nil
		})
	})
}

// retry runs try until it succeeds, fails other than by a conflict (an
// error wrapping ErrConflict), has conflicted maxAttempts times, or ctx
// ends.
func (db *DB) retry(ctx context.Context, try func() error) error {
	attempts, ceiling := maxAttempts, maxBackoff
	if rt, ok := db.kv.(retryTuner); ok {
		attempts, ceiling = rt.retryPolicy()
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := try()
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt == attempts {
			return fmt.Errorf("meta: transaction conflicted %d times: %w", attempt, err)
		}
		// 50 µs doubling up to the ceiling, each pause drawn from [d/2, d).
		d := min(50*time.Microsecond<<min(attempt, 20), ceiling)
		t := time.NewTimer(d/2 + rand.N(d/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// durable returns once everything committed before the call is durable.
func (db *DB) durable() error {
	if err := db.kv.sync(); err != nil {
		return fmt.Errorf("meta: committed, but not durable: %w", err)
	}
	return nil
}
