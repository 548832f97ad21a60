package cryptostore

// Several gateways over one store.
//
// When the metadata engine is shared (meta.DB.Shared: PostgreSQL, etcd),
// several gateways (sealfs processes, each with its own Dir) serve the same
// records, and their blobs live in one shared directory (Config.BlobDir).
// What is per gateway and what is shared, and why it stays correct:
//
//   - Change events. Each gateway's own commits reach its Config.OnChange
//     at once, as with one gateway. Every other gateway's commits come from
//     the engine's change feed (meta.DB.Watch) and reach OnChange too,
//     within the feed's delay (milliseconds; the documented bound is one
//     second): the mount invalidates the kernel's caches with them. The
//     feed also brings back this gateway's own commits; those echoes are
//     dropped (echoes below), so the mount does not invalidate what it has
//     just written. After a gap in the feed (a reconnection) OnChange gets
//     a ChangeAll: anything may have changed, drop every cache.
//   - Reader pins are per process (blobFiles.refs). A blob that a commit
//     stopped referencing is therefore not removed by the committer:
//     it is recorded in the metadata as doomed (meta.Txn.DoomBlob) with a
//     grace period (Config.SharedGrace, default one minute), and any
//     gateway's sweeper removes it once the period is over and no read pin
//     recorded in the metadata (meta.DB.PinBlobs) still names it. A gateway
//     records pins for the blobs its readers hold, every quarter of the
//     grace period, valid for a whole period: a read that lasts longer
//     than a moment is covered by a pin before the blob's grace runs out,
//     and keeps it as long as it lasts. Short reads write nothing. The
//     bound: a gateway that cannot write its pins for a whole grace
//     period (the metadata engine unreachable, the process stopped) may
//     find a blob it holds open gone.
//   - Blobs in flight (written, not yet committed) are per process too.
//     Their temporary files are in the gateway's own temporary directory
//     (BlobDir/.tmp/<gateway id>); a blob renamed into place and not yet
//     committed has its modification time refreshed every quarter of the
//     grace period. The orphan collector of a shared store removes only
//     unreferenced, undoomed blobs older than four grace periods, so
//     another gateway's blob in flight is never taken for an orphan, and a
//     dead gateway's are collected later.
//   - Durability: the server engines' commits are durable when they
//     return, so the group commit, the background sync and the pending
//     removals of durable.go have nothing to wait for.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sealfs/sealfs/meta"
)

// DefaultSharedGrace is Config.SharedGrace when 0.
const DefaultSharedGrace = time.Minute

// ChangeAll is the kind of the ChangeEvent sent after a gap in the change
// feed of a shared store: changes may have been missed, so anything may
// have changed (Bucket and Key are empty).
const ChangeAll ChangeKind = 100

// sharedState is what a Store keeps when its metadata is shared.
type sharedState struct {
	gateway string
	grace   time.Duration
	echo    echoes

	mu     sync.Mutex
	pinned map[meta.BlobID]struct{} // pins recorded in the metadata
}

// GatewayID returns the id this gateway uses in shared records (read pins,
// leases): Config.GatewayID, or the one kept in Dir/gateway-id.
func (s *Store) GatewayID() string { return s.cfg.GatewayID }

// Shared reports whether the store's metadata is shared by several
// gateways.
func (s *Store) Shared() bool { return s.sh != nil }

// gatewayID returns the id kept in dir/gateway-id, making one the first
// time.
func gatewayID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "gateway-id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	host, _ := os.Hostname()
	var r [6]byte
	rand.Read(r[:])
	id := strings.Map(func(c rune) rune {
		if c == '/' || c == 0 || c == ' ' {
			return '-'
		}
		return c
	}, host) + "-" + hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing gateway id: %w", err)
	}
	return id, nil
}

// openBlobStore opens the blob directory of cfg: Dir/blobs (temporary files
// in Dir/tmp), or a shared BlobDir (temporary files in
// BlobDir/.tmp/<gateway id>).
func openBlobStore(cfg *Config) (*blobFiles, error) {
	if cfg.Blobs != nil {
		grace := cfg.BlobGrace
		if grace == 0 {
			grace = DefaultBlobGrace
		}
		return openRemoteBlobs(cfg.Blobs, filepath.Join(cfg.Dir, "tmp"), grace, cfg.Logger)
	}
	if cfg.BlobDir == "" {
		return openBlobFiles(cfg.Dir, cfg.Logger)
	}
	return openBlobFilesAt(cfg.BlobDir, filepath.Join(cfg.BlobDir, ".tmp", cfg.GatewayID), cfg.Logger)
}

