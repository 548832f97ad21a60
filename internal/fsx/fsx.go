// Package fsx exercises a mounted file system the way programs use it and
// checks every byte it reads back. It owns two workloads, both written for
// sealfs (no code of other exercisers is used):
//
//   - Run drives one file through random operations — writes at random
//     offsets, appends, reads, truncates up and down, reads and writes
//     through shared memory maps, fallocate, hole punching and
//     copy_file_range where the file system has them, fsync, close and
//     reopen, reads through a second descriptor — against an in-memory copy
//     of what the file must hold, and compares every read with it.
//   - Stress runs a tree workload from several goroutines at once (create,
//     overwrite, append, truncate, unlink, rename, mkdir, rmdir, symlink,
//     setxattr, fsync, readdir; link where the file system has hard links)
//     and checks every file, directory and link at the end; Expect.Verify
//     checks the same again later, e.g. after the daemon restarted.
//
// Both print their seed (Config.Seed, StressConfig.Seed) so a failing run
// can be repeated.
//
// # Errors and what may be read after them
//
// Both are meant for a nearly full disk: ENOSPC and EDQUOT are allowed
// answers to any operation that may allocate (counted in Stats.NoSpace),
// any other error fails the run. What must hold is the close/fsync
// contract: a successful fsync or close acknowledges everything written
// before it, and until an error is reported every read returns exactly
// what was written. After an operation answered ENOSPC, the file holds
// either the state last acknowledged or the state the failed operation
// would have made (or the one just before it): never a mix, never bytes no
// state had — zeros where data was written are a wrong read. Run checks
// that after every such error, once the file was closed, reopened and
// fsynced; Stress checks it for the paths an error left uncertain, which it
// no longer touches, at the end.
package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config is one run of the single-file exerciser.
type Config struct {
	Path     string        // the file: created, or truncated if it exists
	Seed     uint64        // the random sequence: the same seed repeats the run
	Ops      int           // stop after this many operations (0: Duration alone)
	Duration time.Duration // stop after this long (0: Ops alone)
	MaxLen   int           // the largest the file grows (default 1 MiB)
	MaxOp    int           // the largest read or write (default 64 KiB)
	// MakeSpace is called when the file cannot be made durable again after
	// an ENOSPC (fsync keeps failing): the caller frees some space.
	MakeSpace func()
	Logf      func(format string, args ...any) // progress and errors (nil: none)

	afterOp func(opno int) // a test's hook, run after each operation
}

// Stats says what a run did.
type Stats struct {
	Ops         int            // operations run
	ByOp        map[string]int // operations run, by name
	Written     int64          // bytes written (write, mapwrite, copy)
	Read        int64          // bytes read and checked
	NoSpace     int            // operations answered ENOSPC or EDQUOT
	Faults      int            // faults in a memory map (SIGBUS: the page could not be read)
	Recoveries  int            // times the file was reopened and checked after one
	WrongReads  int            // reads that returned other bytes than the contract allows
	Unsupported []string       // operations the file system does not have (tried once)
	Elapsed     time.Duration
}

func (s *Stats) String() string {
	ops, unsupported := opCounts(s.ByOp, s.Unsupported)
	return fmt.Sprintf("%d ops in %v (%s), %d bytes written, %d read and checked, %d ENOSPC, %d faults in maps, %d recoveries, %d wrong reads%s",
		s.Ops, s.Elapsed.Round(time.Millisecond), ops, s.Written, s.Read, s.NoSpace, s.Faults, s.Recoveries, s.WrongReads, unsupported)
}

// opCounts formats operation counts by name ("read 3, write 5") and the
// operations a file system did not have ("; not supported: ...", or "").
func opCounts(byOp map[string]int, unsupported []string) (ops, notSupported string) {
	names := make([]string, 0, len(byOp))
	for k := range byOp {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, byOp[k])
	}
	if len(unsupported) > 0 {
		notSupported = "; not supported: " + strings.Join(unsupported, ", ")
	}
	return strings.Join(parts, ", "), notSupported
}

