package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Options configure Open.
type Options struct {
	Logger     *slog.Logger  // nil → discard
	GCInterval time.Duration // value-log GC period; 0 → 5 min

	// syncWrites makes Badger sync every commit itself instead of the group
	// commit syncer (for the comparison benchmark).
	syncWrites bool
	// statfs replaces the free-space probe (tests).
	statfs func(dir string) (uint64, error)
}

// Badger tuning for a daemon whose whole RSS stays under 256 MiB. Worst case
// for Badger itself: 4 memtables (the active one and NumMemtables waiting to
// be flushed) of ~21 MiB arena each (MemTableSize plus room for one batch),
// plus the block and index caches: ~130 MiB, leaving the rest to the daemon.
const (
	memTableSize     = 16 << 20
	numMemtables     = 3
	blockCacheSize   = 32 << 20
	indexCacheSize   = 16 << 20
	valueLogFileSize = 16 << 20 // smaller files: less mapped, a smaller reserve (space.go), finer GC
	numCompactors    = 2        // Badger's minimum; the machine has 2 cores
	// valueThreshold keeps object, upload and part records (well under 4 KiB)
	// in the LSM tree, so listing never touches the value log; inline data
	// above it goes to the value log.
	valueThreshold = 4 << 10
)

const (
	defaultGCInterval = 5 * time.Minute
	gcDiscardRatio    = 0.5
	// maxAttempts bounds how often a transaction is tried when it conflicts.
	maxAttempts = 16
)

// DB is the metadata store. It is safe for concurrent use.
type DB struct {
	dir string
	log *slog.Logger
	bo  badger.Options // to open Badger again read-write

	// mu guards bdb against being swapped while in use: everything that
	// uses bdb holds mu for reading; reopening read-write (the only swap)
	// takes it for writing.
	mu  sync.RWMutex
	bdb *badger.DB
	// readOnly is set while Badger is open read-only (the disk was full at
	// Open); gen counts the opens, so a Sequence knows when to start over.
	readOnly atomic.Bool
	gen      uint64

	space *space
	// reopenAfter delays the next attempt to reopen read-write after one
	// failed (used by the gcLoop goroutine alone).
	reopenAfter time.Time

	groupCommit bool
	syncer      syncer
	// walFiles are descriptors of Badger's write-ahead logs, opened by the
	// syncer and kept open so that an fsync through them reports every
	// writeback error since their open (see syncOlderWALs). Only the
	// running sync uses them.
	walFiles map[int]*os.File

	// auth seals and checks records (recordauth.go); nil until
	// SetRecordAuth.
	auth atomic.Pointer[recordAuth]

	gcStop    chan struct{}
	gcDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the metadata store in dir.
//
// When the disk holding dir has less than the reserve free (see
// space.go), Badger is opened read-only, writes are refused with
// ErrNoSpace, and the store turns read-write by itself once space returns.
func Open(dir string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := opts.GCInterval
	if interval <= 0 {
		interval = defaultGCInterval
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log: log}).
		WithSyncWrites(opts.syncWrites).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithBlockCacheSize(blockCacheSize).
		WithIndexCacheSize(indexCacheSize).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(numCompactors).
		WithMetricsEnabled(false)
	db := &DB{
		dir:         dir,
		log:         log,
		bo:          bo,
		space:       newSpace(dir, log),
		groupCommit: !opts.syncWrites,
		walFiles:    make(map[int]*os.File),
		gcStop:      make(chan struct{}),
		gcDone:      make(chan struct{}),
	}
	if opts.statfs != nil {
		db.space.statfs = opts.statfs
	}
	if err := db.open(); err != nil {
		return nil, err
	}
	db.syncer.fn = db.syncAll
	go db.gcLoop(interval)
	return db, nil
}

