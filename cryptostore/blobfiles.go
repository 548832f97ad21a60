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
	"time"

	"github.com/sealfs/sealfs/meta"
	"golang.org/x/sys/unix"
)

// blobFiles keeps the books of a store's blobs, whatever BlobStore holds
// them (blobstore.go), and decides when one may be removed.
//
// The file store (fileBlobs, below; file://DIR, the default) lays them out
// as DIR/blobs/<first two hex digits>/<32 hex digits> for committed blobs,
// DIR/tmp/<32 hex digits>.tmp while one is being written; or, in a data
// directory's own blob store, written in place into an empty file made
// ahead of need under its final name (blobpool.go).
//
// A blob is removable when no committed record points at it, no write that
// will commit it is in flight, and no reader holds it. Only this process owns
// the data directory, so in-flight writes and readers are tracked in memory.
//
// A blob that a commit made without sync stopped referencing is removed only
// after a metadata sync that started after that commit (see durable.go):
// until then it waits in pending.
type blobFiles struct {
	be     BlobStore
	local  *fileBlobs // be, when it is the file store; nil for a remote one
	tmp    string     // local temporary files (spools); DIR/tmp
	logger *slog.Logger
	// grace: the collector keeps unreferenced blobs written less than this
	// long ago (a remote store: DefaultBlobGrace); 0 → no age rule.
	grace time.Duration
	// removing: blobs decided removed, whose deletion is under way outside
	// mu, in the background (unlinkLocked, runRemovals); they count as
	// gone. toRemove are those not yet picked up; remover is set while a
	// runRemovals goroutine works, and removerIdle (on mu) is signalled
	// when it stops.
	removing    map[meta.BlobID]struct{}
	toRemove    []meta.BlobID
	remover     bool
	removerIdle *sync.Cond

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
	keep func(ctx context.Context, files map[meta.BlobID]time.Time) error

	// pool, when set (a file store this process alone owns), holds blob
	// files created ahead of need (blobpool.go).
	pool *blobPool

	// observeFinish, if set, is told how long each successful finish
	// took (Config.ObserveBlobCommit); set once at Open.
	observeFinish func(time.Duration)
}

type pendingRemoval struct {
	epoch uint64
	refs  []meta.BlobRef
}

// openBlobFiles opens the blob files of a data directory, which this
// process alone writes: new blobs go into files created ahead of need.
func openBlobFiles(dataDir string, logger *slog.Logger) (*blobFiles, error) {
	b, err := openBlobFilesAt(filepath.Join(dataDir, "blobs"), filepath.Join(dataDir, "tmp"), logger)
	if err != nil {
		return nil, err
	}
	b.pool = newBlobPool(b)
	return b, nil
}

// openBlobFilesAt opens the file store of blobs in dir with temporary files
// in tmp (on the same file system).
func openBlobFilesAt(dir, tmp string, logger *slog.Logger) (*blobFiles, error) {
	fb, err := openFileBlobs(dir, tmp, logger)
	if err != nil {
		return nil, err
	}
	b := newBlobBooks(fb, tmp, logger)
	b.local = fb
	return b, nil
}

// openRemoteBlobs keeps the books of blobs in a remote store, with local
// temporary files (spools) in tmp.
func openRemoteBlobs(be BlobStore, tmp string, grace time.Duration, logger *slog.Logger) (*blobFiles, error) {
	if err := cleanTmp(tmp, logger); err != nil {
		return nil, err
	}
	b := newBlobBooks(be, tmp, logger)
	b.grace = grace
	return b, nil
}

func newBlobBooks(be BlobStore, tmp string, logger *slog.Logger) *blobFiles {
	b := &blobFiles{
		be:       be,
		tmp:      tmp,
		logger:   logger,
		inflight: make(map[meta.BlobID]struct{}),
		refs:     make(map[meta.BlobID]int),
		doomed:   make(map[meta.BlobID]struct{}),
		removing: make(map[meta.BlobID]struct{}),
	}
	b.removerIdle = sync.NewCond(&b.mu)
	return b
}

// cleanTmp makes tmp and empties it. Nothing is in flight at start:
// temporary files are leftovers of a crash. They hold sealed data only, but
// there is no reason to keep them.
func cleanTmp(tmp string, logger *slog.Logger) error {
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("reading %s: %w", tmp, err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(tmp, e.Name())); err != nil {
			logger.Warn("removing leftover temporary file", "file", e.Name(), "err", err)
		}
	}
	return nil
}

