package fs

import (
	"slices"
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

func TestXattrNameEncoding(t *testing.T) {
	for n, want := range map[string]string{
		"color":            "color",
		"xdg.origin.url":   "xdg.origin.url",
		"DOSATTRIB":        "%44%4f%53%41%54%54%52%49%42",
		"with space":       "with%20space",
		"100%":             "100%25",
		"é":                "%c3%a9",
		"mode":             "%6dode",
		"mtime":            "%6dtime",
		"atime":            "%61time",
		"modes":            "modes",
		"x-amz-meta-color": "x-amz-meta-color",
	} {
		k := encName(n)
		if k != want {
			t.Errorf("encName(%q) = %q, want %q", n, k, want)
		}
		if d := decName(k); d != n {
			t.Errorf("decName(%q) = %q, want %q", k, d, n)
		}
	}
	// Upper-case hex digits decode too.
	if d := decName("%6Dode"); d != "mode" {
		t.Errorf(`decName("%%6Dode") = %q`, d)
	}
	// Names set over S3 that no attribute name encodes to are shown as
	// they are.
	for _, k := range []string{"%61", "a%zz", "a%4", "%"} {
		if d := decName(k); d != k {
			t.Errorf("decName(%q) = %q, want it unchanged", k, d)
		}
	}
}

func TestXattrValueEncoding(t *testing.T) {
	for v, plain := range map[string]bool{
		"blue": true, "a b": true, "": false, " lead": false, "trail ": false, "tab\there": false,
		"nl\n": false, "\xff\x00bin": false, "ünïcode": true, "=?UTF-8?B?aGk=?=": false, "a =? b": false,
		"\u0085": false, "del\x7f": false,
	} {
		e := encValue(v)
		if (e == v) != plain {
			t.Errorf("encValue(%q) = %q, plain=%t", v, e, plain)
		}
		if d := decValue(e); d != v {
			t.Errorf("decValue(encValue(%q)) = %q", v, d)
		}
		for _, r := range e {
			if r < 0x20 || r == 0x7f {
				t.Errorf("encValue(%q) = %q: a control character", v, e)
				break
			}
		}
	}
	if d := decValue("=?ISO-8859-1?b?aGk=?="); d != "hi" {
		t.Errorf("another charset: %q", d)
	}
}

func TestCopyOut(t *testing.T) {
	if n, errno := copyOut(nil, "value"); n != 5 || errno != 0 {
		t.Errorf("size probe: %d, %v", n, errno)
	}
	if n, errno := copyOut(make([]byte, 3), "value"); n != 5 || errno != syscall.ERANGE {
		t.Errorf("small buffer: %d, %v", n, errno)
	}
	buf := make([]byte, 10)
	if n, errno := copyOut(buf, "value"); n != 5 || errno != 0 || string(buf[:n]) != "value" {
		t.Errorf("copy: %d, %v, %q", n, errno, buf[:n])
	}
}

func TestObjectXattrs(t *testing.T) {
	f := newFS(Options{})
	obj := &cryptostore.Object{ETag: "abc", ReplicationStatus: "COMPLETED", Meta: cryptostore.ObjectMeta{
		ContentType: "text/plain",
		User:        map[string]string{"b": "2", "a": "1", "mode": "33188", "%6dode": "mine", "bin": "=?UTF-8?B?AAE=?="},
	}}
	join := func(l []xattr) []string {
		var out []string
		for _, a := range l {
			out = append(out, a.name+"="+a.value)
		}
		return out
	}
	headers := join(f.objectHeaders(obj, &obj.Meta))
	want := []string{"etag=abc", "content-type=text/plain", "x-amz-meta-%6dode=mine", "x-amz-meta-a=1", "x-amz-meta-b=2",
		"x-amz-meta-bin==?UTF-8?B?AAE=?=", "x-amz-meta-mode=33188", "x-amz-replication-status=COMPLETED"}
	if !slices.Equal(headers, want) {
		t.Errorf("headers %q, want %q", headers, want)
	}
	user := join(userXattrs(&obj.Meta))
	want = []string{"user.mode=mine", "user.a=1", "user.b=2", "user.bin=\x00\x01"}
	if !slices.Equal(user, want) {
		t.Errorf("user attributes %q, want %q", user, want)
	}
}
