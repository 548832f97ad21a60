package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
)

// staging is a file's content while it is written: the version it started
// from (base), changed by the writes since. It is in one of two modes.
//
// Stream mode is the common case, a file written from its end onwards
// (created, truncated, or appended to): the content is base[0:baseLen]
// followed by the written bytes, and the bytes flow into a
// cryptostore.Stage running in a goroutine (through an io.Pipe) as they
// arrive, so they are hashed, encrypted and written to disk once, while the
// writer goes on; the commit (Staged.Commit) comes at flush. A
// window of up to winMax bytes past what was sent absorbs what the kernel
// sends out of order (writeback requests race) and the rewrites of a last,
// partial page; only whole pages that every earlier byte precedes are sent.
// Small files never start the goroutine: flush puts them in one call.
//
// Overlay mode takes over when a write or read does not fit the stream: the
// content is base (up to baseLen) with the 64 KiB chunks written since kept
// in a cryptostore.Spool, sealed under a throwaway key. Switching is free if
// nothing was sent yet; otherwise the stream's body is ended and what it
// staged (a cryptostore.Staged, written but not committed: nobody else sees
// it) becomes the base. Nothing is committed before flush.
//
// The base is the version the file's handles opened (the node's pinned
// version, see fileNode.vh), or staged data; never something read again by
// key.
//
// Memory is O(window + spool chunk) whatever the file's size. A staging is
// used under its node's lock.
type staging struct {
	n       *fileNode
	store   *cryptostore.Store
	base    base  // nil: the content starts empty
	baseLen int64 // bytes of base that are part of the content
	size    int64
	// consistent: the kernel's pages and size for the inode are this
	// content (the base is the version they hold, or none), so the commit
	// leaves them valid. See "Kernel caching" in the package doc.
	consistent bool

	meta     cryptostore.ObjectMeta // committed with the data
	mtimeSet bool                   // meta's mtime was set since the last write
	wrote    bool                   // the data changed (a commit sets mtime, clears set-id bits)

	win *window    // stream mode
	put *streamPut // the running Stage, once the window first filled

	spool *cryptostore.Spool // overlay mode
	have  []uint64           // bit i: chunk i is in the overlay (the spool, or mem)
	// mem holds the overlay's chunks the spool could not take (the disk is
	// full): a chunk in mem is read from there, never from the spool, and
	// once the spool failed (spoolFull) every chunk written goes to mem. So
	// a write the kernel sends back is never lost to a full disk: the
	// error comes at the commit, which leaves the staging whole. Counted in
	// FS.memStaged, at most memStageMax for the mount.
	mem       map[int64][]byte
	spoolFull bool

	// tee copies the bytes sent to the running Stage (the content from
	// baseLen on) while they are at most teeMax: if the Stage fails (a full
	// disk), or its commit does, the content is rebuilt from the base and
	// the copy in the overlay (unstream) instead of being lost. teeOK says
	// it holds all of them. Its capacity is counted in FS.teeHeld, which
	// the mount's copies together keep within FS.teeBudget (see send).
	tee   []byte
	teeOK bool

	broken error // a stream that failed: its data is lost

	// progress is closed, and replaced, whenever the written bytes in
	// stream order reach further: a write that arrived before the ones it
	// follows waits on it (see awaitTurn).
	progress chan struct{}
	// skipped: where the bytes in stream order ended when a wait ran out
	// (the writer left a hole there); nobody waits there again.
	skipped int64
}

const (
	pageSize = 4096
	// winPush: the window sends what is ready once it holds this much.
	winPush = 1 << 20
	// winMax: how far past what was sent a write may land and still be
	// streamed.
	winMax = 8 << 20
	// turnWait bounds how long a write that arrived early waits for the
	// writes before it, and turnRange how far ahead it may be: the kernel
	// sends its writeback in order, up to MaxBackground requests at once,
	// but go-fuse serves them on parallel goroutines, so they arrive in
	// any order. Running out only moves the file to overlay mode: it
	// changes how the content is kept, never what is visible.
	turnWait  = 20 * time.Millisecond
	turnRange = 64 << 20
	// turnStall bounds the wait for a write that has arrived and waits for
	// the lock (held while the store takes earlier data).
	turnStall = 10 * time.Second
	// chunk is the overlay's unit: the spool's.
	chunk = cryptostore.SpoolChunkSize
	// teeMax bounds the copy a stream keeps of what it sent (see
	// staging.tee): a file streamed further than this loses its writes if
	// the stream or its commit fails.
	teeMax = winMax
	// teeBudget bounds the copies of all the mount's streams together
	// (FS.teeBudget): without it, every file open for writing with up to
	// teeMax streamed held its own copy, 8 MiB each, however many there
	// were. A stream whose copy would take the total past it moves into
	// the overlay instead (the spool, on disk), as a failed stream does:
	// nothing is lost, and that file's data is written twice.
	teeBudget = 64 << 20
	// teeMinCap is the smallest capacity a copy is given.
	teeMinCap = 64 << 10
	// winBudget bounds the windows of all the mount's files together
	// (FS.winBudget): a file smaller than winPush is held whole in its
	// window until it is committed, so without it every file open for
	// writing, however many, held its data in memory. A window that would
	// take the total past it moves its file into the overlay (the spool,
	// on disk) instead, as a write out of order does.
	winBudget = 64 << 20
	// memStageMax bounds the overlay chunks the mount keeps in memory when
	// the disk cannot take them (staging.mem); past it a write fails with
	// ENOSPC and the staging breaks.
	memStageMax = 256 << 20
)

