package meta

// The Badger engine (the default): an embedded Badger database in a local
// directory, for one gateway. Everything Badger-specific lives here and in
// space.go: Badger's tuning, its log, the value-log garbage collector, the
// group commit that lets concurrent committers share one disk sync, the
// permanent sync failure, the free-space reserve and the read-only mode of
// a full disk.
//
// Badger's transactions are optimistic: a commit conflicts (ErrConflict)
// when a key the transaction read was written by a transaction that
// committed after its snapshot. Ranges scanned are not checked: the write
// fences of keys.go cover that.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"
)

func init() {
	registerEngine("badger", func(url string, opts Options) (kvEngine, error) {
		dir := url[len("badger://"):]
		if dir == "" {
			return nil, fmt.Errorf("meta: %q: want badger://DIR", url)
		}
		return openBadger(dir, opts)
	})
}

// Badger tuning for a daemon whose whole RSS stays under 256 MiB. Worst case
// for Badger's heap: 4 memtables (the active one and NumMemtables waiting to
// be flushed) of ~21 MiB arena each (MemTableSize plus room for one batch):
// ~85 MiB, leaving the rest to the daemon.
//
// No block cache and no index cache. Tables are neither compressed (see
// openBadger) nor encrypted, so a block is read in place from the table's
// mapping, and Badger keeps every table's index in memory whatever the
// cache's size; the caches only cost each block read a lookup and, on a
// miss, an insertion. Without them GET 4 KiB x16 (make bench-s3) served
// 1.07x as many GETs a second in an A/B run; listings did not move beyond
// noise. Tables that an older sealfs wrote compressed still read,
// decompressed at each read.
const (
	memTableSize     = 16 << 20
	numMemtables     = 3
	blockCacheSize   = 0
	indexCacheSize   = 0
	valueLogFileSize = 16 << 20 // smaller files: less mapped, a smaller reserve (space.go), finer GC
	numCompactors    = 2        // Badger's minimum; the machine has 2 cores
	// valueThreshold keeps every value meta writes (records, and inline
	// object data up to 64 KiB sealed) in the LSM tree, with its key, in
	// one entry of the memtable's write-ahead log. A value above it would
	// go to the value log with only a pointer in the write-ahead log, and
	// the two logs reach the disk in no set order: DB.Sync syncs the
	// write-ahead log first, and the kernel writes the log's mapped pages
	// back when it likes. A power cut in between left a key whose value
	// read back as zero bytes (powercut_test.go). 1 MiB is Badger's most.
	valueThreshold = 1 << 20
)

const (
	defaultGCInterval = 5 * time.Minute
	gcDiscardRatio    = 0.5
)

// badgerKV is the Badger engine.
type badgerKV struct {
	dir string
	log *slog.Logger
	bo  badger.Options // to open Badger again read-write

	// mu guards bdb against being swapped while in use: every transaction
	// holds mu for reading from begin to discard; reopening read-write
	// (the only swap) takes it for writing.
	mu  sync.RWMutex
	bdb *badger.DB
	// ro is set while Badger is open read-only (the disk was full at
	// Open).
	ro atomic.Bool

	space *space
	// reopenAfter delays the next attempt to reopen read-write after one
	// failed (used by the gcLoop goroutine alone).
	reopenAfter time.Time

	groupCommit bool
	syncer      syncer
	// walFiles are descriptors of Badger's write-ahead logs, opened by the
	// syncer and kept open so that a sync through them reports every
	// writeback error since their open (see syncWALs). Only the
	// running sync uses them.
	walFiles map[int]*os.File
	// walSynced are the rotated-out logs synced since their rotation:
	// Badger never writes to a log again once it has rotated it, so one
	// sync makes it durable for good, and later syncs skip it (a sync,
	// even of a file with nothing dirty, can cost a disk cache flush).
	walSynced map[int]bool
	// walFids are the logs' numbers, ascending, as the directory's last
	// listing found them; walDir says when that listing may be reused
	// (listWALs).
	walFids []int
	walDir  walListing
	// vlogUsed is set when Badger may have written its value log since
	// the last sync: a value of valueThreshold bytes or more was set, the
	// value-log GC ran, or the store was (re)opened. Only then does a sync
	// ask Badger's DB.Sync, which msyncs the value log's mapping as well
	// as the active write-ahead log's; otherwise the logs are synced
	// through our own descriptors alone (syncWALs).
	vlogUsed atomic.Bool

	gcStop chan struct{}
	gcDone chan struct{}
}

