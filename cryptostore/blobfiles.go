package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sealfs/sealfs/meta"
)

// blobFiles manages the blob files under the data directory and decides when
// one may be removed.
//
// Layout: DIR/blobs/<first two hex digits>/<32 hex digits> for committed
// blobs, DIR/tmp/<32 hex digits>.tmp while one is being written.
//
// A blob is removable when no committed record points at it, no write that
// will commit it is in flight, and no reader holds it. Only this process owns
// the data directory, so in-flight writes and readers are tracked in memory.
//
// A blob that a commit made without sync stopped referencing is removed only
// after a metadata sync that started after that commit (see durable.go):
// until then it waits in pending.
type blobFiles struct {
	dir    string // DIR/blobs
	tmp    string // DIR/tmp
	logger *slog.Logger

	mu       sync.Mutex
	inflight map[meta.BlobID]struct{} // being written, not yet committed or abandoned
	refs     map[meta.BlobID]int      // open readers
	doomed   map[meta.BlobID]struct{} // unreferenced, waiting for the last reader
	// While the collector scans, ids leaving the in-flight set are kept in
	// settled so that a blob committed after the collector's metadata
	// snapshot is not mistaken for an orphan.
	scanning bool
	settled  map[meta.BlobID]struct{}

	// Removals waiting for a sync. epoch counts syncs started (syncMark);
	// a removal queued in epoch e runs after a sync marked e or later
	// succeeds. After a failed sync (syncFailed) none runs any more.
	epoch      uint64
	pending    []pendingRemoval
	syncFailed bool

	// keep, when set (a shared store, shared.go), removes from the
	// collector's candidates the files it must keep anyway.
	keep func(ctx context.Context, files map[meta.BlobID]string) error
}

type pendingRemoval struct {
	epoch uint64
	refs  []meta.BlobRef
}

func openBlobFiles(dataDir string, logger *slog.Logger) (*blobFiles, error) {
	return openBlobFilesAt(filepath.Join(dataDir, "blobs"), filepath.Join(dataDir, "tmp"), logger)
}

// openBlobFilesAt opens blobs in dir with temporary files in tmp (on the
// same file system).
func openBlobFilesAt(dir, tmp string, logger *slog.Logger) (*blobFiles, error) {
	b := &blobFiles{
		dir:      dir,
		tmp:      tmp,
		logger:   logger,
		inflight: make(map[meta.BlobID]struct{}),
		refs:     make(map[meta.BlobID]int),
		doomed:   make(map[meta.BlobID]struct{}),
	}
	for _, d := range []string{b.dir, b.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	// Nothing is in flight at start: temporary files are leftovers of a
	// crash. They hold sealed data only, but there is no reason to keep them.
	entries, err := os.ReadDir(b.tmp)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", b.tmp, err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(b.tmp, e.Name())); err != nil {
			logger.Warn("removing leftover temporary file", "file", e.Name(), "err", err)
		}
	}
	return b, nil
}

func (b *blobFiles) path(id meta.BlobID) string {
	s := id.String()
	return filepath.Join(b.dir, s[:2], s)
}

func (b *blobFiles) tmpPath(id meta.BlobID) string {
	return filepath.Join(b.tmp, id.String()+".tmp")
}

// create starts a new blob: it is in flight until committed or abandoned.
func (b *blobFiles) create() (meta.BlobID, *os.File, error) {
	id := meta.NewBlobID()
	b.mu.Lock()
	b.inflight[id] = struct{}{}
	b.mu.Unlock()
	f, err := os.OpenFile(b.tmpPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		b.settle(id)
		return id, nil, fmt.Errorf("creating blob: %w", err)
	}
	return id, f, nil
}

// finish makes a written blob durable under its final name: fsync, rename,
// fsync the directory. It closes f. On error the blob is abandoned.
func (b *blobFiles) finish(id meta.BlobID, f *os.File) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(b.tmpPath(id), b.path(id))
		if errors.Is(err, fs.ErrNotExist) {
			// The shard directory is made on its first blob; its entry
			// in the parent is synced with it.
			if err = os.Mkdir(filepath.Dir(b.path(id)), 0o700); err == nil || errors.Is(err, fs.ErrExist) {
				if err = syncDir(b.dir); err == nil {
					err = os.Rename(b.tmpPath(id), b.path(id))
				}
			}
		}
	}
	if err == nil {
		err = syncDir(filepath.Dir(b.path(id)))
	}
	if err != nil {
		b.abandon(id)
		return fmt.Errorf("writing blob: %w", err)
	}
	return nil
}

// abandon removes a blob that will never be committed.
func (b *blobFiles) abandon(ids ...meta.BlobID) {
	for _, id := range ids {
		for _, p := range []string{b.tmpPath(id), b.path(id)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				b.logger.Warn("removing abandoned blob", "blob", id.String(), "err", err)
			}
		}
		b.settle(id)
	}
}

// settle marks blobs as no longer in flight: their commit is done (or they
// were abandoned).
func (b *blobFiles) settle(ids ...meta.BlobID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		delete(b.inflight, id)
		if b.scanning {
			b.settled[id] = struct{}{}
		}
	}
}

// acquire registers a reader of the blobs. The caller must check afterwards
// that the blobs still exist (see Store.open): a blob removed before acquire
// is gone, one removed after waits for release.
func (b *blobFiles) acquire(refs []meta.BlobRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		b.refs[r.ID]++
	}
}