// base is what a staging's content starts from: a pinned version or staged
// data. release gives it up.
type base interface {
	io.ReaderAt
	Size() int64
	release()
}

// stagedBase is data the stream staged, uncommitted.
type stagedBase struct{ *cryptostore.Staged }

func (b stagedBase) release() { b.Discard() }

// newStaging starts staging over b (nil: empty), which it owns from now on;
// consistent says whether the kernel's cache holds b.
func newStaging(n *fileNode, b base, m cryptostore.ObjectMeta, consistent bool) *staging {
	st := &staging{n: n, store: n.fs.store, base: b, meta: m, skipped: -1, consistent: consistent}
	if b != nil {
		st.baseLen = b.Size()
		st.size = st.baseLen
	}
	st.win = &window{off: st.baseLen}
	return st
}

// setWin replaces the window, and stops counting the old one's buffer in
// FS.winHeld.
func (st *staging) setWin(w *window) {
	if st.win != nil {
		st.n.fs.winHeld.Add(-int64(cap(st.win.buf)))
	}
	st.win = w
}

// errWindowBudget: the window cannot grow, the mount's windows are at
// their budget (see windowWrite).
var errWindowBudget = errors.New("the mount's windows are at their budget")

// growWin makes room in the window for the bytes up to rel (from its
// start), counting what it adds in FS.winHeld; false, and the window as
// it was, when that would take the mount's windows past their budget.
func (st *staging) growWin(rel int64) bool {
	w := st.win
	if rel <= int64(cap(w.buf)) {
		return true
	}
	var ok bool
	w.buf, ok = growCounted(w.buf, int(w.capFor(rel)), &st.n.fs.winHeld, st.n.fs.winBudget)
	return ok
}

// growCounted returns buf grown to capacity c (more than it has), its
// bytes copied, and adds what it grew by to held; false, and buf as it
// was, when that would take held past budget.
func growCounted(buf []byte, c int, held *atomic.Int64, budget int64) ([]byte, bool) {
	add := int64(c - cap(buf))
	if held.Add(add) > budget {
		held.Add(-add)
		return buf, false
	}
	nb := make([]byte, len(buf), c)
	copy(nb, buf)
	return nb, true
}

// ---- the stream's Stage

type streamPut struct {
	pw     *io.PipeWriter
	done   chan struct{}
	staged *cryptostore.Staged
	err    error
}

var errStreamAborted = errors.New("stream abandoned")

// errGone: the file was deleted while its writes streamed to the store.
var errGone = errors.New("file deleted while being written")

// startPut starts the Stage that the stream feeds.
func (st *staging) startPut() error {
	bucket, key, ok := st.n.loc()
	if !ok {
		return errGone
	}
	pr, pw := io.Pipe()
	var body io.Reader = pr
	if st.baseLen > 0 {
		body = io.MultiReader(io.NewSectionReader(st.base, 0, st.baseLen), pr)
	}
	p := &streamPut{pw: pw, done: make(chan struct{})}
	st.tee, st.teeOK = st.tee[:0], true
	in := &cryptostore.PutInput{Bucket: bucket, Key: key, Body: body, Size: -1, Meta: st.meta.Clone()}
	go func() {
		defer close(p.done)
		p.staged, p.err = st.store.Stage(st.n.fs.keep(context.Background()), in)
		if p.err != nil {
			pr.CloseWithError(p.err)
		} else {
			pr.CloseWithError(errStreamAborted) // it read to the end: nothing more is wanted
		}
	}()
	st.put = p
	return nil
}