// openBadger opens (creating if needed) a Badger store in dir.
//
// When the disk holding dir has less than the reserve free (see
// space.go), Badger is opened read-only, writes are refused with
// ErrNoSpace, and the store turns read-write by itself once space returns.
func openBadger(dir string, opts Options) (*badgerKV, error) {
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
		// A value that still goes to the value log (above 1 MiB, or
		// written by an older sealfs) and was lost fails its checksum
		// instead of reading back as other bytes.
		WithVerifyValueChecksum(true).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(numCompactors).
		// No block compression: what sealfs keeps here is mostly
		// ciphertext (small objects' sealed bytes), MACs, wrapped keys
		// and random ids, which Snappy shrank by ~2.5%. Compressing it
		// cost the memtable flushes and compactions CPU and buffers
		// (the compaction's garbage drove the collector under the
		// memory limit), and every block read a decompression. Tables
		// written compressed by an older sealfs still read: Badger
		// records each table's compression in its manifest.
		WithCompression(options.None).
		WithMetricsEnabled(false)
	kv := &badgerKV{
		dir:         dir,
		log:         log,
		bo:          bo,
		space:       newSpace(dir, log),
		groupCommit: !opts.syncWrites,
		walFiles:    make(map[int]*os.File),
		walSynced:   make(map[int]bool),
		gcStop:      make(chan struct{}),
		gcDone:      make(chan struct{}),
	}
	if opts.statfs != nil {
		kv.space.statfs = opts.statfs
	}
	if err := kv.open(); err != nil {
		return nil, err
	}
	kv.syncer.fn = kv.syncAll
	go kv.gcLoop(interval)
	return kv, nil
}

// open opens Badger: read-write when the reserve is free, else read-only
// if Badger can, else read-write with writes refused if there is room to
// recover, else not at all.
func (kv *badgerKV) open() error {
	free, serr := kv.space.statfs(kv.dir)
	if serr != nil || free >= kv.space.reserve || emptyStore(kv.dir) && free >= recoveryNeed(kv.dir) {
		bdb, err := kv.openDB(kv.bo)
		if err != nil {
			return fmt.Errorf("meta: open %s: %w", kv.dir, err)
		}
		kv.bdb = bdb
		if serr == nil && free < kv.space.reserve {
			kv.space.full.Store(true)
			kv.log.Warn("meta: the data disk is full: writes are refused until space is freed; reads are served",
				"dir", kv.dir, "free_mib", free>>20, "reserve_mib", kv.space.reserve>>20)
		}
		return nil
	}
	bdb, err := kv.openDB(kv.bo.WithReadOnly(true))
	if err == nil {
		kv.bdb = bdb
		kv.ro.Store(true)
		kv.space.full.Store(true)
		kv.log.Warn("meta: the data disk is full: the metadata store is open read-only; reads are served, writes are refused until space is freed",
			"dir", kv.dir, "free_mib", free>>20, "reserve_mib", kv.space.reserve>>20)
		return nil
	}
	need := recoveryNeed(kv.dir)
	if free < need {
		return fmt.Errorf("meta: open %s: the data disk is full (%d MiB free), Badger cannot open the store read-only (%v: it was not closed cleanly), and opening it read-write needs about %d MiB free: %w",
			kv.dir, free>>20, err, need>>20, ErrNoSpace)
	}
	bdb, err = kv.openDB(kv.bo)
	if err != nil {
		return fmt.Errorf("meta: open %s: %w", kv.dir, err)
	}
	kv.bdb = bdb
	kv.space.full.Store(true)
	kv.log.Warn("meta: the data disk is full: the metadata store was recovered read-write, but writes are refused until space is freed; reads are served",
		"dir", kv.dir, "free_mib", free>>20, "reserve_mib", kv.space.reserve>>20)
	return nil
}

// errNotOpen: Badger could be opened neither read-write nor read-only
// again after space returned (see reopenWritable).
var errNotOpen = errors.New("meta: the store could not be reopened after space returned; restart the daemon")

