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
	valueLogFileSize = 64 << 20 // smaller files: less mapped, finer GC
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
	bdb *badger.DB
	dir string
	log *slog.Logger

	groupCommit bool
	syncer      syncer

	gcStop    chan struct{}
	gcDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the metadata store in dir.
func Open(dir string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := opts.GCInterval
	if interval <= 0 {
		interval = defaultGCInterval
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
	bdb, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	db := &DB{
		bdb:         bdb,
		dir:         dir,
		log:         log,
		groupCommit: !opts.syncWrites,
		gcStop:      make(chan struct{}),
		gcDone:      make(chan struct{}),
	}
	db.syncer.fn = db.syncAll
	go db.gcLoop(interval)
	return db, nil
}

// Close stops the value-log GC goroutine, waits for it, and closes Badger.
// Transactions must have ended. Calling Close again returns the first
// result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		close(db.gcStop)
		<-db.gcDone
		if err := db.bdb.Close(); err != nil {
			db.closeErr = fmt.Errorf("meta: close: %w", err)
		}
	})
	return db.closeErr
}

// Update runs fn in a read-write transaction and commits it. When the commit
// conflicts with another transaction (badger.ErrConflict) fn runs again on a
// fresh snapshot, up to 16 times in all with a short jittered pause between
// tries, stopping early when ctx ends: fn must have no effect outside tx.
// When Update returns nil the commit is on disk.
func (db *DB) Update(ctx context.Context, fn func(tx *Txn) error) error {
	if err := db.retry(ctx, func() (bool, error) {
		btx := db.bdb.NewTransaction(true)
		defer btx.Discard()
		if err := fn(&Txn{btx: btx}); err != nil {
			return false, err
		}
		return commit(btx)
	}); err != nil {
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
// concurrent committers).
func (db *DB) Sync() error {
	if !db.groupCommit {
		return db.bdb.Sync()
	}
	return db.durable()
}

// View runs fn in a read-only transaction on one consistent snapshot.
func (db *DB) View(ctx context.Context, fn func(tx *Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	btx := db.bdb.NewTransaction(false)
	defer btx.Discard()
	return fn(&Txn{btx: btx})
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
		err := db.retry(ctx, func() (bool, error) {
			for {
				btx := db.bdb.NewTransaction(true)
				tx := &Txn{btx: btx}
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
		return fmt.Errorf("meta: committed, but sync failed: %w", err)
	}
	return nil
}

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
	err := db.bdb.Sync()
	if werr := db.syncOlderWALs(); err == nil {
		err = werr
	}
	return err
}

// walSuffix is the extension of Badger's memtable write-ahead logs
// ("%05d.mem", memtable.go).
const walSuffix = ".mem"

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
	if len(fids) < 2 {
		return nil
	}
	slices.Sort(fids)
	for _, fid := range fids[:len(fids)-1] {
		f, err := os.Open(filepath.Join(db.dir, fmt.Sprintf("%05d%s", fid, walSuffix)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncer is a group commit: each waiter needs a sync that started after it
// arrived; one of them (the leader) runs it while the others wait, and every
// waiter that arrived before it started shares it.
type syncer struct {
	fn func() error

	mu      sync.Mutex
	cond    *sync.Cond // on mu, lazily made
	running bool
	waiting int    // waiters blocked on cond
	started uint64 // syncs started
	done    uint64 // number of the last sync finished
	err     error  // its result
}

func (s *syncer) wait() error {
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
		s.mu.Lock()
		s.running = false
		s.done, s.err = n, err
		s.cond.Broadcast()
	}
	// The last finished sync started after we arrived: its result is ours.
	return s.err
}

// gcLoop runs value-log GC every interval until Close.
func (db *DB) gcLoop(interval time.Duration) {
	defer close(db.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.gcStop:
			return
		case <-t.C:
		}
		for {
			select {
			case <-db.gcStop:
				return
			default:
			}
			err := db.bdb.RunValueLogGC(gcDiscardRatio)
			if err == nil {
				continue // a file was rewritten: try the next one
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				db.log.Warn("meta: value log gc", "err", err)
			}
			break
		}
	}
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
