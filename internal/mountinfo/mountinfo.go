// Package mountinfo answers whether a directory is a mount point, from the
// kernel's mount table (/proc/self/mountinfo). The mount and the tools and
// tests that start or wait for mounts share it.
package mountinfo

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// IsMountPoint reports whether dir (an absolute, clean path) is a mount
// point.
func IsMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && Unescape(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// Mounted is IsMountPoint for callers that poll: a mount table it cannot
// read counts as not mounted.
func Mounted(dir string) bool {
	ok, _ := IsMountPoint(dir)
	return ok
}

// Unescape undoes the octal escapes (\040 for a space, ...) of the mount
// table's paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
