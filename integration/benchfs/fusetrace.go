package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

// The kernel's view of the mount's FUSE requests, from its fuse tracepoints
// (fuse_request_send and fuse_request_end, which this machine's 6.18 kernel
// has): how long each request took from the moment the kernel queued it to
// the moment the answer came back. Set beside the daemon's own handler
// times, the difference is what a request costs outside sealfs's code:
// waking the daemon, go-fuse reading and dispatching it, scheduling,
// writing the answer back. The tracepoints are global and cost time on
// every request, so -fuse-trace measures a run of its own, after the
// profiled one, and reads the trace once the run is over.

const tracefs = "/sys/kernel/tracing"

// fuseTrace is a trace of one mount's FUSE requests, recorded by the kernel
// from startFuseTrace until stop, which reads it.
type fuseTrace struct {
	bufKB   string             // the trace buffer's size before, restored at stop
	mounted bool               // tracefs was mounted here, and is unmounted at stop
	sent    map[string]sentReq // by request id
	ops     map[string]opStat  // by opcode: requests answered, summed round trips
	lost    int                // answers whose request was not seen
}

type sentReq struct {
	ts float64
	op string
}

// startFuseTrace turns the fuse tracepoints on for the mount at mnt (root
// only; tracefs is mounted if it is not, and unmounted again at stop).
func startFuseTrace(mnt string) (*fuseTrace, error) {
	events := filepath.Join(tracefs, "events", "fuse")
	mounted := false
	if _, err := os.Stat(events); errors.Is(err, os.ErrNotExist) {
		err := unix.Mount("nodev", tracefs, "tracefs", 0, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("mounting tracefs: %w", err)
		}
		mounted = err == nil
	}
	if _, err := os.Stat(events); err != nil {
		if mounted {
			unix.Unmount(tracefs, 0)
		}
		return nil, fmt.Errorf("this kernel has no fuse tracepoints (%w)", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return nil, err
	}
	// The kernel prints a dev_t as MAJOR<<20 | MINOR.
	conn := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	bufKB := "1408"
	if b, err := os.ReadFile(filepath.Join(tracefs, "buffer_size_kb")); err == nil && len(strings.Fields(string(b))) > 0 {
		bufKB = strings.Fields(string(b))[0]
	}
	write := func(name, v string) error { return os.WriteFile(filepath.Join(tracefs, name), []byte(v), 0) }
	for _, w := range []struct{ name, v string }{
		{"events/fuse/enable", "0"},
		{"trace", ""},
		{"buffer_size_kb", "65536"}, // per CPU: ~1.3M requests, read after the run
		{"events/fuse/filter", fmt.Sprintf("connection == %d", conn)},
		{"events/fuse/enable", "1"},
	} {
		if err := write(w.name, w.v); err != nil {
			write("events/fuse/enable", "0")
			if mounted {
				unix.Unmount(tracefs, 0)
			}
			return nil, fmt.Errorf("tracefs %s: %w", w.name, err)
		}
	}
	return &fuseTrace{bufKB: bufKB, mounted: mounted, sent: map[string]sentReq{}, ops: map[string]opStat{}}, nil
}

// read pairs each request's send with its end:
//
//	tar-123 [001] ..... 4321.000001: fuse_request_send: connection 52 req 8 opcode 1 (FUSE_LOOKUP) len 49
//	sealfs-99 [000] ..... 4321.000041: fuse_request_end: connection 52 req 8 len 144 error 0
func (t *fuseTrace) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, ": fuse_request_")
		if i < 0 {
			continue
		}
		head := strings.Fields(line[:i])
		if len(head) == 0 {
			continue
		}
		ts, err := strconv.ParseFloat(head[len(head)-1], 64)
		if err != nil {
			continue
		}
		f := strings.Fields(line[i+2:])
		if len(f) < 5 || f[3] != "req" {
			continue
		}
		req := f[4]
		switch {
		case strings.HasPrefix(f[0], "fuse_request_send"):
			op := "?"
			if len(f) >= 8 {
				op = strings.TrimPrefix(strings.Trim(f[7], "()"), "FUSE_")
			}
			t.sent[req] = sentReq{ts, op}
		case strings.HasPrefix(f[0], "fuse_request_end"):
			s, ok := t.sent[req]
			if !ok {
				t.lost++
				break
			}
			delete(t.sent, req)
			st := t.ops[s.op]
			st.n++
			st.secs += ts - s.ts
			t.ops[s.op] = st
		}
	}
	return sc.Err()
}

