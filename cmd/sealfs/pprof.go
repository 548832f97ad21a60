package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
)

// servePprof adds Go's profiler to mux under /debug/pprof/ (--pprof), and
// turns on the sampling of blocking and mutex contention, so that a slow
// benchmark row can be explained with `go tool pprof` (make profile-s3).
// It is served only on the --metrics listener, which an operator binds to
// a private address: profiles name functions, never keys or content.
func servePprof(mux *http.ServeMux) {
	runtime.SetBlockProfileRate(10_000) // one sample per ~10 µs spent blocked
	runtime.SetMutexProfileFraction(100)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
