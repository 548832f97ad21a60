package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profileDir, when set (-profile), receives a CPU and a blocking profile of
// the daemon for each workload, taken while the encrypting bucket is
// measured in round 1: DIR/<workload>.cpu.pprof and .block.pprof. The daemon
// serves them with --metrics and --pprof.
var profileDir string

// profiling is one workload's profiles being taken.
type profiling struct{ wg sync.WaitGroup }

// profileFile names a workload's profile of a kind ("cpu", "block").
func profileFile(workload, kind string) string {
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(workload)
	return filepath.Join(profileDir, name+"."+kind+".pprof")
}

// startProfiles starts fetching d's CPU profile and the blocking delta over
// about dur (at least a second, the profiler's unit).
func startProfiles(d *daemon, workload string, dur time.Duration) *profiling {
	if profileDir == "" || d.metrics == "" {
		return nil
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		log.Printf("profile: %v", err)
		return nil
	}
	secs := max(1, int(dur.Round(time.Second).Seconds()))
	p := &profiling{}
	for kind, path := range map[string]string{"cpu": "profile", "block": "block"} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", d.metrics, path, secs)
			if err := fetch(url, profileFile(workload, kind)); err != nil {
				log.Printf("profile %s of %s: %v", kind, workload, err)
			}
		}()
	}
	return p
}

func (p *profiling) wait() { p.wg.Wait() }

func fetch(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printProfiles prints the top entries of every profile taken, with the
// command that opens it.
func printProfiles(selected []workload) {
	if profileDir == "" {
		return
	}
	for _, w := range selected {
		for _, kind := range []string{"cpu", "block"} {
			file := profileFile(w.name, kind)
			if _, err := os.Stat(file); err != nil {
				continue
			}
			fmt.Printf("\n== %s profile of %s (go tool pprof -http=: %s)\n", kind, w.name, file)
			args := []string{"tool", "pprof", "-top", "-nodecount", "20"}
			if kind == "block" {
				// Only the request-serving goroutines: the idle
				// background ones would fill the table otherwise.
				args = append(args, "-cum", "-focus", `s3\.\(\*Handler\)\.ServeHTTP`)
			}
			out, err := exec.Command("go", append(args, file)...).CombinedOutput()
			if err != nil {
				fmt.Printf("pprof: %v\n", err)
			}
			os.Stdout.Write(out)
		}
	}
}

// seaweedVersion is the SeaweedFS build the performance issue names as a
// second peer, if `go install` can build it.
const seaweedVersion = "github.com/seaweedfs/seaweedfs/weed@v0.0.0-20261109003541-7506e5f91cd6"

// seaweedNote says why SeaweedFS is not among the peers: `go install` of
// seaweedVersion fails here ("The go.mod file for the module providing
// named packages contains one or more replace directives"), so no weed
// command exists to measure, and nothing else may be fetched.
func seaweedNote() {
	if p, err := exec.LookPath("weed"); err == nil {
		fmt.Printf("\nSeaweedFS peer: a weed command is at %s, but this benchmark does not measure it\n", p)
		return
	}
	fmt.Printf("\nSeaweedFS peer: skipped: no weed command (go install %s refuses the module: its go.mod has replace directives)\n", seaweedVersion)
}
