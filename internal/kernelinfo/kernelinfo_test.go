package kernelinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestModuleParams(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"wake_here": "Y\n", "enable_uring": "N\n", "max_user_bgreq": "7866\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "unreadable"), 0o755); err != nil { // reading a directory fails
		t.Fatal(err)
	}
	if got, want := moduleParams(dir), "enable_uring=N max_user_bgreq=7866 wake_here=Y"; got != want {
		t.Errorf("moduleParams = %q, want %q", got, want)
	}
	if got := moduleParams(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("moduleParams of a missing directory = %q, want empty", got)
	}
}

func TestLine(t *testing.T) {
	line := Line()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if want := "kernel: " + unix.ByteSliceToString(u.Release[:]); !strings.HasPrefix(line, want) {
		t.Errorf("Line() = %q, want it to begin %q", line, want)
	}
	if _, err := os.Stat(fuseParamsDir); err == nil && !strings.Contains(line, "; fuse module: ") {
		t.Errorf("Line() = %q: %s exists but is not named", line, fuseParamsDir)
	}
}