// startShared starts the work of a gateway of a shared store: the change
// feed, the pin recorder and the sweeper of doomed blobs.
func (s *Store) startShared(ctx context.Context) error {
	if s.cfg.SharedGrace <= 0 {
		s.cfg.SharedGrace = DefaultSharedGrace
	}
	s.sh = &sharedState{gateway: s.cfg.GatewayID, grace: s.cfg.SharedGrace, pinned: map[meta.BlobID]struct{}{}}
	s.sh.echo.init()
	s.blobs.keep = s.keepShared
	feed, err := s.meta.Watch(s.bg)
	switch {
	case errors.Is(err, meta.ErrNoWatch):
		feed = nil // one process (tests): nothing to hear
	case err != nil:
		return fmt.Errorf("cryptostore: change feed: %w", err)
	}
	if feed != nil {
		s.wg.Add(1)
		go s.feedLoop(feed)
	}
	s.wg.Add(1)
	go s.sharedLoop()
	return nil
}

// feedLoop passes the changes of other gateways to OnChange.
func (s *Store) feedLoop(feed <-chan meta.Change) {
	defer s.wg.Done()
	type stamped struct {
		c  meta.Change
		at time.Time
	}
	in := make(chan stamped, 4096)
	go func() {
		defer close(in)
		for c := range feed {
			in <- stamped{c, time.Now()}
		}
	}()
	for sc := range in {
		c := sc.c
		// Give the commit of ours that this may echo the moment it needs
		// to return and say what it wrote (changed).
		if d := time.Until(sc.at.Add(echoDelay)); d > 0 && !sleepCtx(s.bg, d) {
			for range in {
			}
			return
		}
		var ev ChangeEvent
		switch {
		case c.Reset:
			s.sh.echo.reset()
			s.logger.Warn("metadata change feed reconnected: invalidating every cache")
			ev = ChangeEvent{Kind: ChangeAll}
		case c.Key == "":
			if s.sh.echo.consume(echoKey(ChangeBucket, c.Bucket, "")) {
				continue
			}
			ev = ChangeEvent{Kind: ChangeBucket, Bucket: c.Bucket}
		default:
			if s.sh.echo.consume(echoKey(ChangePut, c.Bucket, c.Key)) {
				continue
			}
			ev = ChangeEvent{Kind: ChangePut, Bucket: c.Bucket, Key: c.Key}
			if c.Deleted {
				ev.Kind = ChangeDelete
			}
		}
		if s.cfg.OnChange != nil {
			s.cfg.OnChange(ev)
		}
	}
}

// sharedLoop records read pins, refreshes blobs in flight and removes due
// doomed blobs, every quarter of the grace period.
func (s *Store) sharedLoop() {
	defer s.wg.Done()
	every := s.sh.grace / 4
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		if err := s.recordPins(s.bg); err != nil && s.bg.Err() == nil {
			s.logger.Warn("recording read pins", "err", err)
		}
		s.blobs.touchInflight()
		if err := s.sweep(s.bg); err != nil && s.bg.Err() == nil {
			s.logger.Warn("removing replaced blobs", "err", err)
		}
	}
}

// recordPins writes (renews) a pin for every blob this gateway's readers
// hold, and drops the pins of blobs they let go of.
func (s *Store) recordPins(ctx context.Context) error {
	held := s.blobs.held()
	now := time.Now()
	var pin, unpin []meta.BlobID
	s.sh.mu.Lock()
	for id := range held {
		pin = append(pin, id)
	}
	for id := range s.sh.pinned {
		if _, ok := held[id]; !ok {
			unpin = append(unpin, id)
		}
	}
	s.sh.mu.Unlock()
	if len(pin) > 0 {
		if err := s.meta.PinBlobs(ctx, s.sh.gateway, pin, now.Add(s.sh.grace)); err != nil {
			return err
		}
	}
	if len(unpin) > 0 {
		if err := s.meta.UnpinBlobs(ctx, s.sh.gateway, unpin); err != nil {
			return err
		}
	}
	s.sh.mu.Lock()
	s.sh.pinned = held
	s.sh.mu.Unlock()
	return nil
}