// reopenWritable swaps a read-only Badger for a read-write one once the
// reserve is free. It waits for no one: when transactions are running it
// tries again later.
func (kv *badgerKV) reopenWritable() {
	if !kv.ro.Load() || time.Now().Before(kv.reopenAfter) {
		return
	}
	free, err := kv.space.statfs(kv.dir)
	if err != nil || free < kv.space.reserve {
		return
	}
	locked := false
	for range 100 {
		if locked = kv.mu.TryLock(); locked {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !locked {
		return
	}
	defer kv.mu.Unlock()
	if kv.bdb != nil {
		if err := kv.bdb.Close(); err != nil {
			kv.log.Warn("meta: closing the read-only store", "err", err)
		}
	}
	bdb, err := kv.openDB(kv.bo)
	if err != nil {
		// Leave a usable store behind: read-only again, and try again
		// in a minute.
		kv.reopenAfter = time.Now().Add(time.Minute)
		kv.log.Error("meta: opening the store read-write failed; staying read-only, trying again in a minute", "err", err)
		if bdb, err = kv.openDB(kv.bo.WithReadOnly(true)); err != nil {
			// Nothing to serve from: reads fail (writes are refused
			// already, the store being read-only) until a reopen works.
			kv.log.Error("meta: reopening the store read-only failed; reads fail until it can be reopened", "err", err)
			kv.bdb = nil
			return
		}
		kv.bdb = bdb
		return
	}
	kv.bdb = bdb
	kv.walDir = walListing{} // list the new Badger's logs afresh
	kv.ro.Store(false)
	kv.space.full.Store(false)
	kv.log.Info("meta: free space is back on the data disk: the metadata store is read-write again; writes are accepted",
		"dir", kv.dir, "free_mib", free>>20)
}

// readOnly reports whether the store is open read-only because the disk
// was full when it opened (it turns read-write by itself when space
// returns).
func (kv *badgerKV) readOnly() bool { return kv.ro.Load() }

// writable returns nil when a commit may go ahead: no sync has failed, the
// store is read-write, and the disk has the reserve free (half of it for
// commits marked UseReserve).
func (kv *badgerKV) writable(ctx context.Context) error {
	if err := kv.syncer.failure(); err != nil {
		return err
	}
	if kv.ro.Load() {
		return fmt.Errorf("meta: the data disk was full when the store opened, and is still (the store is read-only until %d MiB are free): %w",
			kv.space.reserve>>20, ErrNoSpace)
	}
	floor := kv.space.reserve
	if usesReserve(ctx) {
		floor /= 2
	}
	return kv.space.check(floor)
}

// checkSpace is DB.CheckSpace: ErrNoSpace below the reserve or while
// read-only, the permanent sync failure after one.
func (kv *badgerKV) checkSpace() error {
	if err := kv.syncer.failure(); err != nil {
		return err
	}
	if kv.ro.Load() {
		return fmt.Errorf("meta: the store is read-only until %d MiB are free on the data disk: %w", kv.space.reserve>>20, ErrNoSpace)
	}
	return kv.space.check(kv.space.reserve)
}

// sync returns once everything committed before the call is on disk,
// through the group commit. With Badger's own SyncWrites (the comparison
// benchmark) every commit was synced already.
func (kv *badgerKV) sync() error {
	if !kv.groupCommit {
		return kv.syncer.failure()
	}
	return kv.syncer.wait()
}

// close stops the value-log GC goroutine, waits for it, and closes Badger.
func (kv *badgerKV) close() error {
	close(kv.gcStop)
	<-kv.gcDone
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var err error
	if kv.bdb == nil {
		err = errNotOpen
	} else if cerr := kv.bdb.Close(); cerr != nil {
		err = fmt.Errorf("meta: close: %w", cerr)
	}
	for fid, f := range kv.walFiles {
		f.Close()
		delete(kv.walFiles, fid)
	}
	return err
}

// begin starts a Badger transaction, holding kv.mu for reading until
// discard.
func (kv *badgerKV) begin(_ context.Context, write bool) (kvTxn, error) {
	kv.mu.RLock()
	if kv.bdb == nil {
		kv.mu.RUnlock()
		return nil, errNotOpen
	}
	return &badgerTxn{kv: kv, btx: kv.bdb.NewTransaction(write)}, nil
}

// valueBufs holds the buffers that transactions copy values into, so that
// reads allocate nothing once the pool is warm.
var valueBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// badgerTxn is a Badger transaction. Badger keeps the key and value slices
// given to set until the transaction ends (no copy is made).
type badgerTxn struct {
	kv   *badgerKV
	btx  *badger.Txn
	done bool
	// buf receives the values get returns (Badger hands out a value only
	// inside a callback); taken from valueBufs at the first get, given
	// back at discard.
	buf *[]byte
	// vlog: a value set goes to the value log (commit marks vlogUsed).
	vlog bool
}

func (t *badgerTxn) get(key []byte) ([]byte, bool, error) {
	item, err := t.btx.Get(key)
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if t.buf == nil {
		t.buf = valueBufs.Get().(*[]byte)
	}
	v, err := item.ValueCopy((*t.buf)[:0])
	if err != nil {
		return nil, false, err
	}
	if cap(v) > cap(*t.buf) && cap(v) <= maxPooledBuf {
		*t.buf = v[:0]
	}
	return v, true, nil
}

func (t *badgerTxn) set(key, value []byte) error {
	if len(value) >= valueThreshold {
		t.vlog = true
	}
	if err := t.btx.Set(key, value); err != nil {
		return badgerErr(err)
	}
	return nil
}

func (t *badgerTxn) delete(key []byte) error {
	if err := t.btx.Delete(key); err != nil {
		return badgerErr(err)
	}
	return nil
}

func (t *badgerTxn) deletePrefix(prefix []byte) error {
	// Badger has no range deletion: the keys are gathered, then deleted
	// (a transaction's writes are bounded only by its size in memory).
	var keys [][]byte
	it := t.btx.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := t.delete(k); err != nil {
			return err
		}
	}
	return nil
}

// badgerErr maps Badger's errors to meta's sentinels (keeping Badger's).
func badgerErr(err error) error {
	switch {
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%w: %w", ErrTxnTooBig, err)
	case errors.Is(err, badger.ErrReadOnlyTxn):
		return fmt.Errorf("%w: %w", ErrReadOnlyTxn, err)
	case errors.Is(err, badger.ErrConflict):
		return fmt.Errorf("meta: commit: %w: %w", ErrConflict, err)
	}
	return err
}

func (t *badgerTxn) commit() error {
	err := t.btx.Commit()
	if t.vlog {
		// Marked once the commit has written the value log (or given
		// up): the waiter's sync starts after this and so sees the mark.
		// Marked at set, a sync running between set and commit (another
		// waiter's) would spend the mark before the value was written.
		t.kv.vlogUsed.Store(true)
	}
	if err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return badgerErr(err)
		}
		return fmt.Errorf("meta: commit: %w", err)
	}
	return nil
}

