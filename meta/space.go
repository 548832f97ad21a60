package meta

// Free space on the data disk.
//
// Badger writes its write-ahead logs, its value log and its tables through
// memory maps of files it sizes with ftruncate: the files are sparse, and a
// store into a page that has no disk block yet allocates one in the page
// fault. When the file system has no block left, the fault is a SIGBUS and
// the process dies (in valueLog.write, or in logFile.bootstrap when a new
// log is made at start). There is no error to handle: the only defence is
// never to let the disk run out while Badger may still touch a page it has
// not allocated.
//
// So meta keeps a reserve of free space (reserveBytes, sized below from the
// files Badger maps) and refuses writes that would eat into it: Update and
// UpdateBulk check the free space of the file system that holds the store
// before Badger is asked to write, and fail with an error wrapping
// ErrNoSpace (which errors.Is also matches with syscall.ENOSPC). The rest of
// the daemon writes blobs and spool files on the same disk; it asks
// CheckSpace before it writes. Reads are never refused.
//
// When the store opens with less than the reserve free, Badger is opened
// read-only (it then writes nothing at all) and a monitor reopens it
// read-write once the reserve is free again; writes are refused meanwhile.
// Badger cannot open read-only a store that was not closed cleanly (its
// newest write-ahead log needs truncating): then the store opens read-write
// if there is room for that recovery (roughly the write-ahead logs'
// contents, written out as tables), writes still refused, and otherwise
// Open fails with an error that says how much space to free.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoSpace is returned (wrapped) for a write refused because the data
// disk is full: its free space is below the reserve Badger needs to go on
// safely. errors.Is(err, syscall.ENOSPC) is true for it as well.
var ErrNoSpace error = noSpaceError{}

type noSpaceError struct{}

func (noSpaceError) Error() string { return "no space left on the data disk" }

// Is makes errors.Is(ErrNoSpace, syscall.ENOSPC) true, so that code which
// knows only errnos treats it as a full disk.
func (noSpaceError) Is(target error) bool { return target == syscall.ENOSPC }

// The reserve. While writes are accepted, Badger may have to allocate, at
// most:
//
//   - the rest of the active memtable's write-ahead log: it rotates once
//     MemTableSize bytes are written, after one more batch at most
//     (Badger's batches are at most 15% of MemTableSize);
//   - the rest of the active value-log file, likewise (ValueLogFileSize plus
//     a batch);
//   - the tables that the flushes of the memtables in memory write (the
//     active one and NumMemtables waiting), each at most about a memtable;
//   - what compactions write before they delete their inputs, and the
//     DISCARD file (1 MiB, mapped): compactionHeadroom;
//   - writes already past their check when the reserve was crossed
//     (concurrent commits of at most a batch, blob pieces of 256 KiB):
//     reserveMargin.
const (
	maxBatchBytes      = memTableSize * 15 / 100
	compactionHeadroom = 32 << 20
	reserveMargin      = 8 << 20
	reserveBytes       = memTableSize + maxBatchBytes +
		valueLogFileSize + maxBatchBytes +
		(numMemtables+1)*memTableSize +
		compactionHeadroom + reserveMargin
)

// Reserve is the free space, in bytes, below which the store refuses
// writes (about 141 MiB).
const Reserve = reserveBytes

// spaceCheckInterval is how often the monitor looks at the free space while
// the store is read-only, to reopen it read-write when space returns.
var spaceCheckInterval = time.Second

// space watches the free space of the file system that holds dir.
type space struct {
	dir     string
	reserve uint64
	log     *slog.Logger
	// statfs returns the bytes available to the daemon; a hook for tests.
	statfs func(dir string) (uint64, error)
	// full is what the last check found, to log each change once.
	full atomic.Bool
	// last is the last probe (free bytes and when), reused by checks
	// within spaceCacheFor while it shows spaceCacheMargin above what they
	// need: a statfs costs ~5 µs, and blobs check every 256 KiB.
	last atomic.Pointer[probe]
}

type probe struct {
	free uint64
	at   time.Time
}

// A probe is reused for spaceCacheFor while it shows spaceCacheMargin
// bytes more free than a check needs: writing that much within that time
// takes over 3 GB/s.
var spaceCacheFor = 20 * time.Millisecond

const spaceCacheMargin = 64 << 20

func newSpace(dir string, log *slog.Logger) *space {
	return &space{dir: dir, reserve: reserveBytes, log: log, statfs: statfsAvail}
}

// statfsAvail returns the bytes of the file system holding dir that an
// unprivileged process may still allocate (f_bavail: blocks kept for root
// are not counted, so the reserve is never the root-only blocks).
func statfsAvail(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("meta: statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// check returns nil when at least floor bytes are free, else an error
// wrapping ErrNoSpace. It logs when the disk becomes full and when space
// returns. When the free space cannot be read, writes go on: Badger will
// report real errors itself.
func (s *space) check(floor uint64) error {
	if p := s.last.Load(); p != nil && p.free >= floor+spaceCacheMargin && time.Since(p.at) < spaceCacheFor {
		return nil
	}
	free, err := s.statfs(s.dir)
	if err != nil {
		return nil
	}
	s.last.Store(&probe{free: free, at: time.Now()})
	if free >= floor {
		if free >= s.reserve && s.full.CompareAndSwap(true, false) {
			s.log.Info("meta: free space is back on the data disk; writes are accepted again",
				"dir", s.dir, "free_mib", free>>20, "reserve_mib", s.reserve>>20)
		}
		return nil
	}
	if s.full.CompareAndSwap(false, true) {
		s.log.Warn("meta: the data disk is full; writes are refused until space is freed (reads go on)",
			"dir", s.dir, "free_mib", free>>20, "reserve_mib", s.reserve>>20)
	}
	return fmt.Errorf("meta: the data disk is full (%d MiB free, %d MiB are kept in reserve); free space to write again: %w",
		free>>20, s.reserve>>20, ErrNoSpace)
}

// recoveryNeed estimates the free space Badger needs to open read-write a
// store in dir that it cannot open read-only: replaying the write-ahead
// logs writes their contents out as tables, and compactions may follow.
func recoveryNeed(dir string) uint64 {
	need := uint64(compactionHeadroom + reserveMargin)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return need
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), walSuffix) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, e.Name()), &st); err == nil {
			need += uint64(st.Blocks) * 512 // allocated, not the sparse length
		}
	}
	return need
}

// emptyStore reports whether dir holds no Badger store yet.
func emptyStore(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	return errors.Is(err, fs.ErrNotExist)
}