// create starts a new blob: it is in flight until committed or abandoned.
func (b *blobFiles) create(ctx context.Context) (meta.BlobID, BlobUpload, error) {
	if id, w, ok := b.pool.take(); ok {
		return id, w, nil // in flight since the pool made it
	}
	id := meta.NewBlobID()
	b.mu.Lock()
	b.inflight[id] = struct{}{}
	b.mu.Unlock()
	w, err := b.be.Create(ctx, id)
	if err != nil {
		b.settle(id)
		return id, nil, fmt.Errorf("creating blob: %w", err)
	}
	return id, w, nil
}

// finish makes a written blob complete and durable in the store (the file
// store: fsync, rename, fsync the directory). On error the blob is
// abandoned.
func (b *blobFiles) finish(id meta.BlobID, w BlobUpload) error {
	start := time.Now()
	if err := w.Commit(); err != nil {
		b.abandon(id)
		return fmt.Errorf("writing blob: %w", err)
	}
	if b.observeFinish != nil {
		b.observeFinish(time.Since(start))
	}
	return nil
}

// abandon removes a blob that will never be committed (its writer, if
// still open, is aborted by the caller).
func (b *blobFiles) abandon(ids ...meta.BlobID) {
	for _, id := range ids {
		if b.local != nil {
			b.local.abandon(id)
		} else if err := b.removeBlob(id); err != nil {
			b.logger.Warn("removing abandoned blob", "blob", id.String(), "err", err)
		}
		b.settle(id)
	}
}

// exists reports whether a blob is still there (Store.Open's check after
// acquire).
func (b *blobFiles) exists(ctx context.Context, id meta.BlobID) (bool, error) {
	b.mu.Lock()
	_, gone := b.removing[id]
	b.mu.Unlock()
	if gone {
		return false, nil
	}
	return b.be.Exists(ctx, id)
}

// removeTimeout bounds one deletion (a remote store's round trip).
const removeTimeout = time.Minute

// removeBlob deletes blob id from the store, whichever it is.
func (b *blobFiles) removeBlob(id meta.BlobID) error {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	return b.be.Remove(ctx, id)
}

// runRemovals deletes queued blobs, outside mu, until the queue is empty
// (unlinkLocked starts it). Deleting a large file takes the file system a
// while (freeing its blocks, dropping its cached pages: ~30 ms for 64 MiB
// here), and a remote store a round trip: neither is a reason for the
// request whose commit replaced the blob to wait, nor to hold mu. A
// deletion that fails is logged and left to the orphan collector.
func (b *blobFiles) runRemovals() {
	b.mu.Lock()
	for len(b.toRemove) > 0 {
		ids := b.toRemove
		b.toRemove = nil
		b.mu.Unlock()
		for _, id := range ids {
			if err := b.removeBlob(id); err != nil {
				b.logger.Warn("removing blob", "blob", id.String(), "store", b.be.String(), "err", err)
			}
			b.mu.Lock()
			delete(b.removing, id)
			b.mu.Unlock()
		}
		b.mu.Lock()
	}
	b.remover = false
	b.removerIdle.Broadcast()
	b.mu.Unlock()
}

// waitRemovals returns once every deletion queued so far is done
// (Store.Close, and tests that look at the files).
func (b *blobFiles) waitRemovals() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.remover {
		b.removerIdle.Wait()
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
		if !r.Hole {
			b.refs[r.ID]++
		}
	}
}

// missing returns a blob of refs that is not there, or nil: Store.Open's
// check after acquire. Whole-blob objects (one blob, or a multipart
// object's parts) lose their blobs all at once, so the first one tells;
// a composed version may share blobs with the version it replaced, which
// keep existing while the others go, so each of its blobs is checked.
func (b *blobFiles) missing(ctx context.Context, refs []meta.BlobRef) (*meta.BlobID, error) {
	composed := false
	for i := range refs {
		if !refs[i].Whole() {
			composed = true
			break
		}
	}
	seen := make(map[meta.BlobID]bool)
	for i := range refs {
		r := &refs[i]
		if r.Hole || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		ok, err := b.exists(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &r.ID, nil
		}
		if !composed {
			break
		}
	}
	return nil, nil
}

