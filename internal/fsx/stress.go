package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StressConfig is one run of the tree workload.
type StressConfig struct {
	Dir      string        // an existing, empty directory
	Seed     uint64        // the random sequence of worker w is (Seed, w)
	Workers  int           // goroutines (default 4)
	Ops      int           // operations per worker (0: Duration alone)
	Duration time.Duration // stop after this long (0: Ops alone)
	MaxFile  int           // the largest file written (default 256 KiB)
	// MakeSpace is called by a worker whose operations keep answering
	// ENOSPC: the caller frees some space.
	MakeSpace func()
	Logf      func(format string, args ...any)
}

// sharedDirs are the directories every worker creates entries in.
const sharedDirs = 4

type kind int

const (
	kFile kind = iota
	kDir
	kLink
)

// entry is what a path must be.
type entry struct {
	kind   kind
	data   []byte            // a file's content, a link's target
	xattrs map[string][]byte // user.* attributes set (files)
	loose  map[string]bool   // attributes whose setting failed: either value
}

// limbo is a path an error left uncertain: it holds one of cands (nil: it
// does not exist). Nothing but "resolve" touches it: once limboSettle has
// passed (the release of a handle whose close failed runs after close
// returns, and may still commit), resolve checks it holds an allowed state
// and takes that as known, so the workload goes on using (and freeing) it.
type limbo struct {
	kind  kind
	cands [][]byte
	since time.Time
}

// limboSettle is how long an uncertain path is left alone.
const limboSettle = 2 * time.Second

// Expect is what the tree must hold after a Stress run.
type Expect struct {
	dir    string
	known  map[string]*entry // relative paths
	limbos map[string]*limbo
	prefix []string // the names workers create start with one of these
}

// StressStats says what a Stress run did.
type StressStats struct {
	Ops         int
	ByOp        map[string]int
	Written     int64
	Read        int64
	NoSpace     int
	Uncertain   int // paths an error left in one of two states, unresolved at the end
	WrongReads  int
	Unsupported []string
	Elapsed     time.Duration
}

func (s *StressStats) String() string {
	ops, unsupported := opCounts(s.ByOp, s.Unsupported)
	return fmt.Sprintf("%d ops in %v (%s), %d bytes written, %d read and checked, %d ENOSPC, %d paths left uncertain, %d wrong reads%s",
		s.Ops, s.Elapsed.Round(time.Millisecond), ops, s.Written, s.Read, s.NoSpace, s.Uncertain, s.WrongReads, unsupported)
}

type worker struct {
	cfg     *StressConfig
	id      int
	rng     *rand.Rand
	known   map[string]*entry
	limbos  map[string]*limbo
	seq     int
	st      StressStats
	full    int // ENOSPCs in a row
	noLink  bool
	noXattr bool
}

// Stress runs the tree workload and checks the tree at its end. The
// returned Expect checks it again (Verify), e.g. after a restart.
func Stress(cfg StressConfig) (*Expect, StressStats, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.MaxFile <= 0 {
		cfg.MaxFile = 256 << 10
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	cfg.Logf("fsstress %s: seed %d, %d workers", cfg.Dir, cfg.Seed, cfg.Workers)
	start := time.Now()
	total := StressStats{ByOp: map[string]int{}}
	for i := range sharedDirs {
		if err := os.Mkdir(filepath.Join(cfg.Dir, fmt.Sprintf("s%d", i)), 0o755); err != nil {
			return nil, total, fmt.Errorf("fsstress: %w", err)
		}
	}
	ws := make([]*worker, cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{cfg: &cfg, id: i, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			known: map[string]*entry{}, limbos: map[string]*limbo{}, st: StressStats{ByOp: map[string]int{}}}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.run(start)
		}()
	}
	wg.Wait()
	exp := &Expect{dir: cfg.Dir, known: map[string]*entry{}, limbos: map[string]*limbo{}}
	for _, w := range ws {
		total.Ops += w.st.Ops
		for k, v := range w.st.ByOp {
			total.ByOp[k] += v
		}
		total.Written += w.st.Written
		total.Read += w.st.Read
		total.NoSpace += w.st.NoSpace
		total.WrongReads += w.st.WrongReads
		total.Uncertain += len(w.limbos)
		for _, u := range w.st.Unsupported {
			if !contains(total.Unsupported, u) {
				total.Unsupported = append(total.Unsupported, u)
			}
		}
		for k, v := range w.known {
			exp.known[k] = v
		}
		for k, v := range w.limbos {
			exp.limbos[k] = v
		}
		exp.prefix = append(exp.prefix, w.prefix())
	}
	for i := range sharedDirs {
		exp.known[fmt.Sprintf("s%d", i)] = &entry{kind: kDir}
	}
	total.Elapsed = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return exp, total, err
	}
	n, err := exp.verify(&total.Read)
	if err != nil {
		total.WrongReads++
	}
	cfg.Logf("fsstress: checked %d paths at the end", n)
	return exp, total, err
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func (w *worker) prefix() string { return fmt.Sprintf("w%d-", w.id) }