// send writes p into the running Stage, and into the copy of what was
// sent while there is one. A copy that would pass teeMax is given up. One
// that cannot grow because the mount's copies are at their budget moves
// the content into the overlay first (unstream), with p still unsent, and
// send returns errUnstreamed: the caller writes p there.
func (st *staging) send(p []byte) error {
	if st.teeOK {
		switch {
		case len(st.tee)+len(p) > teeMax:
			st.dropTee()
		case !st.growTee(len(p)):
			if err := st.unstream("the mount's copies of what its streams sent are at their budget"); err != nil {
				return err
			}
			return errUnstreamed
		}
	}
	if _, err := st.put.pw.Write(p); err != nil {
		return st.fail(err)
	}
	if st.teeOK {
		st.tee = append(st.tee, p...) // within the capacity growTee made
	}
	return nil
}

// growTee makes room in the copy for n more bytes, counting what it adds
// in FS.teeHeld; false, and the copy as it was, when that would take the
// mount's copies past their budget.
func (st *staging) growTee(n int) bool {
	need := len(st.tee) + n
	if need <= cap(st.tee) {
		return true
	}
	c := min(teeMax, max(need, 2*cap(st.tee), teeMinCap))
	var ok bool
	st.tee, ok = growCounted(st.tee, c, &st.n.fs.teeHeld, st.n.fs.teeBudget)
	return ok
}

// dropTee gives the copy up.
func (st *staging) dropTee() {
	st.n.fs.teeHeld.Add(-int64(cap(st.tee)))
	st.tee, st.teeOK = nil, false
}

// errUnstreamed: the running Stage failed, or its copy could not grow
// (send), and the content was moved into the overlay whole (unstream);
// the operation goes on there.
var errUnstreamed = errors.New("stream moved to the overlay")

// fail records that the running Stage failed. With the copy of what was
// sent (tee) the content moves into the overlay, nothing lost
// (errUnstreamed); without it the streamed data is lost (broken).
func (st *staging) fail(err error) error {
	<-st.put.done
	if st.put.err != nil {
		err = st.put.err
	}
	if st.put.staged != nil {
		st.put.staged.Discard()
	}
	st.put = nil
	if st.teeOK {
		if uerr := st.unstream("stream failed: " + err.Error()); uerr != nil {
			return uerr
		}
		return errUnstreamed
	}
	st.broken = fmt.Errorf("streaming to the store: %w", err)
	return st.broken
}

// unstream leaves stream mode without the Stage: what was sent (the copy in
// tee) and the window go into the overlay, over the base, which the stream
// mode still holds. The running Stage, if any, is abandoned. If the overlay
// cannot take the content the staging is broken.
func (st *staging) unstream(why string) error {
	if st.n.fs.log.Enabled(context.Background(), slog.LevelDebug) {
		bucket, key, _ := st.n.loc()
		st.n.fs.log.Debug("staging a file in the spool", "bucket", bucket, "key", key, "why", why, "sent", len(st.tee))
	}
	st.abortStream()
	w := st.win
	st.setWin(nil)
	defer st.advanced() // nobody waits for a turn in overlay mode
	return st.overlayFromTee(w)
}

// overlayFromTee writes the copy of what the stream sent (tee) into the
// overlay, over the base from baseLen, then w's bytes if w is set, and
// gives the copy up. If the overlay cannot take them the staging is
// broken.
func (st *staging) overlayFromTee(w *window) error {
	tee := st.tee
	defer st.n.fs.teeHeld.Add(-int64(cap(tee)))
	st.tee, st.teeOK = nil, false
	err := st.overlayWrite(tee, st.baseLen)
	if err == nil && w != nil && len(w.buf) > 0 {
		err = st.overlayWrite(w.buf, w.off)
	}
	if err != nil {
		st.broken = fmt.Errorf("moving the stream into the spool: %w", err)
		return st.broken
	}
	return nil
}

// finishStream sends the rest of the content, ends the body and waits for
// the Stage to finish: the content is staged, not committed.
func (st *staging) finishStream() (*cryptostore.Staged, error) {
	w := st.win
	if len(w.buf) > 0 {
		if err := st.send(w.buf); err != nil {
			return nil, err
		}
	}
	if sent := w.off + int64(len(w.buf)); sent < st.size {
		zeros := make([]byte, min(st.size-sent, 1<<20))
		for sent < st.size {
			k := min(st.size-sent, int64(len(zeros)))
			if err := st.send(zeros[:k]); err != nil {
				return nil, err
			}
			sent += k
		}
	}
	st.put.pw.Close()
	<-st.put.done
	staged, err := st.put.staged, st.put.err
	if err != nil {
		return nil, st.fail(err)
	}
	st.put = nil
	st.setWin(&window{off: st.size})
	return staged, nil
}

// abortStream abandons the running Stage: nothing of it is kept.
func (st *staging) abortStream() {
	if st.put == nil {
		return
	}
	st.put.pw.CloseWithError(errStreamAborted)
	<-st.put.done
	if st.put.staged != nil {
		st.put.staged.Discard()
	}
	st.put = nil
}

