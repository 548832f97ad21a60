package meta

// The etcd engine's change feed: one Watch per watched prefix, under the
// store's key prefix. The client resumes a watch by itself after a member
// fails (from the last revision it saw, so nothing is lost); a watch the
// server cancels (its start revision was compacted away) or that ends for
// any other reason is opened again from the current revision, after a
// reset.

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func (e *etcdKV) watch(ctx context.Context, prefixes [][]byte) (<-chan kvWatchEvent, error) {
	out := make(chan kvWatchEvent, 256)
	// Pin the start revision before returning, so every commit after the
	// return is reported.
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	resp, err := e.cli.Get(rctx, e.prefix, clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return nil, err
	}
	rev := resp.Header.Revision + 1
	done := make(chan struct{}, len(prefixes))
	for _, p := range prefixes {
		go e.watchPrefix(ctx, e.prefix+string(p), rev, out, done)
	}
	go func() {
		for range prefixes {
			<-done
		}
		close(out)
	}()
	return out, nil
}

func (e *etcdKV) watchPrefix(ctx context.Context, prefix string, rev int64, out chan<- kvWatchEvent, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	send := func(ev kvWatchEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithPrevKV())
		for wr := range wch {
			if err := wr.Err(); err != nil {
				break
			}
			for _, ev := range wr.Events {
				k := ev.Kv.Key[len(e.prefix):]
				if !send(kvWatchEvent{key: k, deleted: ev.Type == clientv3.EventTypeDelete}) {
					cancel()
					return
				}
			}
			if wr.Header.Revision >= rev {
				rev = wr.Header.Revision + 1
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		// The watch ended: what happened since is unknown. Start again
		// from now.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, c := context.WithTimeout(ctx, e.timeout)
		resp, err := e.cli.Get(rctx, prefix, clientv3.WithCountOnly())
		c()
		if err != nil {
			continue // rev stays; the next watch tries from there
		}
		rev = resp.Header.Revision + 1
		if !send(kvWatchEvent{reset: true}) {
			return
		}
	}
}