// ErrWrongRead is wrapped by the error of a run that read other bytes than
// the contract allows.
var ErrWrongRead = errors.New("fsx: wrong read")

// NoSpace reports whether err is the file system being full.
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// unsupported reports whether err says the file system lacks an operation.
func unsupported(err error) bool {
	return errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) ||
		errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.ENODEV)
}

// fill writes the bytes a write of op number opno puts at off: never zero,
// so that zeros read where data was written are always wrong.
func fill(p []byte, off int64, opno int) {
	for i := range p {
		p[i] = 1 + byte((uint64(off+int64(i))*31+uint64(opno)*131)%255)
	}
}

type runner struct {
	cfg   Config
	rng   *rand.Rand
	fd    int
	cur   []byte // what the file holds now
	acked []byte // what it held at the last successful fsync or close
	st    Stats
	no    map[string]bool // operations found unsupported
	hist  []string        // the last operations, for the report of a wrong read
	opno  int
}

// Run runs the single-file exerciser. It returns what the file must hold
// (it ends with an fsync and a close that succeeded, or the error that
// stopped it).
func Run(cfg Config) (content []byte, st Stats, err error) {
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = 1 << 20
	}
	if cfg.MaxOp <= 0 {
		cfg.MaxOp = 64 << 10
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	r := &runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5ea1f5)), fd: -1,
		no: map[string]bool{}, st: Stats{ByOp: map[string]int{}}}
	cfg.Logf("fsx %s: seed %d", cfg.Path, cfg.Seed)
	start := time.Now()
	defer func() {
		r.st.Elapsed = time.Since(start)
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		st = r.st
	}()
	fd, err := unix.Open(cfg.Path, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, r.st, fmt.Errorf("fsx: create %s: %w", cfg.Path, err)
	}
	r.fd = fd
	for n := 0; (cfg.Ops == 0 || n < cfg.Ops) && (cfg.Duration == 0 || time.Since(start) < cfg.Duration); n++ {
		if err := r.step(); err != nil {
			return nil, r.st, err
		}
		if cfg.afterOp != nil {
			cfg.afterOp(r.opno)
		}
	}
	// End on a state made durable and closed.
	for i := 0; ; i++ {
		err := unix.Fsync(r.fd)
		if err == nil {
			break
		}
		if !NoSpace(err) || i == 20 {
			return nil, r.st, fmt.Errorf("fsx: final fsync: %w", err)
		}
		r.st.NoSpace++
		if err := r.recover("final fsync", r.cur); err != nil {
			return nil, r.st, err
		}
	}
	r.acked = clone(r.cur)
	if err := unix.Close(r.fd); err != nil {
		r.fd = -1
		return nil, r.st, fmt.Errorf("fsx: final close after a successful fsync: %w", err)
	}
	r.fd = -1
	return r.acked, r.st, nil
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

// resize returns b at length n, zero-filled when it grows.
func resize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n]
	}
	return append(b, make([]byte, n-len(b))...)
}

func (r *runner) note(format string, args ...any) {
	s := fmt.Sprintf("#%d ", r.opno) + fmt.Sprintf(format, args...)
	r.hist = append(r.hist, s)
	if len(r.hist) > 30 {
		r.hist = r.hist[len(r.hist)-30:]
	}
}

// op names and weights.
var ops = []struct {
	name   string
	weight int
}{
	{"read", 20}, {"write", 22}, {"append", 5}, {"mapread", 6}, {"mapwrite", 6},
	{"truncate", 8}, {"fallocate", 3}, {"keepsize", 1}, {"punch", 2}, {"copy", 4},
	{"fsync", 6}, {"reopen", 5}, {"otherfd", 3},
}

