// Package pprofget takes profiles from a sealfs daemon that serves Go's
// profiler (sealfs --metrics ADDR --pprof) and prints their top entries:
// what the benchmark tools (integration/s3bench, integration/benchfs) use
// to say where a row's time goes.
package pprofget

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Start begins taking a CPU profile, and the blocking and allocation
// profiles' change, over the next secs seconds from the daemon whose
// metrics listener is at addr (host:port), into p's files. The returned
// function waits for all three and returns the first error.
func Start(addr string, secs int, p Files) (wait func() error) {
	kinds := []struct{ endpoint, file string }{
		{"profile", p.CPU}, {"block", p.Block}, {"allocs", p.Allocs},
	}
	done := make(chan error, len(kinds))
	for _, k := range kinds {
		go func() {
			done <- Fetch(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, k.endpoint, secs), k.file)
		}()
	}
	return func() error {
		var first error
		for range kinds {
			if err := <-done; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// Files names where Start writes each profile.
type Files struct {
	CPU, Block string
	// Allocs receives what was allocated in the window: print it with
	// "-sample_index=alloc_space" (bytes) or "alloc_objects" (count).
	Allocs string
}

// FilesIn names a row's profiles ROW.cpu.pprof, ROW.block.pprof and
// ROW.allocs.pprof in dir.
func FilesIn(dir, row string) Files {
	return Files{
		CPU:    filepath.Join(dir, row+".cpu.pprof"),
		Block:  filepath.Join(dir, row+".block.pprof"),
		Allocs: filepath.Join(dir, row+".allocs.pprof"),
	}
}

// Fetch saves what url answers to path.
func Fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Top prints the top n entries of a profile under a title, with extra
// `go tool pprof` arguments (e.g. "-cum", "-focus", RE). bin, if not
// empty, is the binary the profile came from.
func Top(w io.Writer, title, bin, file string, n int, args ...string) {
	fmt.Fprintf(w, "\n== %s\n", title)
	cmdArgs := append([]string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", n)}, args...)
	if bin != "" {
		cmdArgs = append(cmdArgs, bin)
	}
	cmd := exec.Command("go", append(cmdArgs, file)...)
	cmd.Stderr = io.Discard
	b, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(w, "go tool pprof: %v\n", err)
		return
	}
	w.Write(b)
}
