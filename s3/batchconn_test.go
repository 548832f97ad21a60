package s3

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

// scriptConn records its writes and fails the ones it is told to.
type scriptConn struct {
	net.Conn
	writes [][]byte
	fail   error // returned by every write once set
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
