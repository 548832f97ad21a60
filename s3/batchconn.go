package s3

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// Gathered writes and read-ahead.
//
// TLS writes every record, at most 16 KiB of data, to the socket as it
// seals it: a 256 KiB piece of a GET body is 16 write calls. On these
// machines a call is dear (on loopback the sender also runs the receiver's
// TCP path): in a profile of GET 64 MiB x2 the record writes were 61% of
// the daemon's CPU. The listener's connections therefore sit under TLS as batchConns,
// and a GET writes each piece of its body inside batch: the records TLS
// writes meanwhile are gathered and reach the socket in one call when the
// piece is written. Everything else passes through unchanged. Reads run
// ahead while a request body streams in (see batchConn).

// batchBytes bounds what a batchConn gathers before it writes: a 256 KiB
// piece sealed into records (16 × (16 KiB + 29 bytes)) fits.
const batchBytes = 272 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, batchBytes); return &b }}

// BatchListener wraps ln's connections so that a GET served over them can
// gather its TLS records (see batch) and their reads run ahead. Put it
// under the TLS listener, and set the server's ConnContext to ConnContext.
func BatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

// ConnContext is an http.Server's ConnContext that lets the requests of a
// connection from BatchListener (under TLS) gather their writes.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if bc, ok := c.(*batchConn); ok {
		return context.WithValue(ctx, batchConnKey{}, bc)
	}
	return ctx
}

type batchConnKey struct{}

// batchConn is a connection whose writes can be gathered for a while, and
// whose reads run ahead while data streams in.
type batchConn struct {
	net.Conn

	mu  sync.Mutex
	buf *[]byte // gathering while set
	err error   // a gathered write failed: every later write fails

	// Reading: TLS reads a record at a time, one read call each, so a
	// request body costs a call per 16 KiB. While a body streams in (the
	// last read filled what was asked for) a read fills ahead, up to
	// readAhead bytes, and the next reads are served from there. A fill
	// that comes back short ends the stream: once served, its buffer
	// goes back to the pool, so a connection waiting for its next
	// request holds none (unless the body's last fill happened to come
	// back exactly full). TLS reads one at a time (under its own lock),
	// so these fields need none.
	ahead      *[]byte
	rpos, rend int
	streaming  bool
}

// readAhead is the most a read fills ahead.
const readAhead = 128 << 10

var aheadBufs = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

func (c *batchConn) Read(p []byte) (int, error) {
	if c.rpos < c.rend {
		n := copy(p, (*c.ahead)[c.rpos:c.rend])
		c.rpos += n
		if c.rpos == c.rend && !c.streaming {
			c.release()
		}
		return n, nil
	}
	if !c.streaming || len(p) >= readAhead {
		n, err := c.Conn.Read(p)
		c.streaming = err == nil && n == len(p)
		return n, err
	}
	if c.ahead == nil {
		c.ahead = aheadBufs.Get().(*[]byte)
	}
	k, err := c.Conn.Read(*c.ahead)
	if k == 0 {
		c.streaming = false
		c.release()
		return 0, err
	}
	// A read that returns bytes returns no error on TCP; one that did
	// comes back on the next read.
	c.rpos, c.rend = 0, k
	c.streaming = k == len(*c.ahead)
	return c.Read(p)
}

// release returns the read-ahead buffer to the pool.
func (c *batchConn) release() {
	if c.ahead != nil {
		aheadBufs.Put(c.ahead)
		c.ahead = nil
	}
	c.rpos, c.rend = 0, 0
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	if len(*c.buf)+len(p) > cap(*c.buf) {
		if err := c.writeLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(*c.buf) {
			n, err := c.Conn.Write(p)
			if err != nil {
				c.err = err
			}
			return n, err
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// writeLocked writes the gathered bytes to the socket.
func (c *batchConn) writeLocked() error {
	if c.err != nil {
		return c.err
	}
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	if err != nil {
		// TLS counted the gathered records as sent: the stream is
		// broken for good.
		c.err = err
	}
	return err
}

// batch runs write with the connection's writes gathered, then writes
// them. Its error is the first write's to fail, if write's own did not.
func (c *batchConn) batch(write func() error) error {
	c.mu.Lock()
	c.buf = batchBufs.Get().(*[]byte)
	c.mu.Unlock()
	err := write()
	c.mu.Lock()
	ferr := c.writeLocked()
	batchBufs.Put(c.buf)
	c.buf = nil
	c.mu.Unlock()
	if err == nil {
		err = ferr
	}
	return err
}

// gathered runs write with the writes of the request's connection (ctx)
// gathered if it came through BatchListener, and as it is otherwise.
func gathered(ctx context.Context, write func() error) error {
	if bc, ok := ctx.Value(batchConnKey{}).(*batchConn); ok {
		return bc.batch(write)
	}
	return write()
}