// ---- operations

// write stores p at off.
func (st *staging) write(p []byte, off int64) error {
	if st.broken != nil {
		return st.broken
	}
	st.wrote, st.mtimeSet = true, false
	end := off + int64(len(p))
	if st.win != nil && st.put == nil {
		if _, _, ok := st.n.loc(); !ok {
			// Deleted (a temporary file): it will never be committed, so
			// keep it in the spool.
			if err := st.toOverlay("deleted", off, len(p)); err != nil {
				return err
			}
		}
	}
	if st.win != nil {
		if st.win.fits(off, len(p)) {
			before := st.win.end()
			err := st.windowWrite(p, off)
			if st.win == nil || st.win.end() > before {
				st.advanced()
			}
			if errors.Is(err, errWindowBudget) {
				// The window cannot take it: the file goes into the
				// overlay, and so does the write (again, if part of it
				// was sent).
				if err = st.toOverlay("the mount's windows are at their budget", off, len(p)); err == nil {
					err = st.overlayWrite(p, off)
				}
			}
			if errors.Is(err, errUnstreamed) {
				// The stream failed and its content moved into the
				// overlay: the write goes there (again, if part of it
				// was in the window).
				err = st.overlayWrite(p, off)
			}
			if err != nil {
				return err
			}
			st.size = max(st.size, end)
			return nil
		}
		if err := st.toOverlay("write out of order", off, len(p)); err != nil {
			return err
		}
	}
	if err := st.overlayWrite(p, off); err != nil {
		return err
	}
	st.size = max(st.size, end)
	return nil
}

// awaitTurn waits, with the node's lock released, until the bytes before
// off have arrived. It waits for as long as the write carrying them has
// reached the mount (it is only waiting for the lock), and for turnWait
// otherwise: the writer may have left a hole. Called with the node's lock
// held; the node's staging may be another one (or none) when it returns.
func (st *staging) awaitTurn(off int64) {
	for st.win != nil && off > st.win.end() && off-st.win.end() <= turnRange && st.win.end() != st.skipped {
		if st.progress == nil {
			st.progress = make(chan struct{})
		}
		ch, next := st.progress, st.win.end()
		wait := turnWait
		if st.n.arrived(next) {
			wait = turnStall
		}
		t := time.NewTimer(wait)
		st.n.mu.Unlock()
		select {
		case <-ch:
			t.Stop()
			st.n.mu.Lock()
		case <-t.C:
			st.n.mu.Lock()
			if st.win != nil && st.win.end() == next && !st.n.arrived(next) {
				st.skipped = next
				return
			}
		}
	}
}

// advanced wakes the writes waiting for their turn.
func (st *staging) advanced() {
	if st.progress != nil {
		close(st.progress)
		st.progress = nil
	}
}

func (st *staging) windowWrite(p []byte, off int64) error {
	w := st.win
	// The common case, the next bytes in order with nothing held back:
	// send the whole pages straight from the request.
	if len(w.buf) == 0 && off == w.off && (st.put != nil || len(p) >= winPush) {
		if k := int64(len(p)) &^ (pageSize - 1); k > 0 {
			if err := st.ensurePut(); err != nil {
				return err
			}
			if err := st.send(p[:k]); err != nil {
				return err
			}
			w.off += k
			p, off = p[k:], off+k
		}
	}
	if len(p) > 0 {
		if !st.growWin(off + int64(len(p)) - w.off) {
			return errWindowBudget
		}
		w.write(p, off)
	}
	if n := w.ready(); n >= winPush {
		if err := st.ensurePut(); err != nil {
			return err
		}
		if err := st.send(w.buf[:n]); err != nil {
			return err
		}
		w.drop(n)
	}
	return nil
}

func (st *staging) ensurePut() error {
	if st.put != nil {
		return nil
	}
	return st.startPut()
}

// readAt reads the content at off.
func (st *staging) readAt(p []byte, off int64) (int, error) {
	if st.broken != nil {
		return 0, st.broken
	}
	if off >= st.size {
		return 0, io.EOF
	}
	var eof error
	if rest := st.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	end := off + int64(len(p))
	if st.win != nil && off < st.win.off && end > st.baseLen {
		// Part of it was sent to the store already.
		if err := st.toOverlay("read of sent data", off, len(p)); err != nil {
			return 0, err
		}
	}
	if st.win == nil {
		if err := st.overlayRead(p, off); err != nil {
			return 0, err
		}
		return len(p), eof
	}
	if b := min(end, st.baseLen) - off; b > 0 {
		if err := readBase(st.base, p[:b], off); err != nil {
			return 0, err
		}
	}
	if from := max(off, st.win.off); from < end {
		st.win.read(p[from-off:], from)
	}
	return len(p), eof
}