func (w *worker) newName() string {
	w.seq++
	return fmt.Sprintf("w%d-%d", w.id, w.seq)
}

var stressOps = []struct {
	name   string
	weight int
}{
	{"creat", 14}, {"overwrite", 8}, {"append", 6}, {"rewrite", 5}, {"truncate", 6},
	{"read", 14}, {"unlink", 6}, {"rename", 8}, {"mkdir", 4}, {"rmdir", 2},
	{"symlink", 3}, {"setxattr", 4}, {"fsync", 4}, {"readdir", 4}, {"link", 1},
	{"resolve", 6},
}

func (w *worker) run(start time.Time) error {
	tot := 0
	for _, o := range stressOps {
		tot += o.weight
	}
	for n := 0; (w.cfg.Ops == 0 || n < w.cfg.Ops) && (w.cfg.Duration == 0 || time.Since(start) < w.cfg.Duration); n++ {
		k := w.rng.IntN(tot)
		name := ""
		for _, o := range stressOps {
			if k < o.weight {
				name = o.name
				break
			}
			k -= o.weight
		}
		if err := w.step(name); err != nil {
			return fmt.Errorf("fsstress worker %d, seed %d, op %d (%s): %w", w.id, w.cfg.Seed, w.st.Ops, name, err)
		}
	}
	return nil
}