var opWeight = func() int {
	t := 0
	for _, o := range ops {
		t += o.weight
	}
	return t
}()

func (r *runner) pick() string {
	for {
		w := r.rng.IntN(opWeight)
		for _, o := range ops {
			if w < o.weight {
				if r.no[o.name] {
					break
				}
				return o.name
			}
			w -= o.weight
		}
	}
}

// span picks an offset and a length for an operation within limit bytes.
func (r *runner) span(limit int) (int, int) {
	if limit <= 0 {
		return 0, 0
	}
	off := r.rng.IntN(limit)
	n := 1 + r.rng.IntN(min(r.cfg.MaxOp, limit-off))
	return off, n
}

func (r *runner) step() error {
	r.opno++
	r.st.Ops++
	name := r.pick()
	r.st.ByOp[name]++
	size := len(r.cur)
	before := r.cur
	var after []byte // the state the operation makes, when it fails
	var err error
	switch name {
	case "read":
		off, n := r.span(size + r.cfg.MaxOp/4)
		r.note("read %d+%d (size %d)", off, n, size)
		return r.checkRead("read", off, n)
	case "write", "append":
		off, n := r.span(r.cfg.MaxLen)
		if name == "append" {
			off = size
			n = min(1+r.rng.IntN(r.cfg.MaxOp), r.cfg.MaxLen-size)
			if n <= 0 {
				return nil
			}
		}
		p := make([]byte, n)
		fill(p, int64(off), r.opno)
		r.note("%s %d+%d (size %d)", name, off, n, size)
		after = resize(clone(r.cur), max(size, off+n))
		copy(after[off:], p)
		var k int
		k, err = unix.Pwrite(r.fd, p, int64(off))
		if err == nil && k != n {
			return fmt.Errorf("fsx: op %d: short write %d of %d at %d", r.opno, k, n, off)
		}
		if err == nil {
			r.st.Written += int64(n)
		}
	case "mapread":
		if size == 0 {
			return nil
		}
		off, n := r.span(size)
		r.note("mapread %d+%d (size %d)", off, n, size)
		return r.mapRead(off, n)
	case "mapwrite":
		off, n := r.span(r.cfg.MaxLen)
		p := make([]byte, n)
		fill(p, int64(off), r.opno)
		r.note("mapwrite %d+%d (size %d)", off, n, size)
		after = resize(clone(r.cur), max(size, off+n))
		copy(after[off:], p)
		err = r.mapWrite(p, off)
		if err == nil {
			r.st.Written += int64(n)
		}
	case "truncate":
		n := r.rng.IntN(r.cfg.MaxLen + 1)
		if r.rng.IntN(3) == 0 {
			n = r.rng.IntN(size + 1) // more often down
		}
		r.note("truncate %d -> %d", size, n)
		after = resize(clone(r.cur), n)
		err = unix.Ftruncate(r.fd, int64(n))
	case "fallocate", "keepsize":
		off, n := r.span(r.cfg.MaxLen)
		mode := uint32(0)
		if name == "keepsize" {
			mode = unix.FALLOC_FL_KEEP_SIZE
		}
		r.note("%s %d+%d (size %d)", name, off, n, size)
		after = clone(r.cur)
		if mode == 0 {
			after = resize(after, max(size, off+n))
		}
		err = unix.Fallocate(r.fd, mode, int64(off), int64(n))
	case "punch":
		if size == 0 {
			return nil
		}
		off, n := r.span(size)
		r.note("punch %d+%d (size %d)", off, n, size)
		after = clone(r.cur)
		clear(after[off:min(off+n, size)])
		err = unix.Fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(off), int64(n))
	case "copy":
		if size < 2 {
			return nil
		}
		// Two ranges of the file that do not overlap.
		n := 1 + r.rng.IntN(min(r.cfg.MaxOp, size/2))
		src := r.rng.IntN(size - n + 1)
		dst := r.rng.IntN(r.cfg.MaxLen - n + 1)
		if dst < src+n && src < dst+n {
			return nil
		}
		r.note("copy %d+%d -> %d (size %d)", src, n, dst, size)
		after = resize(clone(r.cur), max(size, dst+n))
		copy(after[dst:], r.cur[src:src+n])
		soff, doff := int64(src), int64(dst)
		var k int
		k, err = unix.CopyFileRange(r.fd, &soff, r.fd, &doff, n, 0)
		if err == nil && k != n {
			// A short copy is allowed: apply what was copied.
			after = resize(clone(r.cur), max(size, dst+k))
			copy(after[dst:], r.cur[src:src+k])
		}
		if err == nil {
			r.st.Written += int64(k)
		}
	case "fsync":
		r.note("fsync (size %d)", size)
		if err = unix.Fsync(r.fd); err == nil {
			r.acked = clone(r.cur)
			return nil
		}
		after = r.cur
	case "reopen":
		r.note("close and reopen (size %d)", size)
		err = unix.Close(r.fd)
		r.fd = -1
		if err == nil {
			r.acked = clone(r.cur)
			if r.fd, err = unix.Open(r.cfg.Path, unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
				return fmt.Errorf("fsx: op %d: reopen: %w", r.opno, err)
			}
			return nil
		}
		after = r.cur
	case "otherfd":
		off, n := r.span(size + 1)
		r.note("read %d+%d through a second descriptor (size %d)", off, n, size)
		fd, oerr := unix.Open(r.cfg.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			return fmt.Errorf("fsx: op %d: open a second descriptor: %w", r.opno, oerr)
		}
		rerr := r.checkReadFd(fd, "read through a second descriptor", off, n)
		// Its close flushes the file: it acknowledges the writes.
		cerr := unix.Close(fd)
		if rerr != nil {
			return rerr
		}
		if cerr == nil {
			r.acked = clone(r.cur)
			return nil
		}
		err, after = cerr, r.cur
	}
	if err == nil {
		r.cur = after
		return nil
	}
	if unsupported(err) && (name == "punch" || name == "copy" || name == "fallocate" || name == "keepsize" || name == "mapwrite") {
		return r.notSupported(name, err)
	}
	switch {
	case errors.Is(err, errFault):
		r.st.Faults++
	case NoSpace(err):
		r.st.NoSpace++
	default:
		return fmt.Errorf("fsx: op %d (%s): %w", r.opno, r.hist[len(r.hist)-1], err)
	}
	r.note("-> %v", err)
	return r.recover(name, before, after)
}

