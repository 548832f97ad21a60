package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
)

// consoleURLs are every console route, with a bucket, object and key
// that exist.
func consoleURLs(keyID string) (gets, posts []string) {
	gets = []string{
		"/console/", "/console/buckets", "/console/buckets/bkt1/delete", "/console/buckets/bkt1/settings",
		"/console/buckets/bkt1/settings?modify=encryption", "/console/buckets/bkt1/objects", "/console/buckets/bkt1/object?key=a.txt",
		"/console/buckets/bkt1/download?key=a.txt", "/console/buckets/bkt1/object/delete?key=a.txt", "/console/keys",
		"/console/keys/" + keyID + "/rotate", "/console/replication", "/console/replication/resync/x", "/console/nowhere",
	}
	posts = []string{
		"/console/logout", "/console/buckets", "/console/buckets/bkt1/delete", "/console/buckets/bkt1/encryption",
		"/console/buckets/bkt1/upload", "/console/buckets/bkt1/object/delete", "/console/keys/" + keyID + "/disable",
		"/console/keys/" + keyID + "/rotate", "/console/replication/bkt1/resync",
	}
	return gets, posts
}

// seed makes bucket bkt1 (encrypting) with an object, so that it has a key.
func seed(t testing.TB, e *env) string {
	t.Helper()
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "bkt1", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetBucketEncryption(ctx, "bkt1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Put(ctx, &cryptostore.PutInput{Bucket: "bkt1", Key: "a.txt", Body: strings.NewReader("hello"), Size: 5}); err != nil {
		t.Fatal(err)
	}
	b, err := e.store.GetBucket(ctx, "bkt1")
	if err != nil || b.MasterKeyID == "" {
		t.Fatalf("bucket bkt1 has no master key: %v", err)
	}
	return b.MasterKeyID
}

// refused checks that a request without a working session changed nothing
// and was answered 401 (or, for a browser's GET, sent to the login page).
func refused(t *testing.T, e *env, c *http.Client, what string, cookie string) {
	t.Helper()
	keyID := seedOnce(t, e)
	gets, posts := consoleURLs(keyID)
	for _, p := range gets {
		for _, accept := range []string{"text/html", "*/*"} {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
			req.Header.Set("Accept", accept)
			if cookie != "" {
				req.Header.Set("Cookie", cookieName+"="+cookie)
			}
			resp, body := e.do(t, c, req)
			switch {
			case accept == "text/html" && resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") == "/console/login":
			case accept != "text/html" && resp.StatusCode == http.StatusUnauthorized:
			default:
				t.Errorf("%s: GET %s (Accept %s) answered %d %s: %.200s", what, p, accept, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if strings.Contains(body, "a.txt") || strings.Contains(body, keyID) {
				t.Errorf("%s: GET %s shows the store's content", what, p)
			}
		}
	}
	for _, p := range posts {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+p, strings.NewReader(url.Values{"csrf": {"x"}, "confirm": {"bkt1"}, "mode": {"none"}, "key": {"a.txt"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookieName+"="+cookie)
		}
		resp, body := e.do(t, c, req)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: POST %s answered %d: %.200s", what, p, resp.StatusCode, body)
		}
	}
	assertUnchanged(t, e, keyID)
}

var seeded = map[*env]string{}

func seedOnce(t testing.TB, e *env) string {
	if id, ok := seeded[e]; ok {
		return id
	}
	seeded[e] = seed(t, e)
	return seeded[e]
}

func assertUnchanged(t *testing.T, e *env, keyID string) {
	t.Helper()
	ctx := context.Background()
	b, err := e.store.GetBucket(ctx, "bkt1")
	if err != nil || !b.EncryptionOn {
		t.Fatalf("bucket bkt1 changed: %+v %v", b, err)
	}
	if _, err := e.store.Head(ctx, "bkt1", "a.txt"); err != nil {
		t.Fatalf("bkt1/a.txt: %v", err)
	}
	md, err := e.store.DescribeKey(ctx, keyID)
	if err != nil || md.State != cryptostore.KeyEnabled || md.CurrentVersion != 1 {
		t.Fatalf("key changed: %+v %v", md, err)
	}
}

func TestConsoleRefusesWithoutSession(t *testing.T) {
	e := newEnv(t)
	refused(t, e, e.client(t), "no session", "")
}

func TestConsoleRefusesForgedSession(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	refused(t, e, c, "forged session", randomToken())
	refused(t, e, c, "garbage session", `"><script>alert(1)</script>`)
}

func TestConsoleRefusesExpiredSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(e *env, c *http.Client)
	}{
		{"idle", func(e *env, _ *http.Client) { e.clock.advance(DefaultSessionIdle + time.Second) }},
		{"max", func(e *env, c *http.Client) {
			// Busy all along, but past the session's lifetime.
			for range int(DefaultSessionMax/(DefaultSessionIdle/2)) + 1 {
				e.clock.advance(DefaultSessionIdle / 2)
				e.get(t, c, "/console/buckets", 0)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			seedOnce(t, e)
			c := e.client(t)
			if _, resp := e.login(t, c, testAccessKey, testSecretKey); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %d", resp.StatusCode)
			}
			e.get(t, c, "/console/buckets", http.StatusOK)
			u, _ := url.Parse(e.srv.URL + "/console/")
			var id string
			for _, ck := range c.Jar.Cookies(u) {
				if ck.Name == cookieName {
					id = ck.Value
				}
			}
			if id == "" {
				t.Fatal("no session cookie")
			}
			tc.run(e, c)
			refused(t, e, e.client(t), "expired session ("+tc.name+")", id)
		})
	}
}