// pick returns a random known path of kind k (own entries only), or "".
func (w *worker) pick(k kind) string {
	var ps []string
	for p, e := range w.known {
		if e.kind == k {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return ""
	}
	sort.Strings(ps)
	return ps[w.rng.IntN(len(ps))]
}

// dirFor picks the directory a new entry goes in: a shared one or one of
// the worker's own.
func (w *worker) dirFor() string {
	if w.rng.IntN(3) == 0 {
		if d := w.pick(kDir); d != "" && strings.Count(d, "/") < 4 {
			return d
		}
	}
	return fmt.Sprintf("s%d", w.rng.IntN(sharedDirs))
}

func (w *worker) content(n int) []byte {
	p := make([]byte, n)
	fill(p, int64(w.rng.IntN(1<<20)), w.id*1000003+w.seq)
	return p
}

func (w *worker) abs(p string) string { return filepath.Join(w.cfg.Dir, p) }

// uncertain puts p in limbo with the states it may hold.
func (w *worker) uncertain(p string, k kind, cands ...[]byte) {
	delete(w.known, p)
	w.limbos[p] = &limbo{kind: k, cands: cands, since: time.Now()}
}

// resolve checks an uncertain path that has settled and makes it known
// (or forgets it, if it does not exist).
func (w *worker) resolve() error {
	var ps []string
	for p, l := range w.limbos {
		if time.Since(l.since) > limboSettle {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	sort.Strings(ps)
	p := ps[w.rng.IntN(len(ps))]
	l := w.limbos[p]
	got, kd, err := readPath(w.abs(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := checkLimbo(p, l, got, kd, err); err != nil {
		w.st.WrongReads++
		return err
	}
	w.st.Read += int64(len(got))
	delete(w.limbos, p)
	if err == nil {
		w.known[p] = &entry{kind: kd, data: got}
	}
	return nil
}

// checkLimbo checks what an uncertain path holds (got, of kind kd, or
// rerr) against its allowed states.
func checkLimbo(p string, l *limbo, got []byte, kd kind, rerr error) error {
	if rerr != nil {
		if hasNil(l.cands) {
			return nil
		}
		return fmt.Errorf("%w: %s (uncertain after ENOSPC) is missing, which it may not be", ErrWrongRead, p)
	}
	var d []string
	for _, c := range l.cands {
		if c == nil {
			d = append(d, "none")
			continue
		}
		if kd == l.kind && (kd == kDir || bytes.Equal(got, c)) {
			return nil
		}
		d = append(d, describe(got, c))
	}
	return fmt.Errorf("%w: %s (uncertain after ENOSPC) holds %d bytes that are none of its allowed states: %s", ErrWrongRead, p, len(got), strings.Join(d, "; "))
}

// writeFile opens p with flags, writes data at off and closes it.
func writeFile(p string, flags int, data []byte, off int64) error {
	fd, err := unix.Open(p, flags|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	for len(data) > 0 {
		k, err := unix.Pwrite(fd, data, off)
		if err != nil {
			unix.Close(fd)
			return err
		}
		data, off = data[k:], off+int64(k)
	}
	return unix.Close(fd)
}

func (w *worker) step(name string) error {
	w.st.Ops++
	w.st.ByOp[name]++
	var err error
	switch name {
	case "creat":
		p := filepath.Join(w.dirFor(), w.newName())
		data := w.content(w.rng.IntN(w.cfg.MaxFile + 1))
		if err = writeFile(w.abs(p), unix.O_CREAT|unix.O_EXCL, data, 0); err == nil {
			w.known[p] = &entry{kind: kFile, data: data}
			w.st.Written += int64(len(data))
		} else if NoSpace(err) {
			w.uncertain(p, kFile, nil, data)
		}
	case "overwrite", "append", "rewrite":
		p := w.pick(kFile)
		if p == "" {
			return nil
		}
		e := w.known[p]
		var data []byte
		var off int64
		flags := 0
		switch name {
		case "overwrite":
			off = int64(w.rng.IntN(w.cfg.MaxFile))
			data = w.content(1 + w.rng.IntN(w.cfg.MaxFile/4))
		case "append":
			off = int64(len(e.data))
			data = w.content(1 + w.rng.IntN(w.cfg.MaxFile/8))
			flags = unix.O_APPEND
		case "rewrite":
			data = w.content(w.rng.IntN(w.cfg.MaxFile + 1))
			flags = unix.O_TRUNC
		}
		after := clone(e.data)
		if flags == unix.O_TRUNC {
			after = nil
		}
		after = resize(after, max(len(after), int(off)+len(data)))
		copy(after[off:], data)
		if err = writeFile(w.abs(p), flags, data, off); err == nil {
			e.data = after
			w.st.Written += int64(len(data))
		} else if NoSpace(err) {
			w.uncertain(p, kFile, e.data, after)
		}
	case "truncate":
		p := w.pick(kFile)
		if p == "" {
			return nil
		}
		e := w.known[p]
		n := w.rng.IntN(w.cfg.MaxFile + 1)
		after := resize(clone(e.data), n)
		if err = os.Truncate(w.abs(p), int64(n)); err == nil {
			e.data = after
		} else if NoSpace(err) {
			w.uncertain(p, kFile, e.data, after)
		}
	case "read":
		p := w.pick(kFile)
		if p == "" {
			return nil
		}
		got, err := os.ReadFile(w.abs(p))
		if err != nil {
			return err
		}
		w.st.Read += int64(len(got))
		if want := w.known[p].data; !bytes.Equal(got, want) {
			w.st.WrongReads++
			return fmt.Errorf("%w: %s: %s", ErrWrongRead, p, describe(got, want))
		}
	case "unlink":
		p := w.pick(kFile)
		if w.rng.IntN(4) == 0 {
			p = w.pick(kLink)
		}
		if p == "" {
			return nil
		}
		e := w.known[p]
		if err = os.Remove(w.abs(p)); err == nil {
			delete(w.known, p)
		} else if NoSpace(err) {
			w.uncertain(p, e.kind, e.data, nil)
		}
	case "rename":
		src := w.pick(kFile)
		if src == "" {
			return nil
		}
		dst := filepath.Join(w.dirFor(), w.newName())
		if w.rng.IntN(3) == 0 {
			if d := w.pick(kFile); d != "" && d != src {
				dst = d // replace one of its own files
			}
		}
		e := w.known[src]
		var old []byte
		if d := w.known[dst]; d != nil {
			old = d.data
		}
		if err = os.Rename(w.abs(src), w.abs(dst)); err == nil {
			delete(w.known, src)
			w.known[dst] = e
		} else if NoSpace(err) {
			w.uncertain(src, kFile, e.data, nil)
			w.uncertain(dst, kFile, old, e.data)
		}
	case "mkdir":
		p := filepath.Join(w.dirFor(), w.newName())
		if err = os.Mkdir(w.abs(p), 0o755); err == nil {
			w.known[p] = &entry{kind: kDir}
		} else if NoSpace(err) {
			w.uncertain(p, kDir, nil, []byte{})
		}
	case "rmdir":
		p := w.pick(kDir)
		if p == "" || w.hasChildren(p) {
			return nil
		}
		if err = os.Remove(w.abs(p)); err == nil {
			delete(w.known, p)
		} else if NoSpace(err) {
			w.uncertain(p, kDir, nil, []byte{})
		}
	case "symlink":
		p := filepath.Join(w.dirFor(), w.newName())
		target := fmt.Sprintf("target-%d-%d", w.id, w.rng.IntN(1<<30))
		if err = os.Symlink(target, w.abs(p)); err == nil {
			w.known[p] = &entry{kind: kLink, data: []byte(target)}
		} else if NoSpace(err) {
			w.uncertain(p, kLink, nil, []byte(target))
		}
	case "setxattr":
		p := w.pick(kFile)
		if p == "" || w.noXattr {
			return nil
		}
		e := w.known[p]
		name := fmt.Sprintf("user.k%d", w.rng.IntN(3))
		val := []byte(fmt.Sprintf("v%d", w.rng.IntN(1<<20)))
		if err = unix.Setxattr(w.abs(p), name, val, 0); err == nil {
			if e.xattrs == nil {
				e.xattrs = map[string][]byte{}
			}
			e.xattrs[name] = val
		} else if NoSpace(err) {
			if e.loose == nil {
				e.loose = map[string]bool{}
			}
			e.loose[name] = true
		} else if errors.Is(err, syscall.EOPNOTSUPP) {
			w.noXattr = true
			w.st.Unsupported = append(w.st.Unsupported, fmt.Sprintf("user.* xattrs (%v)", cause(err)))
			err = nil
		}
	case "fsync":
		p := w.pick(kFile)
		if p == "" {
			return nil
		}
		fd, oerr := unix.Open(w.abs(p), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			return oerr
		}
		err = unix.Fsync(fd)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
	case "readdir":
		return w.checkDir(w.dirForRead())
	case "resolve":
		return w.resolve()
	case "link":
		p := w.pick(kFile)
		if p == "" || w.noLink {
			return nil
		}
		l := filepath.Join(w.dirFor(), w.newName())
		if err = os.Link(w.abs(p), w.abs(l)); err == nil {
			// Check the link shows the file, then remove it (a second name
			// of one file is not modelled).
			got, rerr := os.ReadFile(w.abs(l))
			if rerr != nil {
				return rerr
			}
			if !bytes.Equal(got, w.known[p].data) {
				w.st.WrongReads++
				return fmt.Errorf("%w: hard link %s of %s: %s", ErrWrongRead, l, p, describe(got, w.known[p].data))
			}
			err = os.Remove(w.abs(l))
			if NoSpace(err) {
				w.uncertain(l, kFile, nil, w.known[p].data)
			}
		} else if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EOPNOTSUPP) {
			w.noLink = true
			w.st.Unsupported = append(w.st.Unsupported, fmt.Sprintf("hard links (%v)", cause(err)))
			err = nil
		}
	}
	if err == nil {
		w.full = 0
		return nil
	}
	if !NoSpace(err) {
		return err
	}
	w.st.NoSpace++
	if w.full++; w.full >= 3 && w.cfg.MakeSpace != nil {
		w.cfg.MakeSpace()
		w.full = 0
	}
	return nil
}

func (w *worker) hasChildren(dir string) bool {
	for p := range w.known {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	for p := range w.limbos {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func (w *worker) dirForRead() string {
	if w.rng.IntN(2) == 0 {
		if d := w.pick(kDir); d != "" {
			return d
		}
	}
	return fmt.Sprintf("s%d", w.rng.IntN(sharedDirs))
}

// checkDir lists dir and compares the worker's own names in it with what
// it knows: every known entry is listed with its type, and every listed
// name of the worker's is known or uncertain.
func (w *worker) checkDir(dir string) error {
	des, err := os.ReadDir(w.abs(dir))
	if err != nil {
		return err
	}
	listed := map[string]fs.FileMode{}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), w.prefix()) {
			listed[filepath.Join(dir, de.Name())] = de.Type()
		}
	}
	for p, e := range w.known {
		if filepath.Dir(p) != dir {
			continue
		}
		t, ok := listed[p]
		if !ok {
			return fmt.Errorf("%w: readdir of %s does not list %s (%s)", ErrWrongRead, dir, p, w.missDetail(dir, p))
		}
		if want := typeOf(e.kind); t != want {
			return fmt.Errorf("%w: readdir of %s lists %s as %v, want %v", ErrWrongRead, dir, p, t, want)
		}
	}
	for p := range listed {
		if w.known[p] == nil && w.limbos[p] == nil {
			return fmt.Errorf("%w: readdir of %s lists %s, which was removed or never made", ErrWrongRead, dir, p)
		}
	}
	return nil
}

// missDetail says what a path a listing left out looks like right after:
// whether it can be looked up, and whether a second listing has it.
func (w *worker) missDetail(dir, p string) string {
	var st unix.Stat_t
	look := "lstat finds it"
	if err := unix.Lstat(w.abs(p), &st); err != nil {
		look = "lstat: " + err.Error()
	}
	again := "a second listing leaves it out too"
	if des, err := os.ReadDir(w.abs(dir)); err != nil {
		again = "a second listing failed: " + err.Error()
	} else {
		for _, de := range des {
			if de.Name() == filepath.Base(p) {
				again = "a second listing has it"
				break
			}
		}
	}
	return look + "; " + again
}

func typeOf(k kind) fs.FileMode {
	switch k {
	case kDir:
		return fs.ModeDir
	case kLink:
		return fs.ModeSymlink
	}
	return 0
}

func describe(got, want []byte) string {
	d := firstDiff(got, want)
	s := fmt.Sprintf("read %d bytes, want %d, first difference at %d", len(got), len(want), d)
	if z := zeroRun(got, want, d); z > 0 {
		s += fmt.Sprintf(" (%d bytes of zeros where data was written)", z)
	}
	return s
}

// Verify checks the tree against what the run left: every known path holds
// exactly its content (files), target (links) and user.* attributes,
// every uncertain path one of its allowed states, and nothing else of the
// workers' exists. It returns how many paths it checked.
func (e *Expect) Verify() (int, error) {
	var n int64
	return e.verify(&n)
}

func (e *Expect) verify(read *int64) (int, error) {
	var errs []error
	checked := 0
	seen := map[string]bool{}
	err := filepath.WalkDir(e.dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.dir, path)
		if rel == "." {
			return nil
		}
		seen[rel] = true
		if e.known[rel] == nil && e.limbos[rel] == nil {
			errs = append(errs, fmt.Errorf("%s exists, but was removed or never made", rel))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fsstress: walking %s: %w", e.dir, err)
	}
	paths := make([]string, 0, len(e.known))
	for p := range e.known {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		ent := e.known[p]
		checked++
		if !seen[p] {
			errs = append(errs, fmt.Errorf("%s is missing", p))
			continue
		}
		got, kd, err := readPath(filepath.Join(e.dir, p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*read += int64(len(got))
		if kd != ent.kind {
			errs = append(errs, fmt.Errorf("%s is of kind %d, want %d", p, kd, ent.kind))
			continue
		}
		if kd != kDir && !bytes.Equal(got, ent.data) {
			errs = append(errs, fmt.Errorf("%s: %s", p, describe(got, ent.data)))
		}
		for name, val := range ent.xattrs {
			if ent.loose[name] {
				continue
			}
			buf := make([]byte, 256)
			k, err := unix.Getxattr(filepath.Join(e.dir, p), name, buf)
			if err != nil || !bytes.Equal(buf[:k], val) {
				errs = append(errs, fmt.Errorf("%s: xattr %s is %q (%v), want %q", p, name, buf[:max(k, 0)], err, val))
			}
		}
	}
	for p, l := range e.limbos {
		checked++
		got, kd, err := readPath(filepath.Join(e.dir, p))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		*read += int64(len(got))
		if err := checkLimbo(p, l, got, kd, err); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		if len(errs) > 20 {
			errs = append(errs[:20], fmt.Errorf("and %d more", len(errs)-20))
		}
		return checked, fmt.Errorf("%w: fsstress: the tree differs from what was written: %w", ErrWrongRead, errors.Join(errs...))
	}
	return checked, nil
}

// cause is the innermost error of err (the errno of a *PathError).
func cause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

func hasNil(cs [][]byte) bool {
	for _, c := range cs {
		if c == nil {
			return true
		}
	}
	return false
}

// readPath returns a path's content (a file), target (a link) or nothing
// (a directory), and its kind.
func readPath(p string) ([]byte, kind, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		return []byte(t), kLink, err
	case fi.IsDir():
		return nil, kDir, nil
	}
	b, err := os.ReadFile(p)
	return b, kFile, err
}