// truncate sets the content's length.
func (st *staging) truncate(size int64) error {
	if st.broken != nil {
		return st.broken
	}
	if st.win != nil {
		switch {
		case size >= st.win.off:
			st.win.truncate(size)
			st.size = size
			return nil
		case size <= st.baseLen:
			// Everything written since the base is cut off: start the
			// stream again from size.
			st.abortStream()
			st.baseLen, st.size = size, size
			st.setWin(&window{off: size})
			return nil
		}
		if err := st.toOverlay("truncate", size, 0); err != nil {
			return err
		}
	}
	if size < st.size {
		if st.spool != nil && !st.spoolFull && size < st.spool.Size() {
			if err := st.spool.Truncate(size); err != nil {
				if !isNoSpace(err) {
					return err
				}
				// The spool is not written again (its cut-off bytes may
				// remain): the chunk cut in two moves to memory.
				st.spoolFull = true
			}
		}
		if c := size / chunk; size%chunk != 0 && st.has(c) {
			if st.spoolFull && st.mem[c] == nil {
				if err := st.toMem(c); err != nil {
					return err
				}
			}
			if b := st.mem[c]; b != nil {
				clear(b[size%chunk:])
			}
		}
		for c := (size + chunk - 1) / chunk; c < int64(len(st.have))*64; c++ {
			st.have[c/64] &^= 1 << (c % 64)
			st.dropMem(c)
		}
		st.baseLen = min(st.baseLen, size)
	}
	st.size = size
	return nil
}

// toOverlay leaves stream mode.
func (st *staging) toOverlay(why string, off int64, n int) error {
	w := st.win
	defer st.advanced() // nobody waits for a turn in overlay mode
	if bucket, key, _ := st.n.loc(); st.n.fs.log.Enabled(context.Background(), slog.LevelDebug) {
		st.n.fs.log.Debug("staging a file in the spool", "bucket", bucket, "key", key, "why", why,
			"off", off, "len", n, "window", w.off, "buffered", len(w.buf), "streaming", st.put != nil)
	}
	if st.put != nil && st.teeOK {
		// What was sent is copied in tee: the overlay takes it, over the
		// base, so that a failed commit loses nothing (see staging.tee).
		return st.unstream(why)
	}
	if st.put != nil {
		// End the stream: what it staged (uncommitted, seen by nobody
		// else) becomes the base. The content is unchanged.
		staged, err := st.finishStream()
		if errors.Is(err, errUnstreamed) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.base != nil {
			st.base.release()
		}
		st.base, st.baseLen, st.size = stagedBase{staged}, staged.Size(), staged.Size()
		st.setWin(nil)
		return nil
	}
	// Nothing left the process: move the window into the spool.
	st.setWin(nil)
	if len(w.buf) > 0 {
		return st.overlayWrite(w.buf, w.off)
	}
	return nil
}

// ---- overlay mode

func (st *staging) has(c int64) bool {
	return c/64 < int64(len(st.have)) && st.have[c/64]&(1<<(c%64)) != 0
}

// anyChunk reports whether any chunk is in the spool.
func (st *staging) anyChunk() bool {
	for _, w := range st.have {
		if w != 0 {
			return true
		}
	}
	return false
}

func (st *staging) mark(c int64) {
	for int64(len(st.have)) <= c/64 {
		st.have = append(st.have, 0)
	}
	st.have[c/64] |= 1 << (c % 64)
}

func (st *staging) overlayWrite(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if !st.spoolFull && !st.anyMem(off, len(p)) {
		err := st.spoolWrite(p, off)
		if err == nil || !isNoSpace(err) {
			return err
		}
		// The disk is full: this write and every later one go to memory.
		st.spoolFull = true
	}
	return st.memWrite(p, off)
}

// isNoSpace reports whether err is a full disk (or the store's reserve).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// anyMem reports whether a chunk that [off, off+n) touches is in mem.
func (st *staging) anyMem(off int64, n int) bool {
	if len(st.mem) == 0 {
		return false
	}
	for c := off / chunk; c <= (off+int64(n)-1)/chunk; c++ {
		if st.mem[c] != nil {
			return true
		}
	}
	return false
}

// memWrite stores p at off in memory chunks, each filled first with what
// the content holds there.
func (st *staging) memWrite(p []byte, off int64) error {
	end := off + int64(len(p))
	for c := off / chunk; c <= (end-1)/chunk; c++ {
		if st.mem[c] == nil {
			if err := st.toMem(c); err != nil {
				return err
			}
		}
		cs := c * chunk
		lo, hi := max(off, cs), min(end, cs+chunk)
		copy(st.mem[c][lo-cs:hi-cs], p[lo-off:hi-off])
		st.mark(c)
	}
	return nil
}

