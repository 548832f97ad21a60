package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sealfs/sealfs/internal/pprofget"
)

// profileDir, when set (-profile), receives a CPU and a blocking profile of
// the daemon for each workload, taken while the encrypting bucket is
// measured in round 1: DIR/<workload>.cpu.pprof and .block.pprof. The daemon
// serves them with --metrics and --pprof.
var profileDir string

// profiling is one workload's profiles being taken.
type profiling struct{ done func() error }

// profileFile names a workload's profile of a kind ("cpu", "block").
func profileFile(workload, kind string) string {
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(workload)
	return filepath.Join(profileDir, name+"."+kind+".pprof")
}

// startProfiles starts taking d's CPU profile and the blocking delta over
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
	return &profiling{done: pprofget.Start(d.metrics, secs, profileFile(workload, "cpu"), profileFile(workload, "block"))}
}

func (p *profiling) wait() {
	if err := p.done(); err != nil {
		log.Printf("profile: %v", err)
	}
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
			title := fmt.Sprintf("%s profile of %s (go tool pprof -http=: %s)", kind, w.name, file)
			if kind == "block" {
				// Only the request-serving goroutines: the idle
				// background ones would fill the table otherwise.
				pprofget.Top(os.Stdout, title, "", file, 20, "-cum", "-focus", `s3\.\(\*Handler\)\.ServeHTTP`)
			} else {
				pprofget.Top(os.Stdout, title, "", file, 20)
			}
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
