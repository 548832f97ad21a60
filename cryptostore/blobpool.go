package cryptostore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// blobPool keeps a few empty blob files created ahead of need, under their
// final names, with those names already durable. A blob written into one is
// durable after a single fsync of the file: no temporary name, no rename,
// no fsync of a directory. On this machine's disks that halves the journal
// commits a medium object waits for (a new name costs a journal commit of
// its own, ~1.3 ms), and creating files in batches of poolBatch, all in one
// shard directory, makes one directory fsync cover a whole batch.
//
// Only a file store that this process alone writes keeps a pool: in a
// directory shared by several gateways another gateway's collector could
// take an old, empty pool file for an orphan.
//
// The commit order is unchanged: a blob is written and fsynced before the
// record that points at it commits. A pool file is in flight (blobFiles)
// from the moment it is named until it is committed or abandoned, so the
// collector never takes it for an orphan while this process runs. After a
// crash, empty or half-written pool files are what unfinished temporary
// files were before: blobs no record points at, removed by the next
// collection. Pool files left at a clean Close are removed.
type blobPool struct {
	b *blobFiles

	mu      sync.Mutex
	ready   []meta.BlobID
	batch   []meta.BlobID // the batch being created (fill), not ready yet
	filling bool
	closed  bool
	pause   time.Time // after a failed batch, no new one before this
	wg      sync.WaitGroup
}

const (
	poolBatch = 32 // files created per batch (one directory fsync)
	poolLow   = 8  // a new batch starts when fewer are ready
	poolPause = 10 * time.Second
)

func newBlobPool(b *blobFiles) *blobPool { return &blobPool{b: b} }

// take returns a blob file made ahead, open for writing, and starts a new
// batch when few are left. ok is false when none is ready: the caller
// creates the blob the slow way. The first blob written starts the first
// batch; a store that is only read makes none.
func (p *blobPool) take() (meta.BlobID, BlobUpload, bool) {
	if p == nil {
		return meta.BlobID{}, nil, false
	}
	p.mu.Lock()
	if len(p.ready) <= poolLow && !p.filling && !p.closed && time.Now().After(p.pause) {
		p.filling = true
		p.wg.Add(1)
		go p.fill()
	}
	if len(p.ready) == 0 {
		p.mu.Unlock()
		return meta.BlobID{}, nil, false
	}
	id := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	p.mu.Unlock()

	fb := p.b.local
	f, err := os.OpenFile(fb.path(id), os.O_RDWR, 0)
	if err != nil {
		p.b.logger.Warn("opening a blob file made ahead", "blob", id.String(), "err", err)
		p.b.abandon(id)
		return meta.BlobID{}, nil, false
	}
	return id, &fileWriter{fb: fb, id: id, f: f, inPlace: true}, true
}

// fill creates one batch of empty blob files in one shard directory and
// makes their names durable with one fsync of it.
func (p *blobPool) fill() {
	defer p.wg.Done()
	ids := make([]meta.BlobID, poolBatch)
	for i := range ids {
		ids[i] = meta.NewBlobID()
		ids[i][0] = ids[0][0] // one shard directory for the batch
	}
	// In flight before they exist: the collector must never see them free
	// (nor count them as blobs: holds).
	p.b.mu.Lock()
	for _, id := range ids {
		p.b.inflight[id] = struct{}{}
	}
	p.b.mu.Unlock()
	p.mu.Lock()
	p.batch = ids
	p.mu.Unlock()

	fb := p.b.local
	err := p.create(fb, ids)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filling = false
	p.batch = nil
	if err == nil && !p.closed {
		p.ready = append(p.ready, ids...)
		return
	}
	if err != nil {
		p.b.logger.Warn("creating blob files ahead of need; new blobs are created one by one for a while", "err", err)
		p.pause = time.Now().Add(poolPause)
	}
	p.b.abandon(ids...)
}

func (p *blobPool) create(fb *fileBlobs, ids []meta.BlobID) error {
	dir := filepath.Dir(fb.path(ids[0]))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, id := range ids {
		f, err := os.OpenFile(fb.path(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	// The shard directory's own entry: made just now, here or by a blob
	// written the slow way whose fsync of it may not have run yet. With
	// nothing new in it this fsync has nothing to write.
	return syncDir(fb.dir)
}

// holds reports whether id is a file made ahead that nobody took yet, or
// one of the batch being made.
func (p *blobPool) holds(id meta.BlobID) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.ready, id) || slices.Contains(p.batch, id)
}

// close waits for a batch under way and removes the files nobody took.
func (p *blobPool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	ids := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.b.abandon(ids...)
}