// open opens Badger: read-write when the reserve is free, else read-only
// if Badger can, else read-write with writes refused if there is room to
// recover, else not at all.
func (db *DB) open() error {
	free, serr := db.space.statfs(db.dir)
	if serr != nil || free >= db.space.reserve || emptyStore(db.dir) && free >= recoveryNeed(db.dir) {
		bdb, err := badger.Open(db.bo)
		if err != nil {
			return fmt.Errorf("meta: open %s: %w", db.dir, err)
		}
		db.bdb = bdb
		if serr == nil && free < db.space.reserve {
			db.space.full.Store(true)
			db.log.Warn("meta: the data disk is full: writes are refused until space is freed; reads are served",
				"dir", db.dir, "free_mib", free>>20, "reserve_mib", db.space.reserve>>20)
		}
		return nil
	}
	bdb, err := badger.Open(db.bo.WithReadOnly(true))
	if err == nil {
		db.bdb = bdb
		db.readOnly.Store(true)
		db.space.full.Store(true)
		db.log.Warn("meta: the data disk is full: the metadata store is open read-only; reads are served, writes are refused until space is freed",
			"dir", db.dir, "free_mib", free>>20, "reserve_mib", db.space.reserve>>20)
		return nil
	}
	need := recoveryNeed(db.dir)
	if free < need {
		return fmt.Errorf("meta: open %s: the data disk is full (%d MiB free), Badger cannot open the store read-only (%v: it was not closed cleanly), and opening it read-write needs about %d MiB free: %w",
			db.dir, free>>20, err, need>>20, ErrNoSpace)
	}
	bdb, err = badger.Open(db.bo)
	if err != nil {
		return fmt.Errorf("meta: open %s: %w", db.dir, err)
	}
	db.bdb = bdb
	db.space.full.Store(true)
	db.log.Warn("meta: the data disk is full: the metadata store was recovered read-write, but writes are refused until space is freed; reads are served",
		"dir", db.dir, "free_mib", free>>20, "reserve_mib", db.space.reserve>>20)
	return nil
}

// errNotOpen: Badger could be opened neither read-write nor read-only
// again after space returned (see reopenWritable).
var errNotOpen = errors.New("meta: the store could not be reopened after space returned; restart the daemon")

// ReadOnly reports whether the store is open read-only because the disk
// was full when it opened (it turns read-write by itself when space
// returns).
func (db *DB) ReadOnly() bool { return db.readOnly.Load() }

// reopenWritable swaps a read-only Badger for a read-write one once the
// reserve is free. It waits for no one: when transactions are running it
// tries again later.
func (db *DB) reopenWritable() {
	if !db.readOnly.Load() || time.Now().Before(db.reopenAfter) {
		return
	}
	free, err := db.space.statfs(db.dir)
	if err != nil || free < db.space.reserve {
		return
	}
	locked := false
	for range 100 {
		if locked = db.mu.TryLock(); locked {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !locked {
		return
	}
	defer db.mu.Unlock()
	if db.bdb != nil {
		if err := db.bdb.Close(); err != nil {
			db.log.Warn("meta: closing the read-only store", "err", err)
		}
	}
	bdb, err := badger.Open(db.bo)
	if err != nil {
		// Leave a usable store behind: read-only again, and try again
		// in a minute.
		db.reopenAfter = time.Now().Add(time.Minute)
		db.log.Error("meta: opening the store read-write failed; staying read-only, trying again in a minute", "err", err)
		if bdb, err = badger.Open(db.bo.WithReadOnly(true)); err != nil {
			// Nothing to serve from: reads fail (writes are refused
			// already, the store being read-only) until a reopen works.
			db.log.Error("meta: reopening the store read-only failed; reads fail until it can be reopened", "err", err)
			db.bdb = nil
			return
		}
		db.bdb = bdb
		db.gen++
		return
	}
	db.bdb = bdb
	db.gen++
	db.readOnly.Store(false)
	db.space.full.Store(false)
	db.log.Info("meta: free space is back on the data disk: the metadata store is read-write again; writes are accepted",
		"dir", db.dir, "free_mib", free>>20)
}

// writable returns nil when a commit may go ahead: no sync has failed, the
// store is read-write, and the disk has the reserve free (half of it for
// commits marked UseReserve).
func (db *DB) writable(ctx context.Context) error {
	if err := db.syncer.failure(); err != nil {
		return err
	}
	if db.readOnly.Load() {
		return fmt.Errorf("meta: the data disk was full when the store opened, and is still (the store is read-only until %d MiB are free): %w",
			db.space.reserve>>20, ErrNoSpace)
	}
	floor := db.space.reserve
	if usesReserve(ctx) {
		floor /= 2
	}
	return db.space.check(floor)
}

// CheckSpace returns an error wrapping ErrNoSpace when the disk holding
// the store has less than the reserve free, or the store is read-only
// because of that. Writers of other files on the same disk (blobs, spool
// files) call it before they write, so that they never eat the space
// Badger needs. After a failed sync it returns that failure
// (ErrSyncFailed): nothing written would be committed anyway.
func (db *DB) CheckSpace() error {
	if err := db.syncer.failure(); err != nil {
		return err
	}
	if db.readOnly.Load() {
		return fmt.Errorf("meta: the store is read-only until %d MiB are free on the data disk: %w", db.space.reserve>>20, ErrNoSpace)
	}
	return db.space.check(db.space.reserve)
}

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

// Close stops the value-log GC goroutine, waits for it, and closes Badger.
// Transactions must have ended. Calling Close again returns the first
// result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.gcStop)
		<-db.gcDone
		db.mu.Lock()
		defer db.mu.Unlock()
		if db.bdb == nil {
			db.closeErr = errNotOpen
		} else if err := db.bdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("meta: close: %w", err)
		}
		for fid, f := range db.walFiles {
			f.Close()
			delete(db.walFiles, fid)
		}
	})
	return db.closeErr
}