func (t *badgerTxn) discard() {
	if t.done {
		return
	}
	t.done = true
	t.btx.Discard()
	t.kv.mu.RUnlock()
	if t.buf != nil {
		valueBufs.Put(t.buf)
		t.buf = nil
	}
}

// maxPooledBuf bounds the buffers kept in valueBufs (inline data can be
// large).
const maxPooledBuf = 64 << 10

func (t *badgerTxn) iterate(prefix []byte, _ bool) kvIterator {
	// Values are never prefetched: they are read (from the LSM tree for
	// records, see valueThreshold) only when asked for, so keysOnly needs
	// nothing more.
	return &badgerIter{prefix: prefix, it: t.btx.NewIterator(badger.IteratorOptions{Prefix: prefix})}
}

type badgerIter struct {
	prefix []byte
	it     *badger.Iterator
	buf    []byte // receives the values value returns
}

func (i *badgerIter) seek(k []byte) {
	if bytes.Compare(k, i.prefix) < 0 {
		k = i.prefix
	}
	i.it.Seek(k)
}

func (i *badgerIter) valid() bool { return i.it.Valid() }
func (i *badgerIter) next()       { i.it.Next() }
func (i *badgerIter) key() []byte { return i.it.Item().Key() }
func (i *badgerIter) value() ([]byte, error) {
	v, err := i.it.Item().ValueCopy(i.buf[:0])
	if cap(v) > cap(i.buf) {
		i.buf = v[:0]
	}
	return v, err
}
func (i *badgerIter) err() error { return nil }
func (i *badgerIter) close()     { i.it.Close() }