// release lets go of blobs taken by acquire, removing doomed ones nobody
// holds any more.
func (b *blobFiles) release(refs []meta.BlobRef) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range refs {
		if r.Hole {
			continue
		}
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
// The blobs are marked removing under mu, the lock acquire takes, and exists
// answers no for them from then on, though the files go later: Store.Open
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

// unlinkLocked removes a blob: it is marked removing (exists says no from
// now on) and deleted in the background (runRemovals), once mu is released.
func (b *blobFiles) unlinkLocked(id meta.BlobID) {
	b.removing[id] = struct{}{}
	b.toRemove = append(b.toRemove, id)
	if !b.remover {
		b.remover = true
		go b.runRemovals()
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

// collect removes blobs that no record references. It lists the store's
// blobs first (a remote store: keeping those younger than the grace
// window, see DefaultBlobGrace), then reads every reference from one metadata snapshot, then
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

	files := make(map[meta.BlobID]time.Time)
	sizes := make(map[meta.BlobID]int64)
	cutoff := time.Now().Add(-b.grace)
	err := b.be.List(ctx, func(bi BlobInfo) error {
		if b.pool.holds(bi.ID) {
			return nil // an empty file made ahead of need: not a blob yet
		}
		st.Blobs++
		if b.grace > 0 && bi.ModTime.After(cutoff) {
			return nil // perhaps about to be committed (DefaultBlobGrace)
		}
		files[bi.ID] = bi.ModTime
		sizes[bi.ID] = bi.Size
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("listing blobs: %w", err)
	}
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
	for id := range files {
		// The check and the unlink happen under one lock so that no reader
		// can take the blob in between (a remote store: the blob is marked
		// removing under it, and deleted after).
		b.mu.Lock()
		if !b.busyLocked(id) {
			if b.local == nil {
				b.unlinkLocked(id)
				st.Orphans++
				st.Bytes += sizes[id]
			} else {
				p := b.local.path(id)
				if fi, err := os.Stat(p); err == nil {
					if err := os.Remove(p); err != nil {
						b.logger.Warn("removing orphan blob", "blob", id.String(), "err", err)
					} else {
						st.Orphans++
						st.Bytes += fi.Size()
					}
				}
			}
		}
		b.mu.Unlock()
	}
	b.waitRemovals() // the orphans are gone when collect returns
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

// fileBlobs is the file store of blobs (file://DIR): DIR/<2 hex>/<32 hex>,
// written as DIR/../tmp/<32 hex>.tmp (tmp on the same file system), made
// durable by fsync, rename and fsync of the directory.
type fileBlobs struct {
	dir    string
	tmp    string
	logger *slog.Logger
}

func openFileBlobs(dir, tmp string, logger *slog.Logger) (*fileBlobs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := cleanTmp(tmp, logger); err != nil {
		return nil, err
	}
	return &fileBlobs{dir: dir, tmp: tmp, logger: logger}, nil
}

func (fb *fileBlobs) String() string { return "file://" + fb.dir }

func (fb *fileBlobs) path(id meta.BlobID) string {
	s := id.String()
	return filepath.Join(fb.dir, s[:2], s)
}

func (fb *fileBlobs) tmpPath(id meta.BlobID) string {
	return filepath.Join(fb.tmp, id.String()+".tmp")
}

// Create opens the blob's temporary file.
func (fb *fileBlobs) Create(_ context.Context, id meta.BlobID) (BlobUpload, error) {
	f, err := os.OpenFile(fb.tmpPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &fileWriter{fb: fb, id: id, f: f}, nil
}

// Open opens a committed blob file.
func (fb *fileBlobs) Open(_ context.Context, id meta.BlobID) (BlobObject, error) {
	return os.Open(fb.path(id))
}

// Exists reports whether the blob file is there.
func (fb *fileBlobs) Exists(_ context.Context, id meta.BlobID) (bool, error) {
	_, err := os.Stat(fb.path(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// Remove unlinks a blob file.
func (fb *fileBlobs) Remove(_ context.Context, id meta.BlobID) error {
	if err := os.Remove(fb.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// abandon removes a blob's temporary and final files.
func (fb *fileBlobs) abandon(id meta.BlobID) {
	for _, p := range []string{fb.tmpPath(id), fb.path(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fb.logger.Warn("removing abandoned blob", "blob", id.String(), "err", err)
		}
	}
}

// List walks the blob directory. Directories whose names start with a dot
// (a shared directory's temporary files) are skipped.
func (fb *fileBlobs) List(ctx context.Context, fn func(BlobInfo) error) error {
	return filepath.WalkDir(fb.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != fb.dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return ctx.Err()
		}
		id, perr := meta.ParseBlobID(d.Name())
		if perr != nil {
			if !strings.HasPrefix(d.Name(), ".") {
				fb.logger.Warn("unexpected file in blob directory", "file", p)
			}
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		return fn(BlobInfo{ID: id, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// touch refreshes a committed blob file's modification time (shared
// stores: blobfiles_shared.go).
func (fb *fileBlobs) touch(id meta.BlobID, t time.Time) {
	os.Chtimes(fb.path(id), t, t) // absent: still a temporary file
}

// syncEvery is how much a blob file is written between the data syncs
// that run in the background while it is written (fileWriter).
const syncEvery = 8 << 20

// syncData makes the data written to f durable; a variable so that tests
// can make it fail.
var syncData = func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// fileWriter writes a blob's temporary file. Every syncEvery bytes it
// starts a data sync in the background (one at a time; writing goes on
// meanwhile), so that the fsync before the commit has little left to do.
// On these machines an fsync's cost is mostly the disk flushing what was
// written since the last one: ~40 ms at the end of a 64 MiB blob written
// with writeback merely started, 5-25 ms after background syncs.
type fileWriter struct {
	fb      *fileBlobs
	id      meta.BlobID
	f       *os.File
	end     int64 // bytes written so far
	synced  int64 // bytes written when the last background sync started
	closed  bool
	inPlace bool // the file is at its final name already (blobpool.go)

	syncing chan struct{} // closed when the background sync ends; nil before the first
	syncErr error         // the first background sync failure; read once syncing is closed
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.end += int64(n)
	if w.end-w.synced >= syncEvery && w.syncDone() {
		done := make(chan struct{})
		w.syncing, w.synced = done, w.end
		go func() {
			defer close(done)
			if err := syncData(w.f); err != nil && w.syncErr == nil {
				w.syncErr = err
			}
		}()
	}
	return n, err
}

// syncDone reports whether no background sync is running.
func (w *fileWriter) syncDone() bool {
	if w.syncing == nil {
		return true
	}
	select {
	case <-w.syncing:
		return true
	default:
		return false
	}
}

// waitSync waits for the background sync, if one runs, and returns the
// first failure of any. A failed sync fails the blob even if a later one
// succeeds: a descriptor reports a writeback error once, so the fsync
// before the commit, on the same descriptor, would not see it, and the
// pages that could not be written may be gone.
func (w *fileWriter) waitSync() error {
	if w.syncing != nil {
		<-w.syncing
	}
	if w.syncErr != nil {
		return fmt.Errorf("syncing blob: %w", w.syncErr)
	}
	return nil
}

// Commit makes the blob durable under its final name: fsync, rename, fsync
// the directory; a blob written into a file created ahead (blobpool.go) has
// its final name already durable, and needs the fsync only. The caller
// abandons the blob on error.
func (w *fileWriter) Commit() error {
	fb, id := w.fb, w.id
	err := w.waitSync()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.closed = true
	if w.inPlace {
		return err
	}
	if err == nil {
		err = os.Rename(fb.tmpPath(id), fb.path(id))
		if errors.Is(err, fs.ErrNotExist) {
			// The shard directory is made on its first blob; its entry
			// in the parent is synced with it.
			if err = os.Mkdir(filepath.Dir(fb.path(id)), 0o700); err == nil || errors.Is(err, fs.ErrExist) {
				if err = syncDir(fb.dir); err == nil {
					err = os.Rename(fb.tmpPath(id), fb.path(id))
				}
			}
		}
	}
	if err == nil {
		err = syncDir(filepath.Dir(fb.path(id)))
	}
	return err
}

// Abort closes the temporary file; the caller's abandon removes it.
func (w *fileWriter) Abort() {
	w.waitSync()
	if !w.closed {
		w.closed = true
		w.f.Close()
	}
}
