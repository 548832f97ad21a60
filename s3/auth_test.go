package s3_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("auth", false)
	e.put("auth", "k", []byte("authenticated"))
	base := e.https.URL

	wantError(t, e.anon(http.MethodGet, base, "/auth/k", nil, nil), 403, "AccessDenied")
	wantError(t, e.anon(http.MethodGet, base, "/", nil, nil), 403, "AccessDenied")
	doc := wantError(t, e.anon(http.MethodGet, base, "/auth/k", hdr("Authorization", "AWS "+testAccessKey+":c2lnbmF0dXJl"), nil), 400, "InvalidRequest")
	mustContain(t, doc.Message, "Signature Version 4")
	wantError(t, e.anon(http.MethodGet, base, "/auth/k?AWSAccessKeyId="+testAccessKey+"&Signature=abc&Expires=99999999999", nil, nil), 400, "InvalidRequest")

	req := e.newRequest(http.MethodGet, base, "/auth/k", nil, nil)
	e.sign(req)
	req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "Signature=", "Signature=0", 1)[:len(req.Header.Get("Authorization"))])
	wantError(t, e.do(req), 403, "SignatureDoesNotMatch")
	stranger := e.newRequest(http.MethodGet, base, "/auth/k", hdr("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"), nil)
	if err := v4.NewSigner().SignHTTP(e.ctx(), aws.Credentials{AccessKeyID: "NOSUCHKEY", SecretAccessKey: "x"}, stranger, "UNSIGNED-PAYLOAD", "s3", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.do(stranger), 403, "InvalidAccessKeyId")

	// Presigned URLs, GET and PUT.
	pc := awss3.NewPresignClient(e.client)
	pg, err := pc.PresignGetObject(e.ctx(), &awss3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("k")}, awss3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	resp := e.do(e.newRequest(http.MethodGet, pg.URL, "", nil, nil))
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "authenticated" {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, body)
	}
	pp, err := pc.PresignPutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("presigned")}, awss3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if resp := e.do(e.newRequest(http.MethodPut, pp.URL, "", nil, []byte("via presigned PUT"))); resp.StatusCode != 200 {
		t.Fatalf("presigned PUT: %d", resp.StatusCode)
	}
	if got := e.get("auth", "presigned"); string(got) != "via presigned PUT" {
		t.Fatalf("presigned PUT stored %q", got)
	}
	// An expired presigned URL: signed ten minutes ago, valid for one.
	old := e.newRequest(http.MethodGet, base, "/auth/k?X-Amz-Expires=60", nil, nil)
	signedURL, _, err := v4.NewSigner().PresignHTTP(e.ctx(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}, old, "UNSIGNED-PAYLOAD", "s3", testRegion, time.Now().Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	doc = wantError(t, e.do(e.newRequest(http.MethodGet, signedURL, "", nil, nil)), 403, "AccessDenied")
	mustContain(t, doc.Message, "expired")
}

func TestRequestIDsOnEveryResponse(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("ids", false)
	seen := map[string]bool{}
	for _, tc := range []struct {
		method, path string
		body         []byte
	}{
		{method: http.MethodPut, path: "/ids/k", body: []byte("x")},
		{method: http.MethodGet, path: "/ids/k"},
		{method: http.MethodHead, path: "/ids/k"},
		{method: http.MethodHead, path: "/ids/absent"},
		{method: http.MethodGet, path: "/ids/absent"},
		{method: http.MethodGet, path: "/ids?list-type=2"},
		{method: http.MethodGet, path: "/"},
		{method: http.MethodDelete, path: "/ids/k"},
		{method: http.MethodPatch, path: "/ids/k"},
		{method: http.MethodPut, path: "/"},
	} {
		resp := e.raw(tc.method, e.https.URL, tc.path, nil, tc.body)
		id := resp.Header.Get("X-Amz-Request-Id")
		if id == "" || resp.Header.Get("X-Amz-Id-2") == "" || seen[id] {
			t.Fatalf("%s %s: request id %q (seen %v), id-2 %q", tc.method, tc.path, id, seen[id], resp.Header.Get("X-Amz-Id-2"))
		}
		seen[id] = true
		if len(id) != 16 || strings.Trim(id, "0123456789ABCDEF") != "" {
			t.Fatalf("request id %q: want 16 upper-case hex digits", id)
		}
		if tc.method == http.MethodPatch || (tc.method == http.MethodPut && tc.path == "/") {
			wantError(t, resp, 405, "MethodNotAllowed")
		}
	}
}