// Update runs fn in a read-write transaction and commits it. When the commit
// conflicts with another transaction (badger.ErrConflict) fn runs again on a
// fresh snapshot, up to 16 times in all with a short jittered pause between
// tries, stopping early when ctx ends: fn must have no effect outside tx.
// When Update returns nil the commit is on disk. Before fn runs, Update
// refuses with an error wrapping ErrSyncFailed once a sync has failed, and
// with one wrapping ErrNoSpace below the free-space reserve (space.go).
func (db *DB) Update(ctx context.Context, fn func(tx *Txn) error) error {
	if err := db.writable(ctx); err != nil {
		return err
	}
	db.mu.RLock()
	err := db.retry(ctx, func() (bool, error) {
		btx := db.bdb.NewTransaction(true)
		defer btx.Discard()
		if err := fn(&Txn{btx: btx, auth: db.auth.Load()}); err != nil {
			return false, err
		}
		return commit(btx)
	})
	db.mu.RUnlock()
	if err != nil {
		return err
	}
	if deferred(ctx) {
		return nil
	}
	return db.durable()
}

type withoutSyncKey struct{}

// WithoutSync marks ctx so that Update and UpdateBulk return once their
// commit is visible, without waiting for it to reach the disk: a crash may
// then lose it (whole, never half). Sync makes every such commit durable.
// The mount uses it for what POSIX makes durable only on fsync.
func WithoutSync(ctx context.Context) context.Context {
	return context.WithValue(ctx, withoutSyncKey{}, true)
}

func deferred(ctx context.Context) bool {
	v, _ := ctx.Value(withoutSyncKey{}).(bool)
	return v
}

// Sync makes every commit made so far durable (it shares a sync with
// concurrent committers). Once a sync has failed, Sync fails too, with an
// error wrapping ErrSyncFailed, until the store is opened again.
func (db *DB) Sync() error {
	if !db.groupCommit {
		if err := db.syncer.failure(); err != nil {
			return err
		}
		db.mu.RLock()
		err := db.bdb.Sync()
		db.mu.RUnlock()
		if err != nil {
			return db.syncer.fail(err)
		}
		return nil
	}
	return db.durable()
}

// View runs fn in a read-only transaction on one consistent snapshot.
func (db *DB) View(ctx context.Context, fn func(tx *Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.bdb == nil {
		return errNotOpen
	}
	btx := db.bdb.NewTransaction(false)
	defer btx.Discard()
	return fn(&Txn{btx: btx, auth: db.auth.Load()})
}

// UpdateBulk applies fn(tx, i) for every i in [0, n), as many items per
// transaction as fit: when item i makes the transaction too big
// (badger.ErrTxnTooBig), the transaction is dropped, items [start, i) are
// applied again in a fresh one and committed, and the next transaction
// starts at item i. An item too big for a transaction of its own is an
// error. Each item is atomic, the whole is not: on error, the items of the
// transactions already committed stay. Conflicts are retried as in Update,
// so fn must have no effect outside tx. When UpdateBulk returns nil every
// item is on disk.
func (db *DB) UpdateBulk(ctx context.Context, n int, fn func(tx *Txn, i int) error) error {
	for start := 0; start < n; {
		end := n
		if err := db.writable(ctx); err != nil {
			return err
		}
		db.mu.RLock()
		err := db.retry(ctx, func() (bool, error) {
			for {
				btx := db.bdb.NewTransaction(true)
				tx := &Txn{btx: btx, auth: db.auth.Load()}
				i := start
				var err error
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
				if err == nil {
					conflict, err := commit(btx)
					btx.Discard()
					return conflict, err
				}
				btx.Discard()
				if !errors.Is(err, badger.ErrTxnTooBig) {
					return false, err
				}
				if i == start {
					return false, fmt.Errorf("meta: bulk item %d does not fit in a transaction of its own: %w", i, err)
				}
				end = i // apply [start, i) again, alone
			}
		})
		db.mu.RUnlock()
		if err != nil {
			return err
		}
		start = end
	}
	if n <= 0 || deferred(ctx) {
		return nil
	}
	return db.durable()
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
		err := tx.scan(objectsPrefix(), nil, func(it *badger.Item) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			err := it.Value(func(v []byte) error { return objectRecordBlobs(v, report) })
			if errors.Is(err, ErrCorruptRecord) {
				b, k, _ := parseObjectKey(it.Key())
				err = fmt.Errorf("object %s/%s: %w", b, k, err)
			}
			return err == nil, err
		})
		if err != nil {
			return err
		}
		return tx.scan(allPartsPrefix(), nil, func(it *badger.Item) (bool, error) {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			var p Part
			err := it.Value(func(v []byte) error { return decodePart(v, &p) })
			if err != nil {
				id, num, _ := parsePartKey(it.Key())
				return false, fmt.Errorf("upload %s part %d: %w", id, num, err)
			}
			if err := report(p.Blob.ID); err != nil {
				return false, err
			}
			return true, nil
		})
	})
}

