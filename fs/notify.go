package fs

import (
	"context"
	"strings"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/sealfs/sealfs/cryptostore"
)

// invalidator tells the kernel about changes made outside the mount (over
// S3, by replication, by an admin command). The notifications run on a
// goroutine of their own: a notification waits for kernel locks that a
// FUSE request in progress may hold, so one must never be sent from inside
// a request. push waits a moment for its event to be handled, so that a
// client that changed an object over S3 and then looks at the mount sees
// the change.
type invalidator struct {
	fs *FS

	mu      sync.Mutex
	queue   []invalidation
	wake    chan struct{}
	stopped bool
	quit    chan struct{}
	done    chan struct{}
}

type invalidation struct {
	ev      cryptostore.ChangeEvent
	handled chan struct{}
}

// pushWait bounds how long a change event waits for its notification.
const pushWait = 100 * time.Millisecond

func newInvalidator(f *FS) *invalidator {
	return &invalidator{fs: f, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

func (v *invalidator) start() { go v.loop() }

func (v *invalidator) stop() {
	v.mu.Lock()
	if v.stopped {
		v.mu.Unlock()
		return
	}
	v.stopped = true
	v.mu.Unlock()
	close(v.quit)
	<-v.done
}

func (v *invalidator) push(ev cryptostore.ChangeEvent) {
	it := v.post(ev)
	if it.handled == nil {
		return
	}
	t := time.NewTimer(pushWait)
	defer t.Stop()
	select {
	case <-it.handled:
	case <-t.C:
	}
}

// post queues an invalidation without waiting for it: the way for a FUSE
// request to have the kernel told something once it has answered.
func (v *invalidator) post(ev cryptostore.ChangeEvent) invalidation {
	it := invalidation{ev: ev, handled: make(chan struct{})}
	v.mu.Lock()
	if v.stopped {
		v.mu.Unlock()
		return invalidation{}
	}
	v.queue = append(v.queue, it)
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
	return it
}

func (v *invalidator) loop() {
	defer close(v.done)
	for {
		select {
		case <-v.quit:
			return
		case <-v.wake:
		}
		for {
			v.mu.Lock()
			batch := v.queue
			v.queue = nil
			v.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, it := range batch {
				v.fs.invalidate(it.ev)
				close(it.handled)
			}
		}
	}
}

// invalidate drops what the kernel caches about the object of ev: the
// directory entry (positive or negative) on the deepest level the kernel
// knows, the attributes and pages of the node if it is loaded, and for a
// deletion, the directories that vanished with it.
func (f *FS) invalidate(ev cryptostore.ChangeEvent) {
	root := f.root.EmbeddedInode()
	if ev.Kind == cryptostore.ChangeAll {
		f.invalidateAll(root)
		return
	}
	if ev.Kind == cryptostore.ChangeBucket {
		f.root.changedOutside(ev.Bucket)
		root.NotifyEntry(ev.Bucket)
		if b := root.GetChild(ev.Bucket); b != nil {
			b.NotifyContent(0, 0) // attributes and the cached listing
		}
		return
	}
	parent := root.GetChild(ev.Bucket)
	if parent == nil {
		return
	}
	var dirs []*gofs.Inode // loaded directories on the way, outermost first
	parts := strings.Split(ev.Key, "/")
	for i, name := range parts {
		last := i == len(parts)-1
		if name == "" {
			if last {
				// A directory marker: the directory's attributes changed.
				parent.NotifyContent(-1, 0)
			}
			break
		}
		child := parent.GetChild(name)
		if last || child == nil {
			if child != nil {
				if fn, ok := child.Operations().(*fileNode); ok {
					fn.stale.Store(true)
					fn.forget()
				}
			}
			parent.NotifyEntry(name)
			// The directory's attributes (mtime, size) change with its
			// names: drop what the kernel caches of them too.
			parent.NotifyContent(0, 0)
			if child != nil {
				child.NotifyContent(0, 0)
			}
			break
		}
		dirs = append(dirs, parent)
		parent = child
	}
	if ev.Kind == cryptostore.ChangeDelete && len(dirs) > 0 {
		// Directories that existed only through this key are gone.
		dirs = append(dirs, parent)
		for i := len(dirs) - 1; i > 0; i-- {
			d, ok := dirs[i].Operations().(*dirNode)
			if !ok {
				break
			}
			bucket, prefix, ok := d.loc()
			if !ok {
				break
			}
			if has, err := f.store.HasPrefix(context.Background(), bucket, prefix); err != nil || has {
				break
			}
			if len(f.dirtyUnder(bucket, prefix)) > 0 {
				break // files being created here keep it
			}
			if name, p := dirs[i].Parent(); p != nil {
				p.NotifyEntry(name)
				p.NotifyContent(0, 0)
			}
		}
	}
}

// invalidateAll drops everything the kernel caches under n: after a gap in
// a shared store's change feed (cryptostore.ChangeAll) anything may have
// changed. Files only this mount knows (created, not yet committed) keep
// their nodes.
func (f *FS) invalidateAll(n *gofs.Inode) {
	for name, child := range n.Children() {
		if fn, ok := child.Operations().(*fileNode); ok {
			if fn.isPending() {
				continue
			}
			fn.stale.Store(true)
			fn.forget()
		} else {
			f.invalidateAll(child)
		}
		n.NotifyEntry(name)
		// A file's pages; a directory's attributes and cached listing.
		child.NotifyContent(0, 0)
	}
}
