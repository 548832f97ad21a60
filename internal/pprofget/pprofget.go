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
	"strings"
)

// Start begins taking a CPU profile and the blocking profile's change over
// the next secs seconds from the daemon whose metrics listener is at addr
// (host:port), into cpuFile and blockFile. The returned function waits for
// both and returns the first error.
func Start(addr string, secs int, cpuFile, blockFile string) (wait func() error) {
	done := make(chan error, 2)
	go func() { done <- Fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), cpuFile) }()
	go func() { done <- Fetch(fmt.Sprintf("http://%s/debug/pprof/block?seconds=%d", addr, secs), blockFile) }()
	return func() error {
		var first error
		for range 2 {
			if err := <-done; err != nil && first == nil {
				first = err
			}
		}
		return first
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