// recover runs after an operation answered ENOSPC: it closes the file,
// reopens it and fsyncs it until that succeeds (asking for space when it
// keeps failing), then checks that the file holds one of the states the
// contract allows — the one last acknowledged, or states (the one before
// the failed operation, the one it would have made) — and takes what it
// holds as the new acknowledged state.
func (r *runner) recover(what string, states ...[]byte) error {
	r.st.Recoveries++
	for i := 0; ; i++ {
		if r.fd >= 0 {
			unix.Close(r.fd) // its error is the one being recovered from
			r.fd = -1
		}
		// Any error but ENOSPC fails the run, ESTALE too: a file system
		// may have to give up an inode after a failed close, but the open
		// that finds it stale is its to retry (the kernel looks the name
		// up again and retries once), not the program's.
		fd, err := unix.Open(r.cfg.Path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil && !NoSpace(err) {
			return fmt.Errorf("fsx: op %d: reopen after ENOSPC: %w", r.opno, err)
		}
		if err == nil {
			r.fd = fd
			if err = unix.Fsync(fd); err == nil {
				break
			}
			if !NoSpace(err) {
				return fmt.Errorf("fsx: op %d: fsync after ENOSPC: %w", r.opno, err)
			}
		}
		if i == 50 {
			return fmt.Errorf("fsx: op %d: the file cannot be made durable after ENOSPC (tried %d times): %w", r.opno, i+1, err)
		}
		if r.cfg.MakeSpace != nil && i%2 == 1 {
			r.cfg.MakeSpace()
		}
		time.Sleep(time.Duration(10*(i+1)) * time.Millisecond)
	}
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return fmt.Errorf("fsx: op %d: fstat after ENOSPC: %w", r.opno, err)
	}
	got := make([]byte, st.Size)
	if st.Size > int64(r.cfg.MaxLen) {
		return r.wrong(fmt.Sprintf("after ENOSPC (%s) the file is %d bytes, more than it ever held", what, st.Size), nil, nil, 0)
	}
	if err := r.readFull(r.fd, got, 0); err != nil {
		return fmt.Errorf("fsx: op %d: read after ENOSPC: %w", r.opno, err)
	}
	r.st.Read += int64(len(got))
	cands := append([][]byte{r.acked}, states...)
	for _, c := range cands {
		if bytes.Equal(got, c) {
			r.cur, r.acked = got, clone(got)
			r.note("recovered: the file holds %d bytes, an allowed state", len(got))
			return nil
		}
	}
	// Say how it differs from each allowed state, and show the nearest.
	best, at := cands[0], -1
	var diffs []string
	for i, c := range cands {
		d := firstDiff(got, c)
		if d > at {
			best, at = c, d
		}
		name := "the last acknowledged"
		if i > 0 {
			name = fmt.Sprintf("state %d", i)
		}
		diffs = append(diffs, fmt.Sprintf("%s (%d bytes): %d bytes differ, the first at %d", name, len(c), countDiff(got, c), d))
	}
	return r.wrong(fmt.Sprintf("after ENOSPC (%s) the file (%d bytes) is none of the allowed states: %s",
		what, len(got), strings.Join(diffs, "; ")), got, best, 0)
}