// retry runs try until it succeeds, fails other than by a conflict, has
// conflicted maxAttempts times, or ctx ends. try reports whether its error
// is a commit conflict.
func (db *DB) retry(ctx context.Context, try func() (conflict bool, err error)) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		conflict, err := try()
		if !conflict {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("meta: transaction conflicted %d times: %w", attempt, err)
		}
		// 50 µs doubling to at most ~6 ms, each pause drawn from [d/2, d).
		d := 50 * time.Microsecond << min(attempt, 7)
		t := time.NewTimer(d/2 + rand.N(d/2))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// commit commits btx, reporting whether it failed by a conflict.
func commit(btx *badger.Txn) (conflict bool, err error) {
	if err := btx.Commit(); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return true, err
		}
		return false, fmt.Errorf("meta: commit: %w", err)
	}
	return false, nil
}

// durable returns once everything committed before the call is on disk.
func (db *DB) durable() error {
	if !db.groupCommit {
		return nil // Badger synced the commit itself
	}
	if err := db.syncer.wait(); err != nil {
		return fmt.Errorf("meta: committed, but not durable: %w", err)
	}
	return nil
}

// ErrSyncFailed is returned (wrapped, with the failure that caused it) by
// every write, commit and Sync after a sync of the store has failed once.
//
// A failed fsync is not a passing problem: the kernel may have dropped the
// dirty pages it could not write (and marked them clean), so a later sync
// that succeeds says nothing about them. Nothing committed since the last
// good sync is known to be on disk, and only a restart (which replays what
// the disk really holds) makes the store trustworthy again. Reads go on.
var ErrSyncFailed = errors.New("an earlier sync of the metadata store failed; writes are refused until restart")

// fsyncFile syncs a file; a hook for tests.
var fsyncFile = (*os.File).Sync

// syncAll makes every committed write durable.
//
// Badger's DB.Sync (v4.9.6, db.go) msyncs the active memtable's write-ahead
// log and the value-log file being written. Value-log files written before
// are synced when Badger rotates them (logFile.doneWriting truncates the
// file, and z.MmapFile.Truncate msyncs first). A memtable that has been
// rotated out but not yet flushed to a level-0 table, however, is not synced
// by DB.Sync, nor at rotation (ensureRoomForWrite only swaps it): a commit
// that landed in it just before the rotation would be at risk until the
// flush, which syncs the new table. So after DB.Sync, the write-ahead logs of
// those memtables (*.mem files but the newest) are fsynced through a file
// descriptor of our own. A file gone meanwhile was flushed, and is safe.
func (db *DB) syncAll() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.readOnly.Load() {
		return nil // nothing was written
	}
	err := db.bdb.Sync()
	if werr := db.syncOlderWALs(); err == nil {
		err = werr
	}
	return err
}

// walSuffix is the extension of Badger's memtable write-ahead logs
// ("%05d.mem", memtable.go).
const walSuffix = ".mem"

