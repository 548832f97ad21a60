package console

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchPage measures the server's time for one page (no network, no TLS):
// the handler from the request to the last byte of the answer.
func benchPage(b *testing.B, path string) {
	e := newEnv(b)
	fill(b, e, "thousand", 999) // 999 objects and a folder: 1000 entries
	id, _ := e.console.sessions.create(testAccessKey)
	req := httptest.NewRequest(http.MethodGet, "https://console.test"+path, nil)
	req.TLS = &tls.ConnectionState{}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: id})
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.console.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}

// BenchmarkOverview: the overview over a store of 1000 objects.
func BenchmarkOverview(b *testing.B) { benchPage(b, "/console/") }

// BenchmarkObjectBrowser1000: an object-browser page of 1000 keys.
func BenchmarkObjectBrowser1000(b *testing.B) {
	benchPage(b, "/console/buckets/thousand/objects?n=1000")
}
