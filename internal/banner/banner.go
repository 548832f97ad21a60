// Package banner reads the lines `sealfs serve` and `sealfs mount` print on
// their standard output once they serve: the S3 endpoint, the CA
// certificate, the metrics address, and last the credentials line. Tests
// and benchmarks that run the daemon as a child process wait for it here.
package banner

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"time"
)

// Banner is what the daemon said about itself; a field is empty when the
// daemon did not print it.
type Banner struct {
	S3Addr  string // host:port of the HTTPS S3 listener ("S3 endpoint: https://…")
	CAFile  string // the CA certificate's file as printed (may be relative to the data directory)
	Metrics string // the metrics listener's address
}

// Wait reads r until the credentials line (the banner's last), the end of r
// (the daemon exited), or within has passed, and returns what it read; ok
// reports that the whole banner came. It goes on reading r in the
// background, so that the daemon never blocks writing to its standard
// output.
func Wait(r io.Reader, within time.Duration) (Banner, bool) {
	var (
		mu   sync.Mutex
		b    Banner
		full bool
	)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		closed := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			mu.Lock()
			if v, found := strings.CutPrefix(line, "S3 endpoint: https://"); found {
				b.S3Addr = v
			}
			if v, found := strings.CutPrefix(line, "CA cert:"); found {
				b.CAFile = strings.TrimSpace(v)
			}
			if v, found := strings.CutPrefix(line, "metrics:"); found {
				b.Metrics = strings.TrimSpace(v)
			}
			mu.Unlock()
			if strings.HasPrefix(line, "credentials:") && !closed {
				closed = true
				mu.Lock()
				full = true
				mu.Unlock()
				close(done)
			}
		}
		if !closed {
			close(done)
		}
	}()
	select {
	case <-done:
	case <-time.After(within):
	}
	mu.Lock()
	defer mu.Unlock()
	return b, full
}