// TestPlainHTTPRule6 checks design rule 6 on the plain-HTTP listener and for
// requests without Signature Version 4 on the HTTPS one.
func TestPlainHTTPRule6(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("sealed", true)
	e.mkBucket("open", false)
	e.put("sealed", "obj", []byte("encrypted object"))
	e.put("open", "obj", []byte("plain object"))
	plain := e.http.URL
	const secureMsg = "Requests specifying Server Side Encryption with AWS KMS managed keys must be made over a secure connection."

	cr, err := e.client.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("sealed"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	upload := aws.ToString(cr.UploadId)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		h      http.Header
		body   []byte
		signed bool
		msg    string // "" means allowed
	}{
		{name: "put into encrypting bucket", method: http.MethodPut, path: "/sealed/new", body: []byte("x"), signed: true, msg: secureMsg},
		{name: "get encrypted object", method: http.MethodGet, path: "/sealed/obj", signed: true, msg: secureMsg},
		{name: "head encrypted object", method: http.MethodHead, path: "/sealed/obj", signed: true, msg: secureMsg},
		{name: "copy out of encrypted object", method: http.MethodPut, path: "/open/copy", h: hdr("X-Amz-Copy-Source", "sealed/obj"), signed: true, msg: secureMsg},
		{name: "copy into encrypting bucket", method: http.MethodPut, path: "/sealed/copy", h: hdr("X-Amz-Copy-Source", "open/obj"), signed: true, msg: secureMsg},
		{name: "create upload in encrypting bucket", method: http.MethodPost, path: "/sealed/mp2?uploads", signed: true, msg: secureMsg},
		{name: "part of encrypted upload", method: http.MethodPut, path: "/sealed/mp?partNumber=1&uploadId=" + upload, body: []byte("x"), signed: true, msg: secureMsg},
		{name: "put into plain bucket", method: http.MethodPut, path: "/open/new", body: []byte("x"), signed: true},
		{name: "get plain object", method: http.MethodGet, path: "/open/obj", signed: true},
		{name: "list encrypting bucket", method: http.MethodGet, path: "/sealed?list-type=2", signed: true},
		{name: "delete encrypted object", method: http.MethodDelete, path: "/sealed/obj", signed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.rawTo(plain, tc.method, tc.path, tc.h, tc.body, tc.signed)
			if tc.msg == "" {
				if resp.StatusCode >= 300 {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("status %d: %s", resp.StatusCode, b)
				}
				return
			}
			doc := wantError(t, resp, 400, "InvalidArgument")
			if tc.method != http.MethodHead && doc.Message != tc.msg {
				t.Fatalf("message %q", doc.Message)
			}
		})
	}
	if _, err := e.store.Head(e.ctx(), "sealed", "new"); err == nil {
		t.Fatal("a refused plain-HTTP PUT stored an object")
	}
	// Without Signature Version 4, over HTTPS: anonymous requests are
	// AccessDenied and V2 ones refused as such, encrypted data or not
	// (TestUnauthenticatedLearnsNothing has the whole table).
	e.put("sealed", "obj", []byte("encrypted object"))
	wantError(t, e.anon(http.MethodGet, e.https.URL, "/sealed/obj", nil, nil), 403, "AccessDenied")
	doc := wantError(t, e.anon(http.MethodPut, e.https.URL, "/sealed/v2", hdr("Authorization", "AWS "+testAccessKey+":c2ln"), []byte("x")), 400, "InvalidRequest")
	mustContain(t, doc.Message, "Signature Version 4")
	wantError(t, e.anon(http.MethodGet, e.https.URL, "/open/obj", nil, nil), 403, "AccessDenied")
	wantError(t, e.anon(http.MethodGet, e.https.URL, "/nosuch/obj", nil, nil), 403, "AccessDenied")
}