// toMem moves chunk c into memory with the content's bytes there (the
// spool's, the base's or zeros), within the mount's budget.
func (st *staging) toMem(c int64) error {
	if st.n.fs.memStaged.Add(chunk) > memStageMax {
		st.n.fs.memStaged.Add(-chunk)
		return fmt.Errorf("staging in memory: more than %d MiB held for a full disk: %w", memStageMax>>20, syscall.ENOSPC)
	}
	b := make([]byte, chunk)
	cs := c * chunk
	switch {
	case st.has(c):
		n, err := st.spool.ReadAt(b, cs)
		if err != nil && err != io.EOF {
			st.n.fs.memStaged.Add(-chunk)
			return err
		}
		clear(b[n:])
	case cs < st.baseLen:
		if err := readBase(st.base, b[:min(chunk, st.baseLen-cs)], cs); err != nil {
			st.n.fs.memStaged.Add(-chunk)
			return err
		}
	}
	if st.mem == nil {
		st.mem = make(map[int64][]byte)
	}
	st.mem[c] = b
	return nil
}

// dropMem forgets chunk c's memory copy.
func (st *staging) dropMem(c int64) {
	if st.mem[c] != nil {
		delete(st.mem, c)
		st.n.fs.memStaged.Add(-chunk)
	}
}

// spoolWrite stores p at off in the spool.
func (st *staging) spoolWrite(p []byte, off int64) error {
	if st.spool == nil {
		sp, err := st.store.NewSpool()
		if err != nil {
			return err
		}
		st.spool = sp
	}
	end := off + int64(len(p))
	first, last := off/chunk, (end-1)/chunk
	// A chunk the write covers only in part takes the base's bytes first.
	for _, c := range []int64{first, last} {
		cs := c * chunk
		whole := off <= cs && end >= cs+chunk
		if whole || st.has(c) || cs >= st.baseLen {
			continue
		}
		buf := make([]byte, min(cs+chunk, st.baseLen)-cs)
		if err := readBase(st.base, buf, cs); err != nil {
			return err
		}
		if _, err := st.spool.WriteAt(buf, cs); err != nil {
			return err
		}
		st.mark(c)
	}
	if _, err := st.spool.WriteAt(p, off); err != nil {
		return err
	}
	for c := first; c <= last; c++ {
		st.mark(c)
	}
	return nil
}

// overlayRead fills p (within the content) from the spool, the base and
// zeros.
func (st *staging) overlayRead(p []byte, off int64) error {
	end := off + int64(len(p))
	for pos := off; pos < end; {
		if b := st.mem[pos/chunk]; b != nil {
			run := min((pos/chunk+1)*chunk, end)
			copy(p[pos-off:run-off], b[pos%chunk:])
			pos = run
			continue
		}
		inSpool := st.has(pos / chunk)
		run := min((pos/chunk+1)*chunk, end)
		for run < end && st.has(run/chunk) == inSpool && st.mem[run/chunk] == nil {
			run = min(run+chunk, end)
		}
		seg := p[pos-off : run-off]
		if inSpool {
			n, err := st.spool.ReadAt(seg, pos)
			if err != nil && err != io.EOF {
				return err
			}
			clear(seg[n:]) // past the spool's end: zeros
		} else {
			b := max(0, min(run, st.baseLen)-pos)
			if b > 0 {
				if err := readBase(st.base, seg[:b], pos); err != nil {
					return err
				}
			}
			clear(seg[b:])
		}
		pos = run
	}
	return nil
}

// overlayReader reads the content for the commit.
type overlayReader struct{ st *staging }

func (r overlayReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.st.size {
		return 0, io.EOF
	}
	var eof error
	if rest := r.st.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	if err := r.st.overlayRead(p, off); err != nil {
		return 0, err
	}
	return len(p), eof
}

func readBase(h io.ReaderAt, p []byte, off int64) error {
	n, err := h.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err == io.EOF {
		err = fmt.Errorf("%w: version ends at %d, want %d bytes", cryptostore.ErrCorruptBlob, off+int64(n), off+int64(len(p)))
	}
	return err
}

// ---- commit

// finalMeta is the metadata committed with the data: the mtime of the last
// write unless one was set since, and set-id bits cleared by a write (the
// kernel leaves that to us: handle_killpriv_v2).
func (st *staging) finalMeta() cryptostore.ObjectMeta {
	m := st.meta.Clone()
	if st.wrote && !st.mtimeSet {
		m.SetMtime(time.Now())
	}
	if mode, ok := m.Mode(); ok && st.wrote && mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
		setPOSIXField(&m, cryptostore.MetaMode, mode&^(syscall.S_ISUID|syscall.S_ISGID))
	}
	return m
}

