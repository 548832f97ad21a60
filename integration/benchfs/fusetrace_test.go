package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// TestFuseTraceRead pairs each request's send with its end by request id,
// whatever comes between, and counts the requests with one end only.
func TestFuseTraceRead(t *testing.T) {
	trace := strings.Join([]string{
		"# tracer: nop",
		"             tar-123     [001] ..... 4321.000100: fuse_request_send: connection 52 req 8 opcode 1 (FUSE_LOOKUP) len 49",
		"             tar-123     [001] ..... 4321.000200: fuse_request_send: connection 52 req 10 opcode 35 (FUSE_CREATE) len 60",
		"          sealfs-99      [000] ..... 4321.000140: fuse_request_end: connection 52 req 8 len 144 error 0",
		"             tar-123     [001] ..... 4321.000300: fuse_request_send: connection 52 req 12 opcode 1 (FUSE_LOOKUP) len 49",
		"          sealfs-99      [000] ..... 4321.000320: fuse_request_end: connection 52 req 12 len 16 error -2",
		"          sealfs-99      [000] ..... 4321.000900: fuse_request_end: connection 52 req 10 len 160 error 0",
		"          sealfs-99      [000] ..... 4321.001000: fuse_request_end: connection 52 req 99 len 16 error 0",
		"             tar-123     [001] ..... 4321.002000: fuse_request_send: connection 52 req 14 opcode 25 (FUSE_FLUSH) len 64",
		"",
	}, "\n")
	ft := &fuseTrace{sent: map[string]sentReq{}, ops: map[string]opStat{}}
	if err := ft.read(strings.NewReader(trace)); err != nil {
		t.Fatal(err)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if st, ok := ft.ops["LOOKUP"]; !ok || st.n != 2 || !near(st.secs, 60e-6) {
		t.Errorf("LOOKUP: %+v, want 2 requests, 60 µs in all", st)
	}
	if st, ok := ft.ops["CREATE"]; !ok || st.n != 1 || !near(st.secs, 700e-6) {
		t.Errorf("CREATE: %+v, want 1 request of 700 µs", st)
	}
	if ft.lost != 1 || len(ft.sent) != 1 {
		t.Errorf("an end without its send: %d, a send without its end: %d; want 1 and 1", ft.lost, len(ft.sent))
	}

	var out bytes.Buffer
	printTrace(&out, map[string]opStat{"LOOKUP": ft.ops["LOOKUP"], "RELEASE": {n: 1, secs: 1e-4}}, 2,
		map[string]opStat{"Lookup": {n: 4, secs: 40e-6}}, 2)
	for _, want := range []string{"LOOKUP      2     30.0 µs  10.0 µs  20.0 µs", "RELEASE      1    100.0 µs        -", "per file: 80 µs of round trips, 10 µs of them in handlers", "2 requests without both ends"} {
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
