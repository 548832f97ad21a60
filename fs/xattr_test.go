package fs

import (
	"syscall"
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
)

func TestXattrNames(t *testing.T) {
	tests := []struct {
		name     string
		readOnly bool
	}{
		{name: "user.etag", readOnly: true},
		{name: "user.content-type", readOnly: true},
		{name: "user.x-amz-server-side-encryption", readOnly: true},
		{name: "user.x-amz-meta-mode", readOnly: true},
		{name: "user.x-amz-meta-MTIME", readOnly: true},
		{name: "user.x-amz-meta-color", readOnly: false},
		{name: "user.other", readOnly: false},
	}
	for _, tc := range tests {
		if got := readOnlyName(tc.name); got != tc.readOnly {
			t.Errorf("readOnlyName(%q) = %t", tc.name, got)
		}
	}
	for k, ok := range map[string]bool{"color": true, "a.b_c-d": true, "": false, "with space": false, "UPPER": false, "é": false} {
		if validMetaName(k) != ok {
			t.Errorf("validMetaName(%q) = %t", k, !ok)
		}
	}
	for v, ok := range map[string]bool{"blue": true, "ünïcode": true, "tab\there": false, "nl\n": false, "\xff": false} {
		if validMetaValue(v) != ok {
			t.Errorf("validMetaValue(%q) = %t", v, !ok)
		}
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
		User:        map[string]string{"b": "2", "a": "1"},
	}}
	var names []string
	for _, a := range f.objectXattrs(obj, &obj.Meta) {
		names = append(names, a.name+"="+a.value)
	}
	want := []string{"user.etag=abc", "user.content-type=text/plain", "user.x-amz-meta-a=1", "user.x-amz-meta-b=2", "user.x-amz-replication-status=COMPLETED"}
	if len(names) != len(want) {
		t.Fatalf("got %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("got %v, want %v", names, want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/with\040space\011tab`); got != "/tmp/with space\ttab" {
		t.Errorf("unescapeMount: %q", got)
	}
	if got := unescapeMount(`/plain`); got != "/plain" {
		t.Errorf("unescapeMount: %q", got)
	}
}
