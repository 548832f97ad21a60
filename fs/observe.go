package fs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// observedFS reports the duration and result of the FUSE operations that
// matter to an operator (Options.Observe, the daemon's metrics); every
// other operation passes through untouched.
type observedFS struct {
	fuse.RawFileSystem
	observe func(op string, errno syscall.Errno, d time.Duration)
}

func (o *observedFS) done(op string, start time.Time, st fuse.Status) {
	o.observe(op, syscall.Errno(st), time.Since(start))
}

func (o *observedFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Lookup(cancel, header, name, out)
	o.done("Lookup", start, st)
	return st
}

func (o *observedFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.GetAttr(cancel, input, out)
	o.done("GetAttr", start, st)
	return st
}

func (o *observedFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetAttr(cancel, input, out)
	o.done("SetAttr", start, st)
	return st
}

func (o *observedFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Mkdir(cancel, input, name, out)
	o.done("Mkdir", start, st)
	return st
}

func (o *observedFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Unlink(cancel, header, name)
	o.done("Unlink", start, st)
	return st
}

func (o *observedFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rmdir(cancel, header, name)
	o.done("Rmdir", start, st)
	return st
}

func (o *observedFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rename(cancel, input, oldName, newName)
	o.done("Rename", start, st)
	return st
}

func (o *observedFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Symlink(cancel, header, pointedTo, linkName, out)
	o.done("Symlink", start, st)
	return st
}

func (o *observedFS) SetXAttr(cancel <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetXAttr(cancel, input, attr, data)
	o.done("SetXAttr", start, st)
	return st
}

func (o *observedFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.RemoveXAttr(cancel, header, attr)
	o.done("RemoveXAttr", start, st)
	return st
}

func (o *observedFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Create(cancel, input, name, out)
	o.done("Create", start, st)
	return st
}

func (o *observedFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Open(cancel, input, out)
	o.done("Open", start, st)
	return st
}

func (o *observedFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Flush(cancel, input)
	o.done("Flush", start, st)
	return st
}

func (o *observedFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Fsync(cancel, input)
	o.done("Fsync", start, st)
	return st
}

func (o *observedFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.OpenDir(cancel, input, out)
	o.done("OpenDir", start, st)
	return st
}

func (o *observedFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDir(cancel, input, out)
	o.done("ReadDir", start, st)
	return st
}

func (o *observedFS) ReadDirPlus(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDirPlus(cancel, input, out)
	o.done("ReadDirPlus", start, st)
	return st
}

func (o *observedFS) StatFs(cancel <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.StatFs(cancel, input, out)
	o.done("StatFs", start, st)
	return st
}

func (o *observedFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	r, st := o.RawFileSystem.Read(cancel, input, buf)
	o.done("Read", start, st)
	return r, st
}

func (o *observedFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Write(cancel, input, data)
	o.done("Write", start, st)
	return n, st
}

// Writev is how go-fuse hands over every WRITE (Write only if Writev
// answers ENOSYS, and that call is counted by Write).
func (o *observedFS) Writev(cancel <-chan struct{}, input *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Writev(cancel, input, data)
	if st != fuse.ENOSYS {
		o.done("Write", start, st)
	}
	return n, st
}

func (o *observedFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.GetXAttr(cancel, header, attr, dest)
	o.done("GetXAttr", start, st)
	return n, st
}

func (o *observedFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.ListXAttr(cancel, header, dest)
	o.done("ListXAttr", start, st)
	return n, st
}

func (o *observedFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	b, st := o.RawFileSystem.Readlink(cancel, header)
	o.done("Readlink", start, st)
	return b, st
}
