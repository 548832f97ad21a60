package console

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/kms"
	"github.com/sealfs/sealfs/meta"
	"github.com/sealfs/sealfs/replicate"
)

const (
	testAccessKey = "CONSOLETESTKEY"
	testSecretKey = "console-test-secret"
)

// clock is a settable clock for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	store   *cryptostore.Store
	console *Console
	srv     *httptest.Server // HTTPS
	plain   *httptest.Server // plain HTTP
	clock   *clock
}

// newEnv serves a console over a real store (meta and kms are set up here,
// in the test; the console sees the store and the replication manager).
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := meta.Open(filepath.Join(dir, "meta"), meta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kms.OpenLocal(filepath.Join(dir, "kms"), bytes.Repeat([]byte{5}, 32), kms.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replq, err := cryptostore.NewReplicationQueue(db, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	repl, err := replicate.New(replicate.Config{Queue: replq, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := cryptostore.Open(context.Background(), cryptostore.Config{Dir: dir, Meta: db, KMS: k, CollectInterval: -1, OnCommit: repl.OnCommit})
	if err != nil {
		t.Fatal(err)
	}
	repl.Start(store)
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	stats := NewStats()
	stats.now = clk.now
	con, err := New(Config{Store: store, Replication: repl, Region: "us-east-1", Version: "test", Started: clk.now(),
		AccessKey: testAccessKey, SecretKey: testSecretKey, Stats: stats, Now: clk.now, FailedLoginDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, console: con, clock: clk}
	e.srv = httptest.NewTLSServer(con)
	e.plain = httptest.NewServer(con)
	t.Cleanup(func() {
		e.srv.Close()
		e.plain.Close()
		repl.Close()
		store.Close()
		k.Close()
		db.Close()
	})
	return e
}

// client is a browser-like client: cookies kept, redirects not followed.
func (e *env) client(t testing.TB) *http.Client {
	t.Helper()
	c := e.srv.Client()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`name="csrf-token" content="([^"]*)"`)
)

// login logs c in and returns the session's CSRF token.
func (e *env) login(t testing.TB, c *http.Client, ak, sk string) (string, *http.Response) {
	t.Helper()
	body := e.get(t, c, "/console/login", http.StatusOK)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no login CSRF field in the login page:\n%s", body)
	}
	resp := e.post(t, c, "/console/login", url.Values{"csrf": {m[1]}, "access_key": {ak}, "secret_key": {sk}})
	if resp.StatusCode != http.StatusSeeOther {
		return "", resp
	}
	page := e.get(t, c, "/console/", http.StatusOK)
	tm := csrfMeta.FindStringSubmatch(page)
	if tm == nil || tm[1] == "" {
		t.Fatalf("no CSRF token on the overview:\n%s", page)
	}
	return tm[1], resp
}

func (e *env) do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func (e *env) get(t testing.TB, c *http.Client, path string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Accept", "text/html")
	resp, body := e.do(t, c, req)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d\n%s", path, resp.StatusCode, want, body)
	}
	return body
}

func (e *env) post(t testing.TB, c *http.Client, path string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, body := e.do(t, c, req)
	resp.Body = io.NopCloser(strings.NewReader(body))
	return resp
}

func readBody(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}