// stop turns the tracepoints off, reads what they recorded and returns, by
// operation, the requests answered and their summed round trips, and how
// many requests the trace holds only one end of. Reading after the run
// keeps the reader's own work out of it; an overrun buffer is an error.
func (t *fuseTrace) stop() (map[string]opStat, int, error) {
	defer func() {
		os.WriteFile(filepath.Join(tracefs, "events/fuse/filter"), []byte("0"), 0)
		os.WriteFile(filepath.Join(tracefs, "trace"), nil, 0)
		os.WriteFile(filepath.Join(tracefs, "buffer_size_kb"), []byte(t.bufKB), 0)
		if t.mounted {
			unix.Unmount(tracefs, 0)
		}
	}()
	if err := os.WriteFile(filepath.Join(tracefs, "events/fuse/enable"), []byte("0"), 0); err != nil {
		return nil, 0, err
	}
	cpus, _ := filepath.Glob(filepath.Join(tracefs, "per_cpu", "cpu*", "stats"))
	for _, c := range cpus {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "overrun: "); ok && strings.TrimSpace(v) != "0" {
				return nil, 0, fmt.Errorf("the trace buffer overran (%s: %s events lost)", c, strings.TrimSpace(v))
			}
		}
	}
	f, err := os.Open(filepath.Join(tracefs, "trace"))
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if err := t.read(f); err != nil {
		return nil, 0, err
	}
	return t.ops, t.lost + len(t.sent), nil
}

// handlerOp maps a tracepoint's opcode name to the daemon's metric label
// (the operations fs/observe.go times).
var handlerOp = map[string]string{
	"LOOKUP": "Lookup", "GETATTR": "GetAttr", "SETATTR": "SetAttr", "READLINK": "Readlink",
	"SYMLINK": "Symlink", "MKDIR": "Mkdir", "UNLINK": "Unlink", "RMDIR": "Rmdir",
	"RENAME": "Rename", "RENAME2": "Rename", "OPEN": "Open", "READ": "Read", "WRITE": "Write",
	"STATFS": "StatFs", "FSYNC": "Fsync", "SETXATTR": "SetXAttr", "GETXATTR": "GetXAttr",
	"LISTXATTR": "ListXAttr", "REMOVEXATTR": "RemoveXAttr", "FLUSH": "Flush", "OPENDIR": "OpenDir",
	"READDIR": "ReadDir", "READDIRPLUS": "ReadDirPlus", "CREATE": "Create",
}

// printTrace prints, by operation (most frequent first), the kernel's mean
// round trip, the daemon's mean handler time where it counts the operation,
// and the difference.
func printTrace(w io.Writer, trace map[string]opStat, unmatched int, handlers map[string]opStat, perFile int) {
	fmt.Fprintf(w, "\nthe kernel's view (fuse tracepoints, a run of its own: tracing slows it): each request from queued to answered, and how much of that the daemon's handler took\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  op\tcount\tround trip\thandler\toutside the handler\t\n")
	var totKernel, totHandler float64
	for _, op := range byCount(trace) {
		st := trace[op]
		k := st.secs / st.n * 1e6
		totKernel += st.secs
		h, ok := handlers[handlerOp[op]]
		if !ok || h.n == 0 {
			fmt.Fprintf(tw, "  %s\t%.0f\t%.1f µs\t-\t-\t\n", op, st.n, k)
			continue
		}
		hm := h.secs / h.n * 1e6
		totHandler += hm * st.n / 1e6
		fmt.Fprintf(tw, "  %s\t%.0f\t%.1f µs\t%.1f µs\t%.1f µs\t\n", op, st.n, k, hm, k-hm)
	}
	tw.Flush()
	if perFile > 0 {
		fmt.Fprintf(w, "  per file: %.0f µs of round trips, %.0f µs of them in handlers\n", totKernel/float64(perFile)*1e6, totHandler/float64(perFile)*1e6)
	}
	if unmatched > 0 {
		fmt.Fprintf(w, "  (%d requests without both ends in the trace are left out)\n", unmatched)
	}
}
