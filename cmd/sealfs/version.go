package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit it was built from and the Go version",
		Description: `   $ sealfs version
   sealfs dev (commit 3e725d7, modified) go1.26.8 linux/amd64`,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return exitUsage(errUnexpectedArgs(c))
			}
			printVersion(c.App.Writer)
			return nil
		},
	}
}

// buildInfo is what the binary knows of its build: the version (set with
// -ldflags "-X main.version=..."; "dev" otherwise) and the VCS commit the
// go command stamped, if any.
type buildInfo struct {
	Version  string
	Commit   string // short revision, "" when not built from a checkout
	Modified bool   // the checkout had uncommitted changes
	Go       string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
				if len(b.Commit) > 12 {
					b.Commit = b.Commit[:12]
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func printVersion(w io.Writer) {
	b := readBuildInfo()
	fmt.Fprintf(w, "sealfs %s", b.Version)
	if b.Commit != "" {
		mod := ""
		if b.Modified {
			mod = ", modified"
		}
		fmt.Fprintf(w, " (commit %s%s)", b.Commit, mod)
	}
	fmt.Fprintf(w, " %s %s/%s\n", b.Go, runtime.GOOS, runtime.GOARCH)
}
