package httprange

import (
	"errors"
	"testing"

	"github.com/sealfs/sealfs/s3/s3err"
)

func TestParse(t *testing.T) {
	const none, unsat = "none", "416"
	cases := []struct {
		header string
		size   int64
		start  int64
		length int64
		want   string // "" ok, none (serve whole, 200), unsat (416)
	}{
		{header: "", size: 10, want: none},
		{header: "bytes=0-0", size: 10, start: 0, length: 1},
		{header: "bytes=0-9", size: 10, start: 0, length: 10},
		{header: "bytes=2-5", size: 10, start: 2, length: 4},
		{header: "bytes=5-100", size: 10, start: 5, length: 5},
		{header: "bytes=5-99999999999999999999999", size: 10, start: 5, length: 5},
		{header: "bytes=9-", size: 10, start: 9, length: 1},
		{header: "bytes=0-", size: 10, start: 0, length: 10},
		{header: "bytes=-3", size: 10, start: 7, length: 3},
		{header: "bytes=-10", size: 10, start: 0, length: 10},
		{header: "bytes=-11", size: 10, start: 0, length: 10},
		{header: "Bytes = 1 - 2 ", size: 10, start: 1, length: 2},
		{header: "bytes=10-", size: 10, want: unsat},
		{header: "bytes=10-20", size: 10, want: unsat},
		{header: "bytes=99999999999999999999-", size: 10, want: unsat},
		{header: "bytes=-0", size: 10, want: unsat},
		{header: "bytes=0-", size: 0, want: unsat},
		{header: "bytes=0-0", size: 0, want: unsat},
		{header: "bytes=-5", size: 0, want: unsat},
		{header: "bytes=5-3", size: 10, want: none},
		{header: "bytes=0-1,4-5", size: 10, want: none},
		{header: "bytes=abc", size: 10, want: none},
		{header: "bytes=", size: 10, want: none},
		{header: "bytes=-", size: 10, want: none},
		{header: "bytes=--1", size: 10, want: none},
		{header: "bytes=1-2-3", size: 10, want: none},
		{header: "bytes=+1-2", size: 10, want: none},
		{header: "bytes 0-1", size: 10, want: none},
		{header: "items=0-1", size: 10, want: none},
		{header: "bytes=0x1-2", size: 10, want: none},
	}
	for _, tc := range cases {
		start, length, err := Parse(tc.header, tc.size)
		switch tc.want {
		case none:
			if !errors.Is(err, ErrNoRange) {
				t.Errorf("Parse(%q, %d) = %d, %d, %v; want ErrNoRange", tc.header, tc.size, start, length, err)
			}
		case unsat:
			var e *s3err.Error
			if !errors.Is(err, s3err.ErrInvalidRange) || !errors.As(err, &e) || e.HTTPStatus != 416 {
				t.Errorf("Parse(%q, %d) = %d, %d, %v; want InvalidRange", tc.header, tc.size, start, length, err)
			}
		default:
			if err != nil || start != tc.start || length != tc.length {
				t.Errorf("Parse(%q, %d) = %d, %d, %v; want %d, %d", tc.header, tc.size, start, length, err, tc.start, tc.length)
			}
		}
	}
}

func TestContentRange(t *testing.T) {
	if got := ContentRange(7, 3, 10); got != "bytes 7-9/10" {
		t.Fatalf("ContentRange = %q", got)
	}
	if got := Unsatisfiable(10); got != "bytes */10" {
		t.Fatalf("Unsatisfiable = %q", got)
	}
}

// FuzzRange checks that whatever the header, a range Parse accepts lies
// within the object.
func FuzzRange(f *testing.F) {
	for _, h := range []string{"bytes=0-0", "bytes=5-", "bytes=-3", "bytes=1-2,3-4", "bytes=9223372036854775807-", "bytes=-9223372036854775808"} {
		f.Add(h, int64(10))
		f.Add(h, int64(0))
		f.Add(h, int64(1<<62))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		start, length, err := Parse(header, size)
		if err != nil {
			if !errors.Is(err, ErrNoRange) && !errors.Is(err, s3err.ErrInvalidRange) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if size <= 0 || start < 0 || length < 1 || start >= size || length > size-start {
			t.Fatalf("Parse(%q, %d) = [%d, +%d) outside [0, %d)", header, size, start, length, size)
		}
	})
}