// countDiff is how many bytes of a and b differ (a length difference
// counts as that many).
func countDiff(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// wrong records a wrong read and returns the error that ends the run.
func (r *runner) wrong(what string, got, want []byte, off int) error {
	r.st.WrongReads++
	var b strings.Builder
	fmt.Fprintf(&b, "op %d, seed %d: %s", r.opno, r.cfg.Seed, what)
	if got != nil || want != nil {
		d := firstDiff(got, want)
		fmt.Fprintf(&b, "\n  first difference at file offset %d (read %d bytes, want %d)", off+d, len(got), len(want))
		lo := max(0, d-8)
		fmt.Fprintf(&b, "\n  read: % x\n  want: % x", got[lo:min(len(got), d+24)], want[lo:min(len(want), d+24)])
		if z := zeroRun(got, want, d); z > 0 {
			fmt.Fprintf(&b, "\n  %d bytes of zeros where data was written", z)
		}
	}
	b.WriteString("\n  last operations:")
	for _, h := range r.hist {
		b.WriteString("\n    " + h)
	}
	return fmt.Errorf("%w: %s", ErrWrongRead, b.String())
}

// zeroRun is how many zeros got has from d on where want has data.
func zeroRun(got, want []byte, d int) int {
	n := 0
	for i := d; i < len(got) && i < len(want) && got[i] == 0 && want[i] != 0; i++ {
		n++
	}
	return n
}

func (r *runner) readFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		k, err := unix.Pread(fd, p, off)
		if err != nil {
			return err
		}
		if k == 0 {
			return fmt.Errorf("unexpected end of file at %d", off)
		}
		p, off = p[k:], off+int64(k)
	}
	return nil
}

func (r *runner) checkRead(what string, off, n int) error {
	return r.checkReadFd(r.fd, what, off, n)
}