// ErrSyncFailed is returned (wrapped, with the failure that caused it) by
// every write, commit and Sync after a sync of the store has failed once.
//
// A failed fsync is not a passing problem: the kernel may have dropped the
// dirty pages it could not write (and marked them clean), so a later sync
// that succeeds says nothing about them. Nothing committed since the last
// good sync is known to be on disk, and only a restart (which replays what
// the disk really holds) makes the store trustworthy again. Reads go on.
var ErrSyncFailed = errors.New("an earlier sync of the metadata store failed; writes are refused until restart")

// datasyncFile makes a file's data durable (fdatasync); a hook for tests.
var datasyncFile = func(f *os.File) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// syncAll makes every committed write durable.
//
// Every value meta writes is below valueThreshold, so a commit lands in
// the active memtable's write-ahead log alone, and syncWALs makes it
// durable with one fdatasync of that log. Badger writes its logs through
// shared file mappings, and on Linux msync(MS_SYNC) of such a mapping is an
// fdatasync of the file's range (mm/msync.c): pages written through the
// mapping are dirty in the page cache (ext4 tracks them by page_mkwrite),
// and fdatasync of any descriptor of the file writes them. Badger's own
// DB.Sync (v4.9.6, db.go) msyncs the active write-ahead log and also the
// value-log file being written; that second msync costs a sync of a file
// nobody wrote, so DB.Sync runs only while the value log may hold
// something new (vlogUsed).
//
// Value-log files written before are synced when Badger rotates them
// (logFile.doneWriting truncates the file, and z.MmapFile.Truncate msyncs
// first). A memtable that has been rotated out but not yet flushed to a
// level-0 table, however, is synced neither at rotation (ensureRoomForWrite
// only swaps it) nor by DB.Sync: a commit that landed in it just before the
// rotation would be at risk until the flush, which syncs the new table.
// syncWALs syncs those logs too.
func (kv *badgerKV) syncAll() error {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	if kv.ro.Load() {
		return nil // nothing was written
	}
	var err error
	if kv.vlogUsed.Swap(false) {
		err = kv.bdb.Sync()
	}
	if werr := kv.syncWALs(); err == nil {
		err = werr
	}
	return err
}

// walSuffix is the extension of Badger's memtable write-ahead logs
// ("%05d.mem", memtable.go).
const walSuffix = ".mem"

// syncWALs fdatasyncs the active memtable's write-ahead log (the newest),
// and each log rotated out since its rotation, once.
//
// Which descriptor reports a writeback error: since Linux 4.13 an error is
// recorded per file (errseq_t in the inode's mapping), and fsync on a
// descriptor reports every error recorded since that descriptor was opened;
// since 4.17 (commit b4678df184b3, "errseq: Always report a writeback error
// once", backported to stable kernels) an error that no descriptor has
// reported yet is also reported to one opened after it. A
// fresh descriptor per sync would therefore depend on nobody else having
// reported the error first. Instead each log is opened once, the first
// time a sync sees it, and the descriptor is kept until Badger deletes the
// file: a sync through it reports every error since that open, and any
// error before the open that nobody has reported. Badger keeps the file
// open and mapped meanwhile, so the inode (and the error recorded in it)
// stays in memory. Whatever it reports makes the failure permanent
// (syncer.fail).
func (kv *badgerKV) syncWALs() error {
	if err := kv.listWALs(); err != nil {
		return err
	}
	for i, fid := range kv.walFids {
		f := kv.walFiles[fid]
		if f == nil {
			var err error
			f, err = os.Open(filepath.Join(kv.dir, fmt.Sprintf("%05d%s", fid, walSuffix)))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			kv.walFiles[fid] = f
		}
		active := i == len(kv.walFids)-1
		if !active && kv.walSynced[fid] {
			continue // rotated before an earlier sync, and synced by it
		}
		if err := datasyncFile(f); err != nil {
			return fmt.Errorf("syncing %s: %w", f.Name(), err)
		}
		if !active {
			kv.walSynced[fid] = true
		}
	}
	return nil
}

