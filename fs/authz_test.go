package fs

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sealfs/sealfs/cryptostore"
)

// TestActingAs: a file system acting as a read-only user without the
// bucket's kms:Decrypt (mount --as reader) lists the bucket, reads the
// plain file, and gets EACCES reading the encrypted one and creating a
// file; the same store without --as reads both.
func TestActingAs(t *testing.T) {
	ctx := context.Background()
	s, dir := newTestStore(t)
	put := func(key, body string) {
		t.Helper()
		if _, err := s.Put(ctx, &cryptostore.PutInput{Bucket: "bkt", Key: key, Body: strings.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	put("plain.txt", "plain")
	if err := s.SetBucketEncryption(ctx, "bkt", true); err != nil {
		t.Fatal(err)
	}
	put("enc.txt", "encrypted")
	if _, err := s.CreateUser(ctx, "reader", []byte(`{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*","arn:aws:s3:::*"]}]}`)); err != nil {
		t.Fatal(err)
	}

	read := func(f *FS, key string) (string, syscall.Errno) {
		n := newFileNode(f, kindFile, "bkt", key)
		fh, _, errno := n.Open(ctx, syscall.O_RDONLY)
		if errno != 0 {
			return "", errno
		}
		h := fh.(*fileHandle)
		defer h.Release(ctx)
		res, errno := h.Read(ctx, make([]byte, 100), 0)
		if errno != 0 {
			return "", errno
		}
		b, _ := res.Bytes(nil)
		return string(b), 0
	}
	list := func(f *FS) ([]string, syscall.Errno) {
		h, errno := openBucketDir(ctx, f)
		if errno != 0 {
			return nil, errno
		}
		var names []string
		for {
			e, errno := h.Readdirent(ctx)
			if errno != 0 {
				return names, errno
			}
			if e == nil {
				break
			}
			if e.Name != "." && e.Name != ".." {
				names = append(names, e.Name)
			}
		}
		slices.Sort(names)
		return names, 0
	}

	reader := newFS(Options{Store: s, DataDir: dir, As: "reader"})
	if names, errno := list(reader); errno != 0 || !slices.Equal(names, []string{"enc.txt", "plain.txt"}) {
		t.Errorf("ls as reader: %v, %v", names, errno)
	}
	if got, errno := read(reader, "plain.txt"); errno != 0 || got != "plain" {
		t.Errorf("cat plain.txt as reader: %q, %v", got, errno)
	}
	if got, errno := read(reader, "enc.txt"); errno != syscall.EACCES {
		t.Errorf("cat enc.txt as reader: %q, %v, want EACCES", got, errno)
	}
	d := &dirNode{isBucket: true}
	d.init(reader, kindDir, "bkt", "")
	var out fuse.EntryOut
	if _, _, _, errno := d.Create(ctx, "new.txt", syscall.O_WRONLY|syscall.O_CREAT, 0o644, &out); errno != syscall.EACCES {
		t.Errorf("create as reader: %v, want EACCES", errno)
	}

	admin := newFS(Options{Store: s, DataDir: dir})
	for key, want := range map[string]string{"plain.txt": "plain", "enc.txt": "encrypted"} {
		if got, errno := read(admin, key); errno != 0 || got != want {
			t.Errorf("cat %s as the admin: %q, %v", key, got, errno)
		}
	}
}