// checkReadFd reads n bytes at off and compares them with the file's
// current state.
func (r *runner) checkReadFd(fd int, what string, off, n int) error {
	want := []byte{}
	if off < len(r.cur) {
		want = r.cur[off:min(off+n, len(r.cur))]
	}
	got := make([]byte, n)
	total := 0
	for total < n {
		k, err := unix.Pread(fd, got[total:], int64(off+total))
		if err != nil {
			if NoSpace(err) {
				// A read answers ENOSPC only when writes waiting to be
				// stored were lost: what the file holds is checked next.
				r.st.NoSpace++
				r.note("-> %v", err)
				return r.recover(what, r.cur)
			}
			return fmt.Errorf("fsx: op %d: %s at %d: %w", r.opno, what, off+total, err)
		}
		if k == 0 {
			break
		}
		total += k
	}
	got = got[:total]
	r.st.Read += int64(total)
	if !bytes.Equal(got, want) {
		return r.wrong(fmt.Sprintf("%s of %d bytes at %d (file size %d)", what, n, off, len(r.cur)), got, want, off)
	}
	return nil
}

// mapping maps [off, off+n) of the file (off rounded down to a page).
func (r *runner) mapping(off, n, prot int) ([]byte, int, error) {
	pg := os.Getpagesize()
	start := off &^ (pg - 1)
	m, err := unix.Mmap(r.fd, int64(start), off+n-start, prot, unix.MAP_SHARED)
	return m, off - start, err
}

// errFault is a fault in a memory map: SIGBUS, the file system could not
// supply a page. On a full disk it is how a map learns that writes waiting
// to be stored were lost (a read(2) would answer ENOSPC): the file is
// checked as after an ENOSPC.
var errFault = errors.New("fault in a memory map")

// faulted turns a fault in a mapping into errFault.
func faulted(err *error) {
	if e := recover(); e != nil {
		*err = fmt.Errorf("%w: %v", errFault, e)
	}
}

func (r *runner) mapRead(off, n int) (err error) {
	m, d, err := r.mapping(off, n, unix.PROT_READ)
	if err != nil {
		if unsupported(err) {
			return r.notSupported("mapread", err)
		}
		return fmt.Errorf("fsx: op %d: mmap: %w", r.opno, err)
	}
	defer unix.Munmap(m)
	got := make([]byte, n)
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer faulted(&err)
		copy(got, m[d:d+n])
	}()
	if errors.Is(err, errFault) {
		r.st.Faults++
		r.note("-> %v", err)
		return r.recover("mapread", r.cur)
	}
	r.st.Read += int64(n)
	if want := r.cur[off : off+n]; !bytes.Equal(got, want) {
		return r.wrong(fmt.Sprintf("mapread of %d bytes at %d (file size %d)", n, off, len(r.cur)), got, want, off)
	}
	return nil
}

func (r *runner) mapWrite(p []byte, off int) (err error) {
	if end := off + len(p); end > len(r.cur) {
		if err := unix.Ftruncate(r.fd, int64(end)); err != nil {
			return err
		}
	}
	m, d, err := r.mapping(off, len(p), unix.PROT_READ|unix.PROT_WRITE)
	if err != nil {
		if unsupported(err) {
			// Undo the truncate: the state must stay what it was.
			unix.Ftruncate(r.fd, int64(len(r.cur)))
			return err
		}
		return fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(m)
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer faulted(&err)
		copy(m[d:], p)
	}()
	if err != nil {
		return err
	}
	// No msync(MS_SYNC): on FUSE it is an fsync of the whole file that
	// writes back only the mapped range's pages, so it would commit the
	// file without writes still dirty elsewhere — a state no sequence of
	// whole operations made, which this model cannot check. The pages go
	// back with the next fsync or close, as every write's do.
	return nil
}

func (r *runner) notSupported(name string, err error) error {
	r.no[name] = true
	r.st.Unsupported = append(r.st.Unsupported, fmt.Sprintf("%s (%v)", name, err))
	r.cfg.Logf("fsx: %s is not supported (%v): not tried again", name, err)
	return nil
}
