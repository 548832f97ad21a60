package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/with\040space\011tab`: "/tmp/with space\ttab",
		`/plain`:                    "/plain",
		`/not\08octal`:              `/not\08octal`,
		`/short\04`:                 `/short\04`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsMountPoint(t *testing.T) {
	// / is a mount point everywhere; a fresh directory is not.
	if ok, err := IsMountPoint("/"); err != nil || !ok {
		t.Errorf("IsMountPoint(/) = %v, %v; want true", ok, err)
	}
	dir := t.TempDir()
	if ok, err := IsMountPoint(dir); err != nil || ok {
		t.Errorf("IsMountPoint(%s) = %v, %v; want false", dir, ok, err)
	}
}