// commit writes the content as the object's new version and returns a
// handle of exactly that version (nil in the rare case that it was replaced
// before it could be held: see cryptostore.Staged.Commit). The content
// stays staged if the commit fails, unless it was streaming (then it is
// lost: broken).
func (st *staging) commit(ctx context.Context, bucket, key string) (*cryptostore.Handle, error) {
	if st.broken != nil {
		return nil, st.broken
	}
	m := st.finalMeta()
	if st.put != nil {
		if tail := st.size - st.win.off - int64(len(st.win.buf)); tail < tailHole {
			staged, err := st.finishStream()
			switch {
			case errors.Is(err, errUnstreamed):
				// The content is in the overlay: committed below.
			case err != nil:
				return nil, err
			default:
				h, err := staged.Commit(ctx, &m)
				if err == nil {
					return h, nil
				}
				// The staged data went with the failed commit; the copy
				// keeps the content for the next one.
				if !st.teeOK {
					st.broken = err
					return nil, err
				}
				if uerr := st.unstream("commit failed"); uerr != nil {
					return nil, uerr
				}
				return nil, err
			}
		}
	}
	// prev is the base the stream started from, kept (with the copy of
	// what was sent) until the commit succeeds, so that a failed one loses
	// nothing.
	var prev base
	var prevLen int64
	keep := false
	if st.put != nil {
		// A long run of zeros after what was written (a truncate past
		// the end, a sparse copy): end the stream where the data ends
		// and store the rest as a hole.
		size := st.size
		st.size = st.win.off + int64(len(st.win.buf))
		staged, err := st.finishStream()
		st.size = size
		switch {
		case errors.Is(err, errUnstreamed):
			// The content is in the overlay: committed below.
		case err != nil:
			return nil, err
		default:
			if st.teeOK {
				prev, prevLen, keep = st.base, st.baseLen, true
			} else if st.base != nil {
				st.base.release()
			}
			st.base, st.baseLen = stagedBase{staged}, staged.Size()
			st.setWin(nil)
		}
	}
	if sb, ok := st.base.(stagedBase); ok && st.win == nil && !st.anyChunk() && st.size == st.baseLen && st.size == sb.Size() {
		// The content is what the stream staged, unchanged since: commit
		// it as it is.
		st.base = nil
		h, err := sb.Commit(ctx, &m)
		if err != nil {
			st.broken = err
			return nil, err
		}
		return h, nil
	}
	// Only what was written since the base is sealed and stored: the
	// rest is shared with the base version or a hole (cryptostore.Compose).
	in := &cryptostore.ComposeInput{Bucket: bucket, Key: key, Meta: m, Size: st.size, BaseLen: st.baseLen}
	switch b := st.base.(type) {
	case *pinned:
		in.Base = b.h
	case stagedBase:
		// The stream's uncommitted data: the new version takes it over
		// rather than copy it.
		in.BaseStaged = b.Staged
	}
	if w := st.win; w != nil {
		// Nothing was sent (no stream runs), so the window starts where
		// the base ends.
		if len(w.buf) > 0 {
			in.Changed = []cryptostore.Range{{Off: w.off, Len: int64(len(w.buf))}}
		}
		in.Content = windowReader{st}
	} else {
		in.Changed = st.spoolRanges()
		in.Content = overlayReader{st}
	}
	staged, err := st.store.Compose(ctx, in)
	var h *cryptostore.Handle
	if err == nil {
		h, err = staged.Commit(ctx, nil)
	}
	switch {
	case err == nil:
		if prev != nil {
			prev.release()
		}
	case keep:
		// The staged base may have gone with the failed commit: the
		// content goes back to the base the stream started from and the
		// copy of what it sent.
		st.base.release()
		st.base, st.baseLen = prev, prevLen
		st.overlayFromTee(nil) // a failure breaks the staging; the commit's error is returned
	case in.BaseStaged != nil:
		st.broken = err // the staged base may have gone with it
	}
	return h, err
}

// tailHole: zeros past the written end of at least this many bytes are
// stored as a hole rather than streamed.
const tailHole = 1 << 20

// spoolRanges returns the runs of chunks in the spool, within the content.
func (st *staging) spoolRanges() []cryptostore.Range {
	var out []cryptostore.Range
	for c := int64(0); c < int64(len(st.have))*64 && c*chunk < st.size; c++ {
		if !st.has(c) {
			continue
		}
		off := c * chunk
		n := min(chunk, st.size-off)
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == off {
			out[k].Len += n
			continue
		}
		out = append(out, cryptostore.Range{Off: off, Len: n})
	}
	return out
}