// TestUnauthenticatedLearnsNothing sends unauthenticated requests (no
// authentication at all, or Signature Version 2, which sealfs cannot check)
// for an encrypted object, a missing key in an encrypting bucket, a plain
// object, a missing key in a plain bucket and a missing bucket: each kind of
// request must get the very same answer for all of them, and anonymous ones
// 403 AccessDenied, so that nothing about what exists, or what is
// encrypted, can be learnt without credentials.
func TestUnauthenticatedLearnsNothing(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("sealed", true)
	e.mkBucket("open", false)
	e.put("sealed", "obj", []byte("encrypted object"))
	e.put("open", "obj", []byte("plain object"))
	cr, err := e.client.CreateMultipartUpload(e.ctx(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("sealed"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	upload := aws.ToString(cr.UploadId)
	targets := []string{"/sealed/obj", "/sealed/missing", "/open/obj", "/open/missing", "/nosuch/obj"}
	type answer struct {
		status  int
		code    string
		message string
	}
	for _, listener := range []struct{ name, base string }{{"https", e.https.URL}, {"http", e.http.URL}} {
		for _, auth := range []struct {
			name  string
			h     http.Header
			query string
			want  answer // status and code; the message only when set
		}{
			{name: "anonymous", want: answer{status: 403, code: "AccessDenied"}},
			{name: "v2 header", h: hdr("Authorization", "AWS "+testAccessKey+":c2lnbmF0dXJl"), want: answer{status: 400, code: "InvalidRequest"}},
			{name: "v2 query", query: "AWSAccessKeyId=" + testAccessKey + "&Signature=abc&Expires=99999999999", want: answer{status: 400, code: "InvalidRequest"}},
		} {
			for _, op := range []struct {
				name, method, query string
				h                   http.Header
				body                []byte
			}{
				{name: "GetObject", method: http.MethodGet},
				{name: "HeadObject", method: http.MethodHead},
				{name: "PutObject", method: http.MethodPut, body: []byte("x")},
				{name: "CopyObject", method: http.MethodPut, h: hdr("X-Amz-Copy-Source", "sealed/obj")},
				{name: "CreateMultipartUpload", method: http.MethodPost, query: "uploads"},
				{name: "UploadPart", method: http.MethodPut, query: "partNumber=1&uploadId=" + upload, body: []byte("x")},
				{name: "DeleteObject", method: http.MethodDelete},
			} {
				t.Run(listener.name+"/"+auth.name+"/"+op.name, func(t *testing.T) {
					var first *answer
					for _, target := range targets {
						h := http.Header{}
						for k, v := range auth.h {
							h[k] = v
						}
						for k, v := range op.h {
							h[k] = v
						}
						path := target
						if q := strings.Trim(op.query+"&"+auth.query, "&"); q != "" {
							path += "?" + q
						}
						resp := e.do(e.newRequest(op.method, listener.base, path, h, op.body))
						got := answer{status: resp.StatusCode}
						if op.method != http.MethodHead {
							doc := wantError(t, resp, auth.want.status, auth.want.code)
							got.code, got.message = doc.Code, doc.Message
						} else if resp.StatusCode != auth.want.status {
							t.Fatalf("%s: status %d, want %d", target, resp.StatusCode, auth.want.status)
						}
						if first == nil {
							first = &got
						} else if got != *first {
							t.Fatalf("%s answered %+v, %s answered %+v: the answer tells them apart", targets[0], *first, target, got)
						}
					}
				})
			}
		}
	}
	for _, path := range []string{"/sealed/obj", "/open/obj"} {
		if _, err := e.store.Head(e.ctx(), path[1:strings.LastIndex(path, "/")], "obj"); err != nil {
			t.Fatalf("%s after unauthenticated requests: %v", path, err)
		}
	}
}

// rawTo sends a request, signed or not, to the server at base.
func (e *env) rawTo(base, method, path string, h http.Header, body []byte, signed bool) *http.Response {
	e.t.Helper()
	req := e.newRequest(method, base, path, h, body)
	if signed {
		e.sign(req)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// TestRule6BeforeBody sends a PUT announcing a large body over plain HTTP
// and sends none of it: the refusal must come without the server waiting.
func TestRule6BeforeBody(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("sealed", true)
	u, _ := url.Parse(e.http.URL)
	for _, expect := range []bool{false, true} {
		req := e.newRequest(http.MethodPut, e.http.URL, "/sealed/huge", nil, nil)
		req.ContentLength = 1 << 30
		if expect {
			req.Header.Set("Expect", "100-continue")
		}
		e.sign(req)
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Write the head only; the body never comes. A server that read
		// it would block until the deadline.
		var head bytes.Buffer
		head.WriteString("PUT /sealed/huge HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Length: 1073741824\r\n")
		if err := req.Header.Write(&head); err != nil {
			t.Fatal(err)
		}
		head.WriteString("\r\n")
		if _, err := conn.Write(head.Bytes()); err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatalf("expect=%v: no response before the body was sent: %v", expect, err)
		}
		doc := wantError(t, resp, 400, "InvalidArgument")
		mustContain(t, doc.Message, "secure connection")
	}
}

func TestLengthErrors(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("lens", false)
	// Transfer-Encoding: chunked without a declared length.
	req := e.newRequest(http.MethodPut, e.https.URL, "/lens/k", nil, nil)
	req.Body = io.NopCloser(strings.NewReader("unknown length"))
	req.ContentLength = -1
	e.sign(req)
	wantError(t, e.do(req), 411, "MissingContentLength")

	// A body shorter than its Content-Length: half-close after 5 of 100
	// bytes.
	u, _ := url.Parse(e.https.URL)
	req = e.newRequest(http.MethodPut, e.https.URL, "/lens/short", nil, nil)
	req.ContentLength = 100
	e.sign(req)
	raw, err := tls.Dial("tcp", u.Host, e.https.Client().Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var head bytes.Buffer
	head.WriteString("PUT /lens/short HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Length: 100\r\n")
	req.Header.Write(&head)
	head.WriteString("\r\nhello")
	if _, err := raw.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := raw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(raw), req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, 400, "IncompleteBody")
	if _, err := e.store.Head(e.ctx(), "lens", "short"); err == nil {
		t.Fatal("a short body was stored")
	}
}

func TestLogLines(t *testing.T) {
	e := newEnv(t)
	e.mkBucket("logs", true)
	content := "do-not-log-this-content-" + strings.Repeat("z", 100)
	e.put("logs", "dir/obj", []byte(content))
	e.get("logs", "dir/obj")
	e.raw(http.MethodGet, e.https.URL, "/logs/absent", nil, nil)
	text := e.logs.String()
	if strings.Contains(text, testSecret) || strings.Contains(text, content) || strings.Contains(text, "Signature=") {
		t.Fatal("the log holds a secret, a signature or object content")
	}
	ops := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "s3" {
			continue
		}
		for _, f := range []string{"id", "op", "bucket", "key", "status", "in", "out", "duration"} {
			if _, ok := rec[f]; !ok {
				t.Fatalf("log line without %s: %s", f, line)
			}
		}
		if rec["level"] != "INFO" {
			t.Errorf("request logged at %v", rec["level"])
		}
		ops[rec["op"].(string)+" "+rec["key"].(string)] = rec
	}
	put, get, miss := ops["PutObject dir/obj"], ops["GetObject dir/obj"], ops["GetObject absent"]
	if put == nil || get == nil || miss == nil {
		t.Fatalf("missing request lines: %v", ops)
	}
	if put["in"].(float64) != float64(len(content)) || get["out"].(float64) != float64(len(content)) || put["bucket"] != "logs" {
		t.Errorf("byte counts: put %v get %v", put, get)
	}
	if miss["status"].(float64) != 404 || miss["error"] != "NoSuchKey" {
		t.Errorf("failed request line: %v", miss)
	}
	// Config.Observe saw the same requests.
	e.mu.Lock()
	defer e.mu.Unlock()
	want := []observation{
		{op: "CreateBucket", status: 200, positiveDur: true},
		{op: "PutObject", status: 200, in: int64(len(content)), positiveDur: true},
		{op: "GetObject", status: 200, out: int64(len(content)), positiveDur: true},
		{op: "GetObject", status: 404, positiveDur: true}, // out: the error document
	}
	if len(e.observed) != len(want) {
		t.Fatalf("observed %+v", e.observed)
	}
	for i, w := range want {
		o := e.observed[i]
		if o.op != w.op || o.status != w.status || o.in != w.in || !o.positiveDur || (w.status == 200 && o.out != w.out) {
			t.Errorf("observation %d: %+v, want %+v", i, o, w)
		}
	}
}