// sweep removes the doomed blobs whose grace is over and that no gateway
// pins.
func (s *Store) sweep(ctx context.Context) error {
	now := time.Now()
	due, err := s.meta.DueBlobs(ctx, now, 1024)
	if err != nil {
		return err
	}
	var gone []meta.BlobRef
	for _, id := range due {
		if s.blobs.busy(id) {
			continue // our own reader: our pin is recorded soon
		}
		ok, err := s.meta.ForgetBlob(ctx, id, now)
		if err != nil {
			return err
		}
		if ok {
			gone = append(gone, meta.BlobRef{ID: id})
		}
	}
	// Unlinked now, or when a reader of ours that took it since lets go.
	s.blobs.remove(gone)
	if len(due) > 0 {
		return s.meta.DropExpiredPins(ctx, now)
	}
	return nil
}

// doom records blobs a commit stopped referencing, for removal after the
// grace period. When that fails the blobs become orphans, which the
// collector removes later.
func (s *Store) doom(ctx context.Context, refs []meta.BlobRef) {
	notBefore := time.Now().Add(s.sh.grace)
	err := s.meta.UpdateBulk(context.WithoutCancel(ctx), len(refs), func(tx *meta.Txn, i int) error {
		return tx.DoomBlob(refs[i].ID, notBefore)
	})
	if err != nil {
		s.logger.Warn("recording replaced blobs for removal (they are left to the orphan collector)", "count", len(refs), "err", err)
	}
}

// keepShared is the orphan collector's extra rule on a shared store: of
// the unreferenced blob files found, keep the doomed ones (the sweeper's)
// and those younger than four grace periods (another gateway's in flight).
func (s *Store) keepShared(ctx context.Context, files map[meta.BlobID]time.Time) error {
	err := s.meta.ForEachDoomedBlob(ctx, func(id meta.BlobID, _ time.Time) error {
		delete(files, id)
		return nil
	})
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-4 * s.cfg.SharedGrace)
	for id, mt := range files {
		if mt.After(cutoff) {
			delete(files, id)
		}
	}
	return nil
}

// ---- echoes

// echoes recognises the feed's reports of this gateway's own commits. A
// commit that reported a change through changed expects one event of its
// key from the feed, and that event is dropped. Should the event arrive
// before changed ran (the feed was faster than the commit's return), the
// event was passed on, and changed, seeing an event of that key a moment
// ago, expects nothing. An expectation not met within echoExpiry is
// forgotten. Either way a mistake costs at most one needless
// invalidation, or none; an event of another gateway's commit is dropped
// only when it arrives while an echo of ours of the same key is
// expected, and then our echo, which comes after, is passed on.
type echoes struct {
	mu   sync.Mutex
	want map[string]echoWant
	seen map[string]time.Time
}

type echoWant struct {
	n  int
	at time.Time
}

const echoExpiry = 5 * time.Second

// echoDelay is how long an event of the feed waits before it is looked at:
// the time for the commit that it may echo to return to its caller.
const echoDelay = 50 * time.Millisecond

// sleepCtx waits d, or less if ctx ends first (returning false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// echoSeenWindow: an event of a key this recent may have been the echo of
// the commit whose changed call comes now.
const echoSeenWindow = time.Second

func (e *echoes) init() {
	e.want = map[string]echoWant{}
	e.seen = map[string]time.Time{}
}

func echoKey(kind ChangeKind, bucket, key string) string {
	if kind == ChangeBucket {
		return "b\x00" + bucket
	}
	return "o\x00" + bucket + "\x00" + key
}

// expect records that a commit of ours wrote k.
func (e *echoes) expect(k string) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.seen[k]; ok && now.Sub(t) < echoSeenWindow {
		delete(e.seen, k)
		return
	}
	w := e.want[k]
	if now.Sub(w.at) > echoExpiry {
		w.n = 0
	}
	w.n++
	w.at = now
	e.want[k] = w
	if len(e.want) > 4096 {
		for k, w := range e.want {
			if now.Sub(w.at) > echoExpiry {
				delete(e.want, k)
			}
		}
	}
}

// consume reports whether an event of k is the echo of a commit of ours.
func (e *echoes) consume(k string) bool {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if w, ok := e.want[k]; ok {
		if w.n > 0 && now.Sub(w.at) <= echoExpiry {
			if w.n--; w.n == 0 {
				delete(e.want, k)
			} else {
				e.want[k] = w
			}
			return true
		}
		delete(e.want, k)
	}
	e.seen[k] = now
	if len(e.seen) > 4096 {
		for k, t := range e.seen {
			if now.Sub(t) > echoSeenWindow {
				delete(e.seen, k)
			}
		}
	}
	return false
}

func (e *echoes) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.want)
	clear(e.seen)
}