func TestConsoleSessionCookie(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	_, resp := e.login(t, c, testAccessKey, testSecretKey)
	var sc string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, cookieName+"=") {
			sc = v
		}
	}
	for _, want := range []string{"Path=/console/", "Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	id := strings.TrimPrefix(strings.SplitN(sc, ";", 2)[0], cookieName+"=")
	if n := len(id); n < 43 { // 256 bits, base64
		t.Errorf("session id %q is %d characters: fewer than 256 bits", id, n)
	}
}

func TestConsoleCSRF(t *testing.T) {
	e := newEnv(t)
	keyID := seedOnce(t, e)
	c := e.client(t)
	tok, _ := e.login(t, c, testAccessKey, testSecretKey)
	_, posts := consoleURLs(keyID)
	for _, bad := range []string{"", "x", tok + "x", strings.ToUpper(tok)} {
		for _, p := range posts {
			resp := e.post(t, c, p, url.Values{"csrf": {bad}, "confirm": {"bkt1"}, "mode": {"none"}, "key": {"a.txt"}, "name": {"newbucket"}})
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with CSRF token %q: %d, want 403", p, bad, resp.StatusCode)
			}
		}
	}
	// A cross-origin POST is refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/buckets", strings.NewReader(url.Values{"csrf": {tok}, "name": {"evil"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, _ := e.do(t, c, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d, want 403", resp.StatusCode)
	}
	assertUnchanged(t, e, keyID)
	if _, err := e.store.GetBucket(context.Background(), "newbucket"); err == nil {
		t.Fatal("a bucket was created without a CSRF token")
	}
	// The right token works, as a field and as the header.
	if resp := e.post(t, c, "/console/buckets", url.Values{"csrf": {tok}, "name": {"newbucket"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create bucket with the token: %d %s", resp.StatusCode, readBody(resp))
	}
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/console/buckets/newbucket/encryption", strings.NewReader("mode=SSE-KMS"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", tok)
	if resp, body := e.do(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set encryption with the header: %d %s", resp.StatusCode, body)
	}
	if b, err := e.store.GetBucket(context.Background(), "newbucket"); err != nil || !b.EncryptionOn {
		t.Fatalf("newbucket: %+v %v", b, err)
	}
	// Logout ends the session on the server.
	if resp := e.post(t, c, "/console/logout", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	e.get(t, c, "/console/buckets", http.StatusSeeOther)
}

func TestConsoleLogin(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	// Wrong secret, then the login form's token missing.
	if _, resp := e.login(t, c, testAccessKey, "wrong"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", resp.StatusCode)
	}
	resp := e.post(t, c, "/console/login", url.Values{"access_key": {testAccessKey}, "secret_key": {testSecretKey}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login without the form's token: %d", resp.StatusCode)
	}
	// A user's working S3 key is refused, saying why.
	ctx := context.Background()
	if _, err := e.store.CreateUser(ctx, "alice", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)); err != nil {
		t.Fatal(err)
	}
	k, err := e.store.CreateAccessKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, resp = e.login(t, c, k.ID, k.SecretKey)
	if body := readBody(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "belongs to a user") {
		t.Fatalf("user's key: %d %s", resp.StatusCode, body)
	}
	if _, resp := e.login(t, c, testAccessKey, testSecretKey); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin login: %d %s", resp.StatusCode, readBody(resp))
	}
}