// syncOlderWALs fsyncs the write-ahead logs of the memtables rotated out.
//
// Which descriptor reports a writeback error: since Linux 4.13 an error is
// recorded per file (errseq_t in the inode's mapping), and fsync on a
// descriptor reports every error recorded since that descriptor was opened;
// since 4.17 (commit b4678df184b3, "errseq: Always report a writeback error
// once", backported to stable kernels) an error that no descriptor has
// reported yet is also reported to one opened after it. A
// fresh descriptor per sync would therefore depend on nobody else having
// reported the error first. Instead each log is opened once, the first
// time a sync sees it (the newest one too, though DB.Sync covers it), and
// the descriptor is kept until Badger deletes the file: an fsync through it
// reports every error since that open, and any error before the open that
// nobody has reported. Badger keeps the file open and mapped meanwhile, so
// the inode (and the error recorded in it) stays in memory. Whatever it
// reports makes the failure permanent (syncer.fail).
func (db *DB) syncOlderWALs() error {
	entries, err := os.ReadDir(db.dir)
	if err != nil {
		return err
	}
	var fids []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walSuffix)
		if !ok {
			continue
		}
		fid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		fids = append(fids, fid)
	}
	// Forget the logs Badger deleted (flushed memtables).
	for fid, f := range db.walFiles {
		if !slices.Contains(fids, fid) {
			f.Close()
			delete(db.walFiles, fid)
		}
	}
	slices.Sort(fids)
	for i, fid := range fids {
		f := db.walFiles[fid]
		if f == nil {
			f, err = os.Open(filepath.Join(db.dir, fmt.Sprintf("%05d%s", fid, walSuffix)))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			db.walFiles[fid] = f
		}
		if i == len(fids)-1 {
			break // the active log: DB.Sync msynced it
		}
		if err := fsyncFile(f); err != nil {
			return fmt.Errorf("syncing %s: %w", f.Name(), err)
		}
	}
	return nil
}

// syncer is a group commit: each waiter needs a sync that started after it
// arrived; one of them (the leader) runs it while the others wait, and every
// waiter that arrived before it started shares it.
//
// A failure is permanent: once a sync has failed, every waiter from then on
// gets that failure (wrapped in ErrSyncFailed), whatever later syncs return.
type syncer struct {
	fn func() error

	mu      sync.Mutex
	cond    *sync.Cond // on mu, lazily made
	running bool
	waiting int    // waiters blocked on cond
	started uint64 // syncs started
	done    uint64 // number of the last sync finished
	err     error  // its result
	// failed is set by the first failed sync, and never cleared.
	failed atomic.Pointer[error]
}

// failure returns the permanent error left by a failed sync, or nil.
func (s *syncer) failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records err as the permanent failure (the first one wins) and
// returns the failure.
func (s *syncer) fail(err error) error {
	perm := fmt.Errorf("meta: %w: %w", ErrSyncFailed, err)
	s.failed.CompareAndSwap(nil, &perm)
	return s.failure()
}

func (s *syncer) wait() error {
	if err := s.failure(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
	need := s.started + 1 // the first sync that will start after now
	for s.done < need {
		if s.running {
			s.waiting++
			s.cond.Wait()
			s.waiting--
			continue
		}
		s.running = true
		s.started++
		n := s.started
		s.mu.Unlock()
		err := s.fn()
		if err != nil {
			err = s.fail(err)
		}
		s.mu.Lock()
		s.running = false
		s.done, s.err = n, err
		s.cond.Broadcast()
	}
	// The last finished sync started after we arrived, but an earlier one
	// may have failed: that failure is ours too.
	if err := s.failure(); err != nil {
		return err
	}
	return s.err
}

// gcLoop runs value-log GC every interval until Close, and, while the
// store is read-only, checks every spaceCheckInterval whether space has
// returned.
func (db *DB) gcLoop(interval time.Duration) {
	defer close(db.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	sp := time.NewTicker(spaceCheckInterval)
	defer sp.Stop()
	for {
		select {
		case <-db.gcStop:
			return
		case <-sp.C:
			db.reopenWritable()
			continue
		case <-t.C:
		}
		for db.runGC() {
			select {
			case <-db.gcStop:
				return
			default:
			}
		}
	}
}

// runGC rewrites one value-log file if one is worth it, and reports
// whether it did. GC writes, so it does not run when commits are refused.
func (db *DB) runGC() bool {
	if db.writable(context.Background()) != nil {
		return false
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	err := db.bdb.RunValueLogGC(gcDiscardRatio)
	if err == nil {
		return true // a file was rewritten: try the next one
	}
	if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
		db.log.Warn("meta: value log gc", "err", err)
	}
	return false
}

// badgerLogger passes Badger's warnings and errors to the slog logger and
// drops its info and debug chatter.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(format string, args ...any) {
	l.log.Error(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (l badgerLogger) Warningf(format string, args ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
