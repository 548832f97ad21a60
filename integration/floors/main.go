// Command floors measures what this machine charges for the steps every
// benchmark row is built from, with no sealfs code involved: waking a
// thread that has gone idle (each FUSE request and each hand-over between
// goroutines on different threads is at least one), a page fault (Badger
// writes its logs, memtables and tables through fresh pages), and a
// 1 MiB write made durable (a medium PUT's blob). make floors prints
// them; the performance notes compare rows against them.
//
// It writes at most -n MiB at a time under -dir, and removes it.
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", "/var/tmp", "where the disk measurements write (the disk to measure)")
	n := flag.Int("n", 40, "tries of each disk measurement (each writes 1 MiB)")
	flag.Parse()
	work, err := os.MkdirTemp(*dir, "sealfs-floors-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(work)

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tp50\tp90\t")
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", name, quantile(d, 0.5), quantile(d, 0.9))
	}
	for _, gap := range []time.Duration{0, 20 * time.Microsecond, 100 * time.Microsecond} {
		d, err := wakeRoundTrip(gap, 3000)
		if err != nil {
			fail(err)
		}
		row(fmt.Sprintf("thread round trip over pipes, %v idle before", gap), d)
	}
	for _, k := range []faultKind{anonymous, sparseFile, cachedFile} {
		d, err := pageFaults(work, k, 8<<20)
		if err != nil {
			fail(err)
		}
		row("first write to a page: "+k.String(), d)
	}
	for _, k := range []durableKind{newFile, fallocated, overwrite} {
		d, err := durableWrites(work, k, *n)
		if err != nil {
			fail(err)
		}
		row("1 MiB write + fdatasync: "+k.String(), d)
	}
	tw.Flush()
	fmt.Printf("\n(on %s; the disk rows on %s)\n", cpuidle(), *dir)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floors:", err)
	os.Exit(1)
}

// quantile returns the q-quantile of d (sorted in place).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// cpuidle names the kernel's idle driver: with none, an idle virtual CPU
// halts, and waking it goes through the hypervisor.
func cpuidle() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/cpuidle/current_driver")
	if err != nil {
		return "an unknown cpuidle driver"
	}
	return fmt.Sprintf("cpuidle driver %q, %d CPUs", strings.TrimSpace(string(b)), runtime.NumCPU())
}

// wakeRoundTrip times a byte sent to a thread over a pipe and echoed back
// over another, after the caller spun for gap (the echoing thread idles
// meanwhile): two wake-ups, the shape of a FUSE request and its reply.
func wakeRoundTrip(gap time.Duration, tries int) ([]time.Duration, error) {
	var ping, pong [2]int
	if err := unix.Pipe(ping[:]); err != nil {
		return nil, err
	}
	if err := unix.Pipe(pong[:]); err != nil {
		return nil, err
	}
	defer func() {
		for _, fd := range []int{ping[1], pong[0]} {
			unix.Close(fd)
		}
	}()
	go func() {
		runtime.LockOSThread()
		defer unix.Close(ping[0])
		defer unix.Close(pong[1])
		b := make([]byte, 1)
		for {
			if n, err := unix.Read(ping[0], b); n != 1 || err != nil {
				return
			}
			if _, err := unix.Write(pong[1], b); err != nil {
				return
			}
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := []byte{1}
	d := make([]time.Duration, 0, tries)
	for range tries {
		for t := time.Now(); time.Since(t) < gap; {
		}
		t := time.Now()
		if _, err := unix.Write(ping[1], b); err != nil {
			return nil, err
		}
		if _, err := unix.Read(pong[0], b); err != nil {
			return nil, err
		}
		d = append(d, time.Since(t))
	}
	return d, nil
}

type faultKind int

const (
	anonymous  faultKind = iota // private anonymous memory, as the Go heap gets from the kernel
	sparseFile                  // a shared mapping of a file's hole, as Badger's new logs and tables
	cachedFile                  // a shared mapping of a file's pages already in the page cache
)

func (k faultKind) String() string {
	return [...]string{"anonymous memory", "mapped file, a hole", "mapped file, page cached"}[k]
}

// pageFaults maps size bytes of kind k and times the first write to each
// page, in groups of 64 pages (a page's time is its group's mean).
func pageFaults(dir string, k faultKind, size int) ([]time.Duration, error) {
	var m []byte
	var err error
	if k == anonymous {
		m, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	} else {
		var f *os.File
		f, err = os.Create(filepath.Join(dir, "faults"))
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if k == cachedFile {
			_, err = f.Write(make([]byte, size))
		} else {
			err = f.Truncate(int64(size))
		}
		if err != nil {
			return nil, err
		}
		m, err = unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	}
	if err != nil {
		return nil, err
	}
	defer unix.Munmap(m)
	const page, group = 4096, 64
	var d []time.Duration
	for off := 0; off+page*group <= len(m); off += page * group {
		t := time.Now()
		for p := off; p < off+page*group; p += page {
			m[p] = 1
		}
		d = append(d, time.Since(t)/group)
	}
	return d, nil
}

type durableKind int

const (
	newFile    durableKind = iota // a new file each time, as a blob
	fallocated                    // into space allocated ahead (fallocate), not yet written
	overwrite                     // over blocks written and synced before
)

func (k durableKind) String() string {
	return [...]string{"new file", "into fallocated space", "over written blocks"}[k]
}

// durableWrites times n writes of 1 MiB, each followed by fdatasync.
func durableWrites(dir string, k durableKind, n int) ([]time.Duration, error) {
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	d := make([]time.Duration, 0, n)
	if k == newFile {
		for i := range n {
			name := filepath.Join(dir, fmt.Sprintf("new%d", i))
			t := time.Now()
			f, err := os.Create(name)
			if err != nil {
				return nil, err
			}
			_, err = f.Write(buf)
			if err == nil {
				err = unix.Fdatasync(int(f.Fd()))
			}
			d = append(d, time.Since(t))
			f.Close()
			os.Remove(name)
			if err != nil {
				return nil, err
			}
		}
		return d, nil
	}
	f, err := os.Create(filepath.Join(dir, "durable"))
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	size := int64(n) << 20
	if k == fallocated {
		err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	} else {
		_, err = f.WriteAt(make([]byte, size), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return nil, err
	}
	for i := range n {
		t := time.Now()
		if _, err := f.WriteAt(buf, int64(i)<<20); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		d = append(d, time.Since(t))
	}
	return d, nil
}