func TestConsoleLoginThrottle(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	for i := range freeFailures {
		if _, resp := e.login(t, c, testAccessKey, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// Now even the right secret must wait.
	_, resp := e.login(t, c, testAccessKey, testSecretKey)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("login right after %d failures: %d, want 429 with Retry-After", freeFailures, resp.StatusCode)
	}
	// Another access key from the same source waits too.
	if _, resp := e.login(t, c, "OTHERKEY", "x"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("another key from the same source: %d, want 429", resp.StatusCode)
	}
	e.clock.advance(2 * time.Second)
	if _, resp := e.login(t, c, testAccessKey, testSecretKey); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login after the wait: %d %s", resp.StatusCode, readBody(resp))
	}
}

func TestConsoleHTTPSOnly(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/console/", "/console/login"} {
		resp, err := e.plain.Client().Get(e.plain.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("plain HTTP %s: %d, want 403", p, resp.StatusCode)
		}
	}
}

func TestIsBrowserRoot(t *testing.T) {
	mk := func(h map[string]string, query string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "https://x/"+query, nil)
		r.TLS = &tls.ConnectionState{}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	html := "text/html,application/xhtml+xml,*/*;q=0.8"
	for _, tt := range []struct {
		h     map[string]string
		query string
		want  bool
	}{
		{map[string]string{"Accept": html}, "", true},
		{map[string]string{}, "", false},                // anonymous S3 ListBuckets
		{map[string]string{"Accept": "*/*"}, "", false}, // curl
		{map[string]string{"Accept": html, "Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "", false},
		{map[string]string{"Accept": html, "X-Amz-Date": "20260101T000000Z"}, "", false},
		{map[string]string{"Accept": html}, "?X-Amz-Signature=x", false}, // presigned
	} {
		if got := IsBrowserRoot(mk(tt.h, tt.query)); got != tt.want {
			t.Errorf("IsBrowserRoot(%v %q) = %v, want %v", tt.h, tt.query, got, tt.want)
		}
	}
	plain, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	plain.Header.Set("Accept", html)
	if IsBrowserRoot(plain) {
		t.Error("a plain-HTTP request is sent to the console")
	}
}

// TestConsoleXSS stores keys and metadata full of markup and quotes and
// checks every page that shows them shows them as text.
func TestConsoleXSS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	evil := `<script>alert("x")</script>'"><img src=x onerror=alert(1)>`
	bucket := "xss"
	if err := e.store.CreateBucket(ctx, bucket, "us-east-1"); err != nil {
		t.Fatal(err)
	}
	keys := []string{evil, "dir" + evil + "/inner" + evil}
	for _, k := range keys {
		if _, err := e.store.Put(ctx, &cryptostore.PutInput{Bucket: bucket, Key: k, Body: strings.NewReader("x"), Size: 1,
			Meta: cryptostore.ObjectMeta{ContentType: `text/html"><script>alert(2)</script>`, User: map[string]string{"note": evil, "q": `'"&`}}}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client(t)
	e.login(t, c, testAccessKey, testSecretKey)
	pages := []string{
		"/console/", "/console/buckets",
		"/console/buckets/xss/objects",
		"/console/buckets/xss/objects?prefix=" + url.QueryEscape("dir"+evil+"/"),
		"/console/buckets/xss/object?key=" + url.QueryEscape(evil),
		"/console/buckets/xss/object/delete?key=" + url.QueryEscape(evil),
		"/console/buckets/xss/object?key=" + url.QueryEscape("dir"+evil+"/inner"+evil),
		"/console/buckets/xss/objects?prefix=" + url.QueryEscape(evil),       // the prefix itself echoed
		"/console/buckets/xss/object?key=" + url.QueryEscape(evil+"missing"), // error page echoes the key
	}
	for _, p := range pages {
		body := e.get(t, c, p, 0)
		for _, raw := range []string{"<script>alert", "<img src=x", `"><script`, "onerror=alert(1)>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s shows %q unescaped", p, raw)
			}
		}
	}
	body := e.get(t, c, "/console/buckets/xss/object?key="+url.QueryEscape(evil), http.StatusOK)
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", "&#39;&#34;&amp;"} {
		if !strings.Contains(body, want) {
			t.Errorf("the object page does not show %q as text:\n%s", want, body)
		}
	}
	// Downloads are never rendered on the console's origin.
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/buckets/xss/download?key="+url.QueryEscape(evil), nil)
	resp, _ := e.do(t, c, req)
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/octet-stream" || !strings.HasPrefix(cd, "attachment") {
		t.Errorf("download: Content-Type %q, Content-Disposition %q", ct, cd)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "sandbox" {
		t.Errorf("download: CSP %q", csp)
	}
}