// windowReader reads the content in stream mode with nothing sent: the
// base up to baseLen, the window from there (past it, zeros).
type windowReader struct{ st *staging }

func (r windowReader) ReadAt(p []byte, off int64) (int, error) {
	st := r.st
	if off >= st.size {
		return 0, io.EOF
	}
	var eof error
	if rest := st.size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	end := off + int64(len(p))
	if b := min(end, st.baseLen) - off; b > 0 {
		if err := readBase(st.base, p[:b], off); err != nil {
			return 0, err
		}
	}
	from := max(off, st.baseLen)
	if gap := min(end, st.win.off); from < gap {
		clear(p[from-off : gap-off])
		from = gap
	}
	if from < end {
		st.win.read(p[from-off:], from)
	}
	return len(p), eof
}

// close releases what the staging holds; uncommitted data is dropped.
func (st *staging) close() {
	st.advanced()
	st.abortStream()
	if st.spool != nil {
		st.spool.Close()
		st.spool = nil
	}
	for c := range st.mem {
		st.dropMem(c)
	}
	st.dropTee()
	if st.base != nil {
		st.base.release()
		st.base = nil
	}
	st.setWin(nil)
}

// ---- the stream's window

// window holds the bytes [off, off+len(buf)) not yet sent to the stream.
// spans says which of them were written (the rest are zeros, or not here
// yet).
type window struct {
	off   int64
	buf   []byte
	spans []span // sorted, disjoint, not touching; relative to off
}

type span struct{ lo, hi int64 }

// end returns where the bytes written in order from off end.
func (w *window) end() int64 {
	if len(w.spans) == 0 || w.spans[0].lo != 0 {
		return w.off
	}
	return w.off + w.spans[0].hi
}

func (w *window) fits(off int64, n int) bool {
	return off >= w.off && off+int64(n)-w.off <= winMax
}

func (w *window) write(p []byte, off int64) {
	rel := off - w.off
	end := rel + int64(len(p))
	if end > int64(len(w.buf)) {
		w.grow(end)
	}
	copy(w.buf[rel:], p)
	w.addSpan(span{rel, end})
}

// grow extends buf to n bytes, zero-filled.
func (w *window) grow(n int64) {
	if n <= int64(cap(w.buf)) {
		old := len(w.buf)
		w.buf = w.buf[:n]
		clear(w.buf[old:])
		return
	}
	nb := make([]byte, n, w.capFor(n))
	copy(nb, w.buf)
	w.buf = nb
}

// capFor is the capacity buf grows to for n bytes: at least double what
// it has, at least a page. (The mount's writes have it grown by
// staging.growWin, which counts it, before they write.)
func (w *window) capFor(n int64) int64 { return max(n, 2*int64(cap(w.buf)), pageSize) }

func (w *window) addSpan(s span) {
	out := w.spans[:0:0]
	placed := false
	for _, t := range w.spans {
		switch {
		case t.hi < s.lo:
			out = append(out, t)
		case s.hi < t.lo:
			if !placed {
				out = append(out, s)
				placed = true
			}
			out = append(out, t)
		default: // overlapping or touching: merge
			s = span{min(s.lo, t.lo), max(s.hi, t.hi)}
		}
	}
	if !placed {
		out = append(out, s)
	}
	w.spans = out
}

// ready returns how many bytes from the start are written, in whole pages.
func (w *window) ready() int64 {
	if len(w.spans) == 0 || w.spans[0].lo != 0 {
		return 0
	}
	return w.spans[0].hi &^ (pageSize - 1)
}

// drop removes the first n bytes, which were sent.
func (w *window) drop(n int64) {
	copy(w.buf, w.buf[n:])
	w.buf = w.buf[:int64(len(w.buf))-n]
	w.off += n
	out := w.spans[:0]
	for _, s := range w.spans {
		if s.hi <= n {
			continue
		}
		out = append(out, span{max(s.lo-n, 0), s.hi - n})
	}
	w.spans = out
}

// read copies the window's bytes at off (≥ w.off) into p; past buf, zeros.
func (w *window) read(p []byte, off int64) {
	rel := off - w.off
	n := 0
	if rel < int64(len(w.buf)) {
		n = copy(p, w.buf[rel:])
	}
	clear(p[n:])
}

// truncate cuts the content at size (≥ w.off).
func (w *window) truncate(size int64) {
	rel := size - w.off
	if rel < int64(len(w.buf)) {
		w.buf = w.buf[:rel]
	}
	out := w.spans[:0]
	for _, s := range w.spans {
		if s.lo >= rel {
			continue
		}
		out = append(out, span{s.lo, min(s.hi, rel)})
	}
	w.spans = out
}
