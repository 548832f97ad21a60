package s3_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// serve runs one request through the handler in process, as if it came
// over TLS, signed.
func (e *env) serve(t testing.TB, method, target string, h http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://127.0.0.1"+target, bytes.NewReader(body))
	req.TLS = &tls.ConnectionState{}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	signRequest(t, req)
	rec := httptest.NewRecorder()
	e.https.Config.Handler.ServeHTTP(rec, req)
	return rec
}

// FuzzDeleteObjects sends arbitrary DeleteObjects bodies end to end: the
// answer is a DeleteResult or MalformedXML, never a server error, and what
// it reports deleted is gone.
func FuzzDeleteObjects(f *testing.F) {
	e := newEnv(f)
	e.mkBucket("fuzz", false)
	for _, s := range []string{
		`<Delete><Object><Key>a</Key></Object><Object><Key>b/c</Key></Object></Delete>`,
		`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>`,
		`<Delete><Object><Key>a</Key><VersionId>null</VersionId></Object></Delete>`,
		`<?xml version="1.0"?><Delete><Object><Key>&lt;&gt;</Key></Object></Delete>`,
		`<Delete><Object><Key></Key></Object></Delete>`,
		`<!DOCTYPE x><Delete/>`,
		`<Delete><Object><Key>` + strings.Repeat("k", 1100) + `</Key></Object></Delete>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, k := range []string{"a", "b/c", "<>"} {
			if rec := e.serve(t, http.MethodPut, "/fuzz/"+strings.ReplaceAll(url.PathEscape(k), "%2F", "/"), nil, []byte("x")); rec.Code != 200 {
				t.Fatalf("seeding %q: %d", k, rec.Code)
			}
		}
		rec := e.serve(t, http.MethodPost, "/fuzz?delete", nil, body)
		if rec.Header().Get("X-Amz-Request-Id") == "" {
			t.Fatal("no request id")
		}
		switch rec.Code {
		case 200:
			var res struct {
				Deleted []struct{ Key string }
				Error   []struct{ Key, Code string }
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &res); err != nil {
				t.Fatalf("DeleteResult %q: %v", rec.Body.Bytes(), err)
			}
			for _, d := range res.Deleted {
				if _, err := e.store.Head(context.Background(), "fuzz", d.Key); err == nil {
					t.Fatalf("%q reported deleted, still there", d.Key)
				}
			}
			for _, er := range res.Error {
				if er.Code == "InternalError" {
					t.Fatalf("internal error for %q", er.Key)
				}
			}
		case 400:
			if !bytes.Contains(rec.Body.Bytes(), []byte("<Code>MalformedXML</Code>")) {
				t.Fatalf("400 is not MalformedXML: %s", rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}

// FuzzRequests sends arbitrary methods, paths, queries and headers through
// the handler: it must never fail with a server error or panic, and every
// answer carries a request id (and, if it is an error, an S3 error body).
func FuzzRequests(f *testing.F) {
	e := newEnv(f)
	e.mkBucket("fuzz", true)
	e.put("fuzz", "obj", []byte("fuzzing target"))
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete}
	for _, s := range []struct {
		m               uint8
		path, query, hv string
	}{
		{0, "/fuzz/obj", "", "bytes=0-3"},
		{0, "/fuzz", "list-type=2&max-keys=1&continuation-token=x", ""},
		{0, "/fuzz", "versions&key-marker=a", ""},
		{1, "/fuzz/obj", "partNumber=2", ""},
		{2, "/fuzz/new", "partNumber=1&uploadId=zz", ""},
		{3, "/fuzz/up", "uploads", ""},
		{3, "/fuzz/up", "uploadId=zz", ""},
		{2, "/fuzz/copy", "", "fuzz/obj"},
		{4, "/fuzz", "encryption", ""},
		{0, "/", "", ""},
		{0, "/fuzz", "uploads&prefix=a&delimiter=/", ""},
		{2, "/fuzz", "acl", ""},
	} {
		f.Add(s.m, s.path, s.query, s.hv, []byte("body"))
	}
	f.Fuzz(func(t *testing.T, m uint8, path, query, hv string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#\x00\r\n\t") || strings.ContainsAny(query, " #\x00\r\n\t") {
			return
		}
		if _, err := url.ParseRequestURI(path + "?" + query); err != nil {
			return
		}
		method := methods[int(m)%len(methods)]
		h := http.Header{}
		if hv != "" && !strings.ContainsAny(hv, "\r\n\x00") {
			// One fuzzed value in the headers a handler interprets.
			switch m / 8 % 4 {
			case 0:
				h.Set("Range", hv)
			case 1:
				h.Set("X-Amz-Copy-Source", hv)
			case 2:
				h.Set("If-None-Match", hv)
			case 3:
				h.Set("X-Amz-Copy-Source-Range", hv)
			}
		}
		rec := e.serve(t, method, path+"?"+query, h, body)
		if rec.Header().Get("X-Amz-Request-Id") == "" {
			t.Fatalf("%s %s?%s: no request id", method, path, query)
		}
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s?%s: %d %s", method, path, query, rec.Code, rec.Body.Bytes())
		}
		if rec.Code >= 300 && rec.Code != http.StatusNotModified && method != http.MethodHead && !bytes.Contains(rec.Body.Bytes(), []byte("<Error><Code>")) {
			t.Fatalf("%s %s?%s: %d without an error body: %q", method, path, query, rec.Code, rec.Body.Bytes())
		}
	})
}
