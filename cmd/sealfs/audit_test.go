package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/iam"
)

// TestAuditLogWriter: the audit log is written off the request path: a
// line reaches the file within the flush interval, Close writes every line
// still queued, a full queue makes record wait (counted), never drops a
// line, and the metric counts uses per action, result and user.
func TestAuditLogWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key-use.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	a := &auditLog{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), uses: m.keyUses, full: m.auditFull}
	a.start(f, 4, 50*time.Millisecond)
	use := func(user, action string, err error) cryptostore.KeyUse {
		return cryptostore.KeyUse{Time: time.Now().UTC(), User: user, Action: action, KeyID: "k", KeyARN: "arn:aws:kms:r:0:key/k", Bucket: "b", Object: "0123", Err: err}
	}
	a.record(use("reader", "kms:Decrypt", iam.ErrAccessDenied))
	deadline := time.Now().Add(5 * time.Second)
	for lines(t, path) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("a line did not reach the file within the flush interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 1000 lines through a queue of 4: record waits for room (counted),
	// no line is lost; Close writes the rest.
	for range 1000 {
		a.record(use("", "kms:GenerateDataKey", nil))
	}
	a.record(use("writer", "kms:ScheduleKeyDeletion", errors.New("kms: key is disabled")))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := lines(t, path); n != 1002 {
		t.Fatalf("%d lines in the audit log, want 1002", n)
	}
	if counterValue(t, m, "sealfs_audit_queue_full_total", nil) == 0 {
		t.Error("sealfs_audit_queue_full_total did not count the waits on a full queue")
	}
	for _, tc := range []struct {
		action, result, user string
		n                    float64
	}{
		{"kms:Decrypt", "denied", "reader", 1},
		{"kms:GenerateDataKey", "allowed", "admin", 1000},
		{"kms:ScheduleKeyDeletion", "failed", "writer", 1},
	} {
		if got := counterValue(t, m, "sealfs_key_uses_total", map[string]string{"action": tc.action, "result": tc.result, "user": tc.user}); got != tc.n {
			t.Errorf("sealfs_key_uses_total{action=%q,result=%q,user=%q} = %v, want %v", tc.action, tc.result, tc.user, got, tc.n)
		}
	}
	data, _ := os.ReadFile(path)
	last := strings.Split(strings.TrimSpace(string(data)), "\n")[1001]
	var r auditRecord
	if err := json.Unmarshal([]byte(last), &r); err != nil || r.User != "writer" || r.Result != "failed" || r.Error != "kms: key is disabled" {
		t.Errorf("last line %s: %+v, %v", last, r, err)
	}
}

// TestAuditRecordAfterClose: a key use recorded after Close (a request the
// shutdown did not wait for), even by callers blocked on a full queue while
// Close runs, neither panics nor hangs; it goes to the daemon's log.
func TestAuditRecordAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key-use.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	var mu sync.Mutex
	a := &auditLog{logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))}
	a.start(f, 1, time.Hour)
	use := cryptostore.KeyUse{Time: time.Now().UTC(), Action: "kms:Decrypt", KeyID: "k", Bucket: "b", Object: "0123"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				a.record(use)
			}
		}()
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.record(use)
	written := lines(t, path)
	mu.Lock()
	late := strings.Count(logged.String(), "key use after the audit log closed")
	mu.Unlock()
	if written+late != 8*50+1 || late == 0 {
		t.Fatalf("%d lines written and %d logged after Close, want 401 in all with the last one logged", written, late)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func lines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); n++ {
	}
	return n
}

// counterValue is the value of the counter name with labels in m.
func counterValue(t *testing.T, m *metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, c := range mf.GetMetric() {
			if len(c.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range c.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return c.GetCounter().GetValue()
		}
	}
	return 0
}
