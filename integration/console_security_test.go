package integration

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// consoleClient is a browser-like client of a daemon's console: it keeps
// cookies and does not follow redirects.
func consoleClient(t *testing.T, d *s3Daemon) *http.Client {
	t.Helper()
	c := d.httpClient()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func consoleDo(t *testing.T, c *http.Client, method, u, accept string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleLogin logs c in with the daemon's credentials and returns the
// session's CSRF token.
func consoleLogin(t *testing.T, d *s3Daemon, c *http.Client) string {
	t.Helper()
	base := "https://" + d.S3Addr
	_, page := consoleDo(t, c, "GET", base+"/console/login", "text/html", nil, nil)
	m := consoleCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form:\n%s", page)
	}
	resp, body := consoleDo(t, c, "POST", base+"/console/login", "text/html", url.Values{"csrf": {m[1]}, "access_key": {d.AccessKey}, "secret_key": {d.SecretKey}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d\n%s", resp.StatusCode, body)
	}
	_, page = consoleDo(t, c, "GET", base+"/console/buckets", "text/html", nil, nil)
	if m = consoleCSRF.FindStringSubmatch(page); m == nil {
		t.Fatalf("no CSRF token on the buckets page:\n%s", page)
	}
	return m[1]
}

// TestConsoleSecurity checks the console of a running daemon from outside:
// no page or action without a session (none, or a forged one), no change
// without the CSRF token, never over plain HTTP, stored markup shown as
// text; and "/" goes to the console for a browser only — S3 clients'
// ListBuckets is answered as before.
func TestConsoleSecurity(t *testing.T) {
	clearCAEnv(t)
	d := startS3Daemon(t, s3DaemonOptions{PlainHTTP: true})
	ctx := context.Background()
	cli := d.S3()
	base := "https://" + d.S3Addr
	if _, err := cli.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("guarded")}); err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert("k")</script>'"><img src=x onerror=alert(1)>`
	if _, err := cli.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("guarded"), Key: aws.String(evil), Body: strings.NewReader("x"),
		Metadata: map[string]string{"m": `"><script>alert(2)</script>`}}); err != nil {
		t.Fatal(err)
	}
	gets := []string{"/console/", "/console/buckets", "/console/buckets/guarded/settings", "/console/buckets/guarded/objects",
		"/console/buckets/guarded/object?key=" + url.QueryEscape(evil), "/console/buckets/guarded/download?key=" + url.QueryEscape(evil),
		"/console/buckets/guarded/delete", "/console/keys", "/console/replication", "/console/replication/resync/1", "/console/anything"}
	posts := []string{"/console/buckets", "/console/buckets/guarded/delete", "/console/buckets/guarded/encryption",
		"/console/buckets/guarded/upload", "/console/buckets/guarded/object/delete", "/console/keys/k/disable",
		"/console/replication/guarded/resync", "/console/logout"}
	form := url.Values{"csrf": {"x"}, "name": {"intruder"}, "confirm": {"guarded"}, "mode": {"SSE-KMS"}, "key": {evil}}
	for _, cookie := range []string{"", "sealfs-console=" + strings.Repeat("A", 43), "sealfs-console=../../etc"} {
		c := d.httpClient()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		hdr := map[string]string{}
		if cookie != "" {
			hdr["Cookie"] = cookie
		}
		for _, p := range gets {
			resp, body := consoleDo(t, c, "GET", base+p, "*/*", nil, hdr)
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "guarded") {
				t.Errorf("cookie %q: GET %s: %d %.200s", cookie, p, resp.StatusCode, body)
			}
			resp, _ = consoleDo(t, c, "GET", base+p, "text/html", nil, hdr)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
				t.Errorf("cookie %q: a browser's GET %s: %d to %q, want the login page", cookie, p, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		for _, p := range posts {
			if resp, body := consoleDo(t, c, "POST", base+p, "", form, hdr); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("cookie %q: POST %s: %d %.200s", cookie, p, resp.StatusCode, body)
			}
		}
	}

	// Logged in, but without the CSRF token: refused, nothing changed.
	c := consoleClient(t, d)
	tok := consoleLogin(t, d, c)
	for _, bad := range []url.Values{{"name": {"intruder"}}, {"name": {"intruder"}, "csrf": {tok[:len(tok)-1] + "x"}}} {
		if resp, body := consoleDo(t, c, "POST", base+"/console/buckets", "text/html", bad, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("create bucket with CSRF %q: %d %.200s", bad.Get("csrf"), resp.StatusCode, body)
		}
		if resp, _ := consoleDo(t, c, "POST", base+"/console/buckets/guarded/encryption", "text/html", url.Values{"mode": {"SSE-KMS"}, "csrf": bad["csrf"]}, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("set encryption with CSRF %q: %d", bad.Get("csrf"), resp.StatusCode)
		}
	}
	if _, err := cli.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("intruder")}); err == nil {
		t.Fatal("a bucket was created without the CSRF token")
	}
	if enc, err := cli.GetBucketEncryption(ctx, &awss3.GetBucketEncryptionInput{Bucket: aws.String("guarded")}); err == nil && enc.ServerSideEncryptionConfiguration != nil && len(enc.ServerSideEncryptionConfiguration.Rules) > 0 {
		t.Fatal("default encryption was turned on without the CSRF token")
	}
	// With it, the change is made.
	if resp, body := consoleDo(t, c, "POST", base+"/console/buckets", "text/html", url.Values{"name": {"welcome"}, "csrf": {tok}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create bucket with the token: %d %s", resp.StatusCode, body)
	}
	if _, err := cli.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("welcome")}); err != nil {
		t.Fatalf("the bucket made in the console: %v", err)
	}

	// Stored markup is shown as text.
	for _, p := range []string{"/console/buckets/guarded/objects", "/console/buckets/guarded/object?key=" + url.QueryEscape(evil)} {
		resp, body := consoleDo(t, c, "GET", base+p, "text/html", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", `"><script>`} {
			if strings.Contains(body, raw) {
				t.Errorf("GET %s shows %q unescaped", p, raw)
			}
		}
		// (The key holds a "/": the objects page shows its first part as a folder.)
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;k&#34;)&lt;/") {
			t.Errorf("GET %s does not show the key as text", p)
		}
	}

	// Never over plain HTTP, and a browser's "/" there is S3's.
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/console/", "/console/login"} {
		if resp, _ := consoleDo(t, plain, "GET", "http://"+d.httpAddr+p, "text/html", nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("plain HTTP GET %s: %d, want 403", p, resp.StatusCode)
		}
	}
	if resp, _ := consoleDo(t, plain, "GET", "http://"+d.httpAddr+"/", "text/html", nil, nil); resp.StatusCode == http.StatusSeeOther {
		t.Error("plain HTTP: a browser's / is sent to the console")
	}

	// "/": a browser goes to the console; an anonymous S3 client is refused
	// as before; a signed ListBuckets works.
	anon := d.httpClient()
	anon.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, _ := consoleDo(t, anon, "GET", base+"/", "text/html,application/xhtml+xml,*/*;q=0.8", nil, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Errorf("a browser's /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, accept := range []string{"", "*/*", "application/xml"} {
		resp, body := consoleDo(t, anon, "GET", base+"/", accept, nil, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "AccessDenied") {
			t.Errorf("anonymous S3 ListBuckets (Accept %q): %d %.200s", accept, resp.StatusCode, body)
		}
	}
	out, err := cli.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil || len(out.Buckets) != 2 {
		t.Fatalf("signed ListBuckets: %v %v", out, err)
	}

	// A bucket named "console" is S3's for signed requests.
	if _, err := cli.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("console")}); err != nil {
		t.Fatalf("creating bucket console: %v", err)
	}
	if _, err := cli.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("console"), Key: aws.String("login"), Body: strings.NewReader("an object")}); err != nil {
		t.Fatalf("PUT console/login: %v", err)
	}
	got, err := cli.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("console"), Key: aws.String("login")})
	if err != nil {
		t.Fatalf("GET console/login: %v", err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "an object" {
		t.Fatalf("GET console/login: %q", b)
	}
	lo, err := cli.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("console")})
	if err != nil || len(lo.Contents) != 1 {
		t.Fatalf("listing bucket console: %v %v", lo, err)
	}
}

// TestConsoleOff: with --console=false there is no console; /console/ is an
// S3 path and a browser's "/" is S3's.
func TestConsoleOff(t *testing.T) {
	clearCAEnv(t)
	d := &s3Daemon{Daemon: startDaemon(t, DaemonOptions{Args: []string{"--console=false"}}), t: t}
	c := d.httpClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := "https://" + d.S3Addr
	for _, p := range []string{"/", "/console/", "/console/login"} {
		resp, body := consoleDo(t, c, "GET", base+p, "text/html", nil, nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "AccessDenied") {
			t.Errorf("--console=false: GET %s: %d %.200s", p, resp.StatusCode, body)
		}
	}
}