// walListing is what the last listing of Badger's directory (listWALs)
// needs to know to be reused: the directory's change time when it was
// listed, and whether a change made right after the listing could have
// left that time as it was.
type walListing struct {
	listed bool
	ctime  time.Time
	racy   bool
}

// listWALs brings walFids and walFiles up to date with the write-ahead logs
// in Badger's directory.
//
// Listing the directory costs in proportion to the files in it, most of
// them tables (~0.9 ms for 2,000 files on these machines), and a sync
// used to list it every time: in a store of many tables, that was most of
// a durable commit's cost. Creating or removing a file changes the
// directory's change time (ctime), and only Badger creates or removes
// files there, so the listing is reused while the change time stays what
// it was when the directory was last listed. The time is read before the
// listing, so a change after it shows as a later time; unless it comes
// within the same tick of the file system's clock, whose granularity may
// be as coarse as a second (on file systems without sub-second
// timestamps). A listing made that close to the directory's last change
// is not reused (racy, as a build tool says of a file changed in the
// second it was stat'ed).
func (kv *badgerKV) listWALs() error {
	now := time.Now()
	fi, err := os.Stat(kv.dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat %s: no change time", kv.dir)
	}
	ctime := time.Unix(st.Ctim.Unix())
	if kv.walDir.listed && !kv.walDir.racy && ctime.Equal(kv.walDir.ctime) {
		return nil
	}
	entries, err := os.ReadDir(kv.dir)
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
	slices.Sort(fids)
	// Forget the logs Badger deleted (flushed memtables).
	for fid, f := range kv.walFiles {
		if _, found := slices.BinarySearch(fids, fid); !found {
			f.Close()
			delete(kv.walFiles, fid)
			delete(kv.walSynced, fid)
		}
	}
	slack := 50 * time.Millisecond // nanosecond timestamps, set at a clock tick
	if ctime.Nanosecond() == 0 {
		slack = 2 * time.Second // perhaps whole seconds
	}
	kv.walFids = fids
	kv.walDir = walListing{listed: true, ctime: ctime, racy: now.Sub(ctime) < slack}
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
	// gather runs, with mu unlocked, between a leader's claim of the next
	// sync and its start (runtime.Gosched unless a test sets it).
	gather func()

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
		// Before the sync starts, let the goroutines that can run do so:
		// most often commits that have just written their transactions.
		// Those that reach wait meanwhile find the sync claimed, queue,
		// and need the one started next, this one, so they share it
		// instead of each paying a sync of their own. 16 writers of 4 KiB
		// records went from 6-7 commits per sync to ~9 with it.
		s.mu.Unlock()
		if s.gather != nil {
			s.gather()
		} else {
			runtime.Gosched()
		}
		s.mu.Lock()
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
func (kv *badgerKV) gcLoop(interval time.Duration) {
	defer close(kv.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	sp := time.NewTicker(spaceCheckInterval)
	defer sp.Stop()
	for {
		select {
		case <-kv.gcStop:
			return
		case <-sp.C:
			kv.reopenWritable()
			continue
		case <-t.C:
		}
		for kv.runGC() {
			select {
			case <-kv.gcStop:
				return
			default:
			}
		}
	}
}

// runGC rewrites one value-log file if one is worth it, and reports
// whether it did. GC writes, so it does not run when commits are refused.
func (kv *badgerKV) runGC() bool {
	if kv.writable(context.Background()) != nil {
		return false
	}
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	kv.vlogUsed.Store(true) // a rewrite goes through the value log
	err := kv.bdb.RunValueLogGC(gcDiscardRatio)
	if err == nil {
		return true // a file was rewritten: try the next one
	}
	if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
		kv.log.Warn("meta: value log gc", "err", err)
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

// purge removes every version of keys (deleted, never written again) from
// Badger's files (purge.go): DropPrefix with each key as its prefix flushes
// the memtables (their write-ahead logs are truncated and removed), and
// rewrites the level-0 tables and every table holding one of the keys
// without them. DropPrefix skips a prefix with no live key, so each key is
// first set to an empty value. Badger refuses writes while it runs: purge
// holds mu for writing, so transactions wait for it in begin instead of
// failing. It takes mu as reopenWritable does, with TryLock (a waiting
// Lock would hold up every new transaction, and deadlock one begun inside
// another), for up to purgeWait; a store busier than that is an error
// (the caller tries again later).
func (kv *badgerKV) purge(keys [][]byte) error {
	locked := false
	for deadline := time.Now().Add(purgeWait); !locked && time.Now().Before(deadline); {
		if locked = kv.mu.TryLock(); !locked {
			time.Sleep(time.Millisecond)
		}
	}
	if !locked {
		return fmt.Errorf("transactions kept the store busy for %s", purgeWait)
	}
	defer kv.mu.Unlock()
	if kv.ro.Load() {
		return ErrNoSpace
	}
	wb := kv.bdb.NewWriteBatch()
	for _, k := range keys {
		if err := wb.Set(k, nil); err != nil {
			wb.Cancel()
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	return kv.bdb.DropPrefix(keys...)
}

// purgeWait bounds how long purge waits for a moment without transactions.
const purgeWait = 30 * time.Second

// openDB opens Badger with o and keeps its table builders from holding
// on to memory they no longer use (releaseBuilderBuffers). An open may
// write the value log (replay, truncation), so the next sync asks Badger
// (vlogUsed).
func (kv *badgerKV) openDB(o badger.Options) (*badger.DB, error) {
	kv.vlogUsed.Store(true)
	bdb, err := badger.Open(o)
	if err != nil {
		return nil, err
	}
	if err := releaseBuilderBuffers(bdb); err != nil {
		kv.log.Warn("meta: Badger's table builders keep their buffers between builds (more memory and more garbage collection under heavy writes)", "err", err)
	}
	return bdb, nil
}

// releaseBuilderBuffers hands every buffer a Badger table build gives
// back to the Go heap at once, instead of letting Badger keep it for the
// next build.
//
// Each table build (a memtable flush, each table a compaction writes)
// takes an allocator from a pool of eight kept by the DB, grows it past
// the table's size (a block that outgrows its buffer is copied, and every
// block is copied once more to be compressed), and returns it with all of
// its buffers. The pool lets one go only after two seconds in which no
// build started; under steady writes it never does, so up to eight
// allocators sized for the largest recent builds stay live. Without
// jemalloc those buffers are ordinary Go memory. Unpacking a tarball of
// 10,000 small files through the mount three times, they held up to
// 144 MiB of the heap during the second pass (276–480 MiB during the third
// with no memory limit), and under a 192 MiB memory limit the collector
// ran almost without pause: 381–537 collections over the three passes,
// 181–191 with this.
//
// Badger has no option for it, so this receives from the pool's channel
// for as long as the DB is open: a returned allocator goes straight to
// this goroutine, which releases it, and the pool's next Get finds it
// empty and makes a new one sized for its table. The fields are read
// once, after Open has set them (Badger never changes them), and only
// through the channel afterwards; Close closes the channel, which ends
// the goroutine. TestBuilderBuffersAreNotKept fails if a Badger upgrade
// renames them.
func releaseBuilderBuffers(bdb *badger.DB) error {
	ch, err := allocatorPool(bdb)
	if err != nil {
		return err
	}
	go func() {
		for a := range ch {
			a.Release()
		}
	}()
	return nil
}

// allocatorPool returns the channel of the DB's pool of table-builder
// allocators, an unexported field of an unexported field.
func allocatorPool(bdb *badger.DB) (chan *z.Allocator, error) {
	pool, err := unexportedField[*z.AllocatorPool](reflect.ValueOf(bdb).Elem(), "allocPool")
	if err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, errors.New("badger.DB has no allocator pool")
	}
	return unexportedField[chan *z.Allocator](reflect.ValueOf(pool).Elem(), "allocCh")
}

// unexportedField reads the field name of the struct v as a T.
func unexportedField[T any](v reflect.Value, name string) (T, error) {
	var zero T
	f := v.FieldByName(name)
	if !f.IsValid() || f.Type() != reflect.TypeFor[T]() {
		return zero, fmt.Errorf("%s has no field %s of type %s", v.Type(), name, reflect.TypeFor[T]())
	}
	return *(*T)(unsafe.Pointer(f.UnsafeAddr())), nil
}
