// Package kernelinfo describes the kernel a benchmark ran on: its release
// and the parameters of its fuse module.
//
// Some kernels carry parameters of their own in the fuse module that change
// what a FUSE round trip costs, and with it every mount row: on one machine
// here, turning the module's wake_here on cut gocryptfs's untar time by
// almost half and sealfs's by about 30%, so the ratio between them moved.
// The benchmarks name them so that a table is read with the kernel it was
// measured on.
package kernelinfo

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// fuseParamsDir holds the parameters of the kernel's fuse module.
const fuseParamsDir = "/sys/module/fuse/parameters"

// Line is a one-line account of the kernel: "kernel: RELEASE; fuse module:
// a=1 b=N", the parameters in name order, left out where they cannot be
// read.
func Line() string {
	line := "kernel: "
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		line += unix.ByteSliceToString(u.Release[:])
	} else {
		line += "unknown"
	}
	if p := moduleParams(fuseParamsDir); p != "" {
		line += "; fuse module: " + p
	}
	return line
}

// moduleParams reads a module's parameters directory into "a=1 b=N";
// unreadable entries are left out, and a missing directory gives "".
func moduleParams(dir string) string {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return ""
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		out = append(out, e.Name()+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(out, " ")
}
