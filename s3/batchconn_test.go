package s3

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// scriptConn records its writes and fails the ones it is told to, and
// reads what arrives in bursts: a read returns bytes of the current burst
// only, as a socket returns what has arrived.
type scriptConn struct {
	net.Conn
	writes [][]byte
	fail   error // returned by every write once set
	bursts [][]byte
	reads  int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.bursts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.bursts[0])
	if c.bursts[0] = c.bursts[0][n:]; len(c.bursts[0]) == 0 {
		c.bursts = c.bursts[1:]
	}
	return n, nil
}

func (c *scriptConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// TestBatchConn: writes inside batch reach the connection as one write (or
// as few as its buffer allows), in order, and writes outside it pass
// through; once a gathered write fails, batch reports it and every later
// write fails, since TLS took the gathered records as sent.
func TestBatchConn(t *testing.T) {
	raw := &scriptConn{}
	c := &batchConn{Conn: raw}
	if _, err := c.Write([]byte("head")); err != nil {
		t.Fatal(err)
	}
	var want []byte
	err := c.batch(func() error {
		for i := range 20 {
			rec := bytes.Repeat([]byte{byte(i)}, 16<<10+29)
			want = append(want, rec...)
			if _, err := c.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	// 20 records are more than one buffer: two writes, then "tail".
	if len(raw.writes) != 4 || string(raw.writes[0]) != "head" || string(raw.writes[3]) != "tail" {
		t.Fatalf("%d writes reached the connection, want head, two gathered, tail", len(raw.writes))
	}
	if got := append(raw.writes[1], raw.writes[2]...); !bytes.Equal(got, want) {
		t.Fatal("the gathered writes do not hold the records in order")
	}

	broken := errors.New("connection reset")
	err = c.batch(func() error {
		if _, err := c.Write([]byte("record")); err != nil {
			return err
		}
		raw.fail = broken
		return nil
	})
	if !errors.Is(err, broken) {
		t.Fatalf("batch with a failed gathered write: %v, want %v", err, broken)
	}
	raw.fail = nil
	if _, err := c.Write([]byte("after")); !errors.Is(err, broken) {
		t.Fatalf("a write after a failed gathered one: %v, want %v", err, broken)
	}
}

// TestBatchConnReadsAhead: reads made as TLS makes them (a 5-byte header,
// then records of up to 16 KiB) get every byte in order; while data
// streams in, the connection is read in large fills rather than a read
// per record, and once a burst is over its buffer is let go.
func TestBatchConnReadsAhead(t *testing.T) {
	var want []byte
	burst := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(len(want) + i)
		}
		want = append(want, b...)
		return b
	}
	raw := &scriptConn{}
	raw.bursts = [][]byte{burst(100), burst(1 << 20), burst(70000)}
	c := &batchConn{Conn: raw}
	var got []byte
	for size := 5; ; size = 16<<10 + 5 {
		p := make([]byte, size)
		n, err := c.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(raw.bursts) == 0 && c.rpos == c.rend && c.ahead != nil {
			t.Fatal("the read-ahead buffer is kept after the last burst was read")
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d sent, or not in order", len(got), len(want))
	}
	// A read per 16 KiB record would be ~70; fills of 128 KiB take ~12.
	if raw.reads > 20 {
		t.Errorf("%d reads of the connection for %d bytes", raw.reads, len(want))
	}
	if c.ahead != nil {
		t.Error("the read-ahead buffer is still held at the end")
	}
}