// TestConsoleEncryptionFlow: Default Encryption → Modify → SSE-KMS → OK,
// an upload (the script's way: the token as a header, one file per
// request) is encrypted; off again, the next is plain and the first stays
// encrypted.
func TestConsoleEncryptionFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t)
	tok, _ := e.login(t, c, testAccessKey, testSecretKey)
	if resp := e.post(t, c, "/console/buckets", url.Values{"csrf": {tok}, "name": {"docs"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d %s", resp.StatusCode, readBody(resp))
	}
	page := e.get(t, c, "/console/buckets/docs/settings", http.StatusOK)
	if !strings.Contains(page, `id="encryption-modify"`) || !strings.Contains(page, "Only objects written after a change are affected") || !strings.Contains(page, "Signature Version 4") {
		t.Fatalf("settings page:\n%s", page)
	}
	page = e.get(t, c, "/console/buckets/docs/settings?modify=encryption", http.StatusOK)
	if !strings.Contains(page, `value="SSE-KMS"`) || !strings.Contains(page, `value="none"`) || strings.Count(page, `type="radio"`) != 2 {
		t.Fatalf("modify form offers other than SSE-KMS and none:\n%s", page)
	}
	set := func(mode string) {
		if resp := e.post(t, c, "/console/buckets/docs/encryption", url.Values{"csrf": {tok}, "mode": {mode}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("set %s: %d %s", mode, resp.StatusCode, readBody(resp))
		}
	}
	upload := func(name, content string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write([]byte(content))
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/buckets/docs/upload?prefix=", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("X-CSRF-Token", tok)
		if resp, body := e.do(t, c, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("upload %s: %d %s", name, resp.StatusCode, body)
		}
	}
	set("SSE-KMS")
	upload("one.txt", "first")
	o1, err := e.store.Head(ctx, "docs", "one.txt")
	if err != nil || o1.Encryption == nil || o1.Encryption.Algorithm != "aws:kms" {
		t.Fatalf("one.txt: %+v %v", o1, err)
	}
	page = e.get(t, c, "/console/buckets/docs/settings", http.StatusOK)
	if !strings.Contains(page, `id="master-key"`) || !strings.Contains(page, o1.Encryption.KeyID) {
		t.Fatalf("settings page does not show the master key %s:\n%s", o1.Encryption.KeyID, page)
	}
	page = e.get(t, c, "/console/buckets/docs/object?key=one.txt", http.StatusOK)
	if !strings.Contains(page, "aws:kms") || !strings.Contains(page, e.store.KeyARN(o1.Encryption.KeyID)) {
		t.Fatalf("object page:\n%s", page)
	}
	set("none")
	upload("two.txt", "second")
	if o2, err := e.store.Head(ctx, "docs", "two.txt"); err != nil || o2.Encryption != nil {
		t.Fatalf("two.txt: %+v %v", o2, err)
	}
	if o1, err := e.store.Head(ctx, "docs", "one.txt"); err != nil || o1.Encryption == nil {
		t.Fatalf("one.txt after turning encryption off: %+v %v", o1, err)
	}
	// The plain form (no script): the token as a field.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", tok)
	for i := range 2 {
		fw, _ := mw.CreateFormFile("file", fmt.Sprintf("multi-%d.txt", i))
		fw.Write([]byte("m"))
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/buckets/docs/upload?prefix=sub/", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if resp, body := e.do(t, c, req); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("form upload: %d %s", resp.StatusCode, body)
	}
	page = e.get(t, c, "/console/buckets/docs/objects?prefix=sub/", http.StatusOK)
	if !strings.Contains(page, "multi-0.txt") || !strings.Contains(page, "multi-1.txt") {
		t.Fatalf("objects page:\n%s", page)
	}
	// Deleting a non-empty bucket is refused; the confirmation names it.
	page = e.get(t, c, "/console/buckets/docs/delete", http.StatusOK)
	if !strings.Contains(page, "4 object(s)") {
		t.Fatalf("delete confirmation does not say what is lost:\n%s", page)
	}
	if resp := e.post(t, c, "/console/buckets/docs/delete", url.Values{"csrf": {tok}, "confirm": {"docs"}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("delete non-empty: %d", resp.StatusCode)
	}
}

// TestConsolePaging lists a bucket of 1000 keys in folders and pages.
func TestConsolePaging(t *testing.T) {
	e := newEnv(t)
	fill(t, e, "many", 250)
	c := e.client(t)
	e.login(t, c, testAccessKey, testSecretKey)
	page := e.get(t, c, "/console/buckets/many/objects", http.StatusOK)
	if !strings.Contains(page, "folder/") || strings.Count(page, `class="obj"`) != defaultPageSize-1 || !strings.Contains(page, `id="next-page"`) {
		t.Fatalf("first page: %d objects\n%.2000s", strings.Count(page, `class="obj"`), page)
	}
	page = e.get(t, c, "/console/buckets/many/objects?n=1000", http.StatusOK)
	if n := strings.Count(page, `class="obj"`); n != 250 || strings.Contains(page, `id="next-page"`) {
		t.Fatalf("n=1000: %d objects", n)
	}
}

func fill(t testing.TB, e *env, bucket string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, bucket, "us-east-1"); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := e.store.Put(ctx, &cryptostore.PutInput{Bucket: bucket, Key: fmt.Sprintf("obj-%05d", i), Body: strings.NewReader("x"), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Put(ctx, &cryptostore.PutInput{Bucket: bucket, Key: "folder/inside", Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleCharts: S3 requests observed show in the overview's SVG.
func TestConsoleCharts(t *testing.T) {
	e := newEnv(t)
	for range 7 {
		e.console.cfg.Stats.Observe("PutObject", 200, 1000, 0, 0)
	}
	e.console.cfg.Stats.Observe("GetObject", 404, 0, 10, 0)
	c := e.client(t)
	e.login(t, c, testAccessKey, testSecretKey)
	page := e.get(t, c, "/console/", http.StatusOK)
	for _, want := range []string{"<svg", "<polyline", "8 requests in the last hour, 1 of them failed", "6.8 KiB received"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	e.clock.advance(time.Hour + statSlot)
	e.login(t, c, testAccessKey, testSecretKey) // the session expired meanwhile
	page = e.get(t, c, "/console/", http.StatusOK)
	if !strings.Contains(page, "0 requests in the last hour") {
		t.Error("an hour later the requests are still counted")
	}
}

// TestConsoleLinks follows the object browser's own links for keys with
// characters that URLs and HTML treat specially: each lands on its object.
func TestConsoleLinks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "links", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a b+c&d=e%20f#g?h", "dir one/x'y\"z<w>", "ünï/cödé ✓", `back\slash;semi`}
	for _, k := range keys {
		if _, err := e.store.Put(ctx, &cryptostore.PutInput{Bucket: "links", Key: k, Body: strings.NewReader("data of " + k), Size: int64(len("data of " + k))}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client(t)
	e.login(t, c, testAccessKey, testSecretKey)
	hrefs := regexp.MustCompile(`href="(/console/buckets/links/(?:object|objects|download)\?[^"]*)"`)
	seen := map[string]bool{}
	var walk func(page string)
	walk = func(page string) {
		for _, m := range hrefs.FindAllStringSubmatch(page, -1) {
			link := html.UnescapeString(m[1])
			if seen[link] {
				continue
			}
			seen[link] = true
			body := e.get(t, c, link, http.StatusOK)
			if strings.Contains(link, "/objects?") {
				walk(body)
			}
		}
	}
	walk(e.get(t, c, "/console/buckets/links/objects", http.StatusOK))
	for _, k := range keys {
		found := false
		for link := range seen {
			u, _ := url.Parse(link)
			if strings.HasSuffix(u.Path, "/download") && u.Query().Get("key") == k {
				found = true
				req, _ := http.NewRequest(http.MethodGet, e.srv.URL+link, nil)
				if resp, body := e.do(t, c, req); resp.StatusCode != http.StatusOK || body != "data of "+k {
					t.Errorf("download of %q: %d %q", k, resp.StatusCode, body)
				}
			}
		}
		if !found {
			t.Errorf("no download link reaches %q (links: %v)", k, seen)
		}
	}
}

// TestConsoleKeys: rotate, disable and enable a bucket's key from the
// keys page's confirmations; the system key cannot be disabled.
func TestConsoleKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyID := seedOnce(t, e)
	c := e.client(t)
	tok, _ := e.login(t, c, testAccessKey, testSecretKey)
	page := e.get(t, c, "/console/keys", http.StatusOK)
	if !strings.Contains(page, keyID) || !strings.Contains(page, "bkt1") || !strings.Contains(page, "system key") {
		t.Fatalf("keys page:\n%s", page)
	}
	for _, op := range []string{"rotate", "disable", "enable"} {
		confirm := e.get(t, c, "/console/keys/"+keyID+"/"+op, http.StatusOK)
		if !strings.Contains(confirm, `id="confirm-key"`) || !strings.Contains(confirm, "bkt1") {
			t.Fatalf("%s confirmation:\n%s", op, confirm)
		}
		if resp := e.post(t, c, "/console/keys/"+keyID+"/"+op, url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", op, resp.StatusCode, readBody(resp))
		}
		md, err := e.store.DescribeKey(ctx, keyID)
		if err != nil {
			t.Fatal(err)
		}
		switch op {
		case "rotate":
			if md.CurrentVersion != 2 {
				t.Fatalf("after rotate: version %d", md.CurrentVersion)
			}
		case "disable":
			if md.State != cryptostore.KeyDisabled {
				t.Fatalf("after disable: %s", md.State)
			}
			// An object under a disabled key cannot be read; the console says why.
			page := e.get(t, c, "/console/buckets/bkt1/download?key=a.txt", 0)
			if !strings.Contains(page, "disabled") {
				t.Errorf("download under a disabled key:\n%.500s", page)
			}
		case "enable":
			if md.State != cryptostore.KeyEnabled {
				t.Fatalf("after enable: %s", md.State)
			}
		}
	}
	sys, err := e.store.SystemKeyID(ctx)
	if err != nil || sys == "" {
		t.Fatalf("system key: %q %v", sys, err)
	}
	if resp := e.post(t, c, "/console/keys/"+sys+"/disable", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusConflict {
		t.Fatalf("disabling the system key: %d", resp.StatusCode)
	}
}

// TestConsoleReplication: targets, a bucket's rules and a resync followed
// to its end.
func TestConsoleReplication(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seedOnce(t, e)
	repl := e.console.repl
	if _, err := repl.AddTarget(ctx, &replicate.TargetInput{Region: "eu-west-1", Endpoint: "https://127.0.0.1:1", AccessKey: "AK", SecretKey: "SK"}); err != nil {
		t.Fatal(err)
	}
	if _, err := repl.Enable(ctx, "bkt1", &replicate.EnableInput{To: "eu-west-1/backup"}); err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	tok, _ := e.login(t, c, testAccessKey, testSecretKey)
	page := e.get(t, c, "/console/replication", http.StatusOK)
	for _, want := range []string{"eu-west-1", "https://127.0.0.1:1", "backup", "bkt1", "Resync"} {
		if !strings.Contains(page, want) {
			t.Errorf("replication page lacks %q", want)
		}
	}
	resp := e.post(t, c, "/console/replication/bkt1/resync", url.Values{"csrf": {tok}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/replication/resync/") {
		t.Fatalf("resync: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	loc := resp.Header.Get("Location")
	deadline := time.Now().Add(30 * time.Second)
	for {
		page = e.get(t, c, loc, http.StatusOK)
		if strings.Contains(page, "<progress") && strings.Contains(page, "done ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the resync did not finish:\n%s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(page, `value="100"`) {
		t.Errorf("a finished resync's progress is not 100:\n%s", page)
	}
	if page = e.get(t, c, "/console/replication", http.StatusOK); !strings.Contains(page, "Resyncs started here") {
		t.Error("the replication page does not list the resync")
	}
	// A bucket without rules cannot be resynced.
	if err := e.store.CreateBucket(ctx, "norules", "us-east-1"); err != nil {
		t.Fatal(err)
	}
	if resp := e.post(t, c, "/console/replication/norules/resync", url.Values{"csrf": {tok}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("resync without rules: %d %s", resp.StatusCode, readBody(resp))
	}
}

func TestServes(t *testing.T) {
	for _, tt := range []struct {
		target string
		auth   string
		want   bool
	}{
		{"/console/", "", true},
		{"/console", "", true},
		{"/console/buckets?x=1", "", true},
		{"/console/login", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request", false},
		{"/console/key?X-Amz-Signature=abc&X-Amz-Credential=x", "", false},
		{"/consoles/", "", false},
		{"/bucket/console/", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "https://x"+tt.target, nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		if got := Serves(r); got != tt.want {
			t.Errorf("Serves(%s, auth %q) = %v, want %v", tt.target, tt.auth, got, tt.want)
		}
	}
}

// TestConsoleUploadCSRF: a form upload's token must come first, before any
// file is read (the files are streamed to the store, never spooled).
func TestConsoleUploadCSRF(t *testing.T) {
	e := newEnv(t)
	seedOnce(t, e)
	c := e.client(t)
	tok, _ := e.login(t, c, testAccessKey, testSecretKey)
	send := func(tokenFirst bool, token string) int {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		if tokenFirst {
			mw.WriteField("csrf", token)
		}
		fw, _ := mw.CreateFormFile("file", "late.txt")
		fw.Write([]byte("late"))
		if !tokenFirst {
			mw.WriteField("csrf", token)
		}
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/buckets/bkt1/upload", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, _ := e.do(t, c, req)
		return resp.StatusCode
	}
	if code := send(false, tok); code != http.StatusForbidden {
		t.Errorf("token after the file: %d, want 403", code)
	}
	if code := send(true, "forged"); code != http.StatusForbidden {
		t.Errorf("forged token: %d, want 403", code)
	}
	if _, err := e.store.Head(context.Background(), "bkt1", "late.txt"); err == nil {
		t.Fatal("a refused upload was stored")
	}
	if code := send(true, tok); code != http.StatusSeeOther {
		t.Errorf("token first: %d, want 303", code)
	}
	if _, err := e.store.Head(context.Background(), "bkt1", "late.txt"); err != nil {
		t.Fatal(err)
	}
}