// release lets go of blobs taken by acquire, removing doomed ones nobody
// holds any more.
func (b *blobFiles) release(refs []meta.BlobRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		n := b.refs[r.ID] - 1
		if n > 0 {
			b.refs[r.ID] = n
			continue
		}
		delete(b.refs, r.ID)
		if _, ok := b.doomed[r.ID]; ok {
			delete(b.doomed, r.ID)
			b.unlinkLocked(r.ID)
		}
	}
}

// remove deletes blobs that a committed transaction stopped referencing, now
// or when their last reader releases them.
//
// The files are unlinked under mu, the lock acquire takes: Store.Open
// relies on it (a reader that acquired an object's blobs and then finds the
// first one present knows none of them is removed until it releases them).
func (b *blobFiles) remove(refs []meta.BlobRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		if b.refs[r.ID] > 0 {
			b.doomed[r.ID] = struct{}{}
			continue
		}
		b.unlinkLocked(r.ID)
	}
}

// deferRemove queues blobs that a commit made without sync stopped
// referencing, for drain after the next successful sync.
func (b *blobFiles) deferRemove(refs []meta.BlobRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.syncFailed {
		return // left for the collector of the next start
	}
	b.pending = append(b.pending, pendingRemoval{epoch: b.epoch, refs: refs})
}

// syncMark is called before a sync starts: it returns the epoch whose
// removals that sync makes safe (every one queued so far) and starts the
// next.
func (b *blobFiles) syncMark() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.epoch++
	return b.epoch - 1
}

// drain runs the pending removals of epochs up to mark, after a sync that
// syncMark returned mark for succeeded.
func (b *blobFiles) drain(mark uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.syncFailed {
		return
	}
	n := 0
	for _, p := range b.pending {
		if p.epoch > mark {
			break // queued in order: the rest are later
		}
		for _, r := range p.refs {
			if b.refs[r.ID] > 0 {
				b.doomed[r.ID] = struct{}{}
				continue
			}
			b.unlinkLocked(r.ID)
		}
		n++
	}
	b.pending = append(b.pending[:0], b.pending[n:]...)
}

// fail records a failed sync: pending removals are dropped and none runs
// from now on. It reports whether this is the first failure.
func (b *blobFiles) fail() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := !b.syncFailed
	b.syncFailed = true
	b.pending = nil
	return first
}

func (b *blobFiles) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.syncFailed
}

func (b *blobFiles) hasPending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending) > 0
}

func (b *blobFiles) unlinkLocked(id meta.BlobID) {
	if err := os.Remove(b.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.logger.Warn("removing blob", "blob", id.String(), "err", err)
	}
}

// busy reports whether a blob must be kept regardless of what the metadata
// snapshot says. Called with mu held.
func (b *blobFiles) busyLocked(id meta.BlobID) bool {
	if _, ok := b.inflight[id]; ok {
		return true
	}
	if _, ok := b.settled[id]; ok {
		return true
	}
	return b.refs[id] > 0
}

// CollectStats reports what a collection found.
type CollectStats struct {
	Blobs   int   // blob files seen
	Orphans int   // removed
	Bytes   int64 // bytes removed
}

// collect removes blob files that no record references. It lists the blob
// files first, then reads every reference from one metadata snapshot, then
// syncs the metadata (sync), then removes what is unreferenced and not busy.
// A blob committed after the snapshot was in flight when the scan began, so
// it is in the in-flight or settled set and is kept. The sync starts after
// the snapshot was taken, so every commit the snapshot saw is durable before
// a blob it stopped referencing goes: a power cut cannot bring back a record
// that points at a removed blob (a blob unreferenced in one snapshot is
// never referenced again). Nothing is removed after a failed sync.
func (b *blobFiles) collect(ctx context.Context, db *meta.DB, sync func() error) (CollectStats, error) {
	var st CollectStats
	b.mu.Lock()
	if b.syncFailed {
		b.mu.Unlock()
		return st, errors.New("orphan collection: an earlier metadata sync failed")
	}
	if b.scanning {
		b.mu.Unlock()
		return st, errors.New("orphan collection already running")
	}
	b.scanning = true
	b.settled = make(map[meta.BlobID]struct{})
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.scanning = false
		b.settled = nil
		b.mu.Unlock()
	}()

	files := make(map[meta.BlobID]string)
	err := filepath.WalkDir(b.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != b.dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // a shared directory's temporary files
			}
			return ctx.Err()
		}
		id, perr := meta.ParseBlobID(d.Name())
		if perr != nil {
			if !strings.HasPrefix(d.Name(), ".") {
				b.logger.Warn("unexpected file in blob directory", "file", p)
			}
			return nil
		}
		files[id] = p
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("listing blobs: %w", err)
	}
	st.Blobs = len(files)
	err = db.ForEachBlobRef(ctx, func(id meta.BlobID) error {
		delete(files, id)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("reading blob references: %w", err)
	}
	if b.keep != nil && len(files) > 0 {
		if err := b.keep(ctx, files); err != nil {
			return st, fmt.Errorf("orphan collection: %w", err)
		}
	}
	if len(files) > 0 {
		if err := sync(); err != nil {
			return st, fmt.Errorf("orphan collection: %w", err)
		}
	}
	for id, p := range files {
		// The check and the unlink happen under one lock so that no reader
		// can take the blob in between.
		b.mu.Lock()
		if !b.busyLocked(id) {
			if fi, err := os.Stat(p); err == nil {
				if err := os.Remove(p); err != nil {
					b.logger.Warn("removing orphan blob", "blob", id.String(), "err", err)
				} else {
					st.Orphans++
					st.Bytes += fi.Size()
				}
			}
		}
		b.mu.Unlock()
	}
	return st, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
