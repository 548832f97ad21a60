// Package httprange owns the parsing of the HTTP Range request header the way
// S3 interprets it for GetObject and HeadObject, and the Content-Range values
// that answer it.
//
// S3 serves a single byte range. What it does with everything else, and so
// what Parse reports:
//
//   - No Range header: the whole object, 200 (ErrNoRange).
//   - A header S3 cannot use: a unit other than "bytes", a syntax error
//     ("bytes=abc", "bytes=5-3", "bytes=", a missing "="), or more than one
//     range ("bytes=0-1,5-9"): the header is ignored and the whole object is
//     served with 200 (ErrNoRange). S3 does not support multiple ranges in
//     one GET and does not answer multipart/byteranges; like RFC 9110 §14.2
//     it ignores a Range it cannot parse rather than failing the request.
//   - "bytes=a-b": bytes a..b inclusive; b past the end is clamped to
//     size-1. "bytes=a-": from a to the end. "bytes=-n": the last n bytes,
//     or the whole object if n >= size (still a 206).
//   - A range that does not overlap the object (a >= size, "bytes=-0", or
//     any range of an empty object): 416 InvalidRange, answered with
//     "Content-Range: bytes */size" (Unsatisfiable).
//
// The package never reads or writes object data.
package httprange

import (
	"errors"
	"strconv"
	"strings"

	"github.com/sealfs/sealfs/s3/s3err"
)

// ErrNoRange reports that the request is to be answered with the whole
// object and status 200: there was no Range header, or S3 would ignore it.
var ErrNoRange = errors.New("httprange: no usable range; serve the whole object")

// errUnsatisfiable is the cause carried by the InvalidRange error.
var errUnsatisfiable = errors.New("httprange: range does not overlap the object")

// Parse interprets header against an object of size bytes. On success it
// returns the first byte and the number of bytes to send (length >= 1, and
// start+length <= size), to be answered with 206 and ContentRange. It returns
// ErrNoRange when the whole object is to be served with 200, and an error
// matching s3err.ErrInvalidRange (416) when the range cannot be satisfied.
func Parse(header string, size int64) (start, length int64, err error) {
	if size < 0 {
		return 0, 0, ErrNoRange
	}
	h := strings.TrimSpace(header)
	if h == "" {
		return 0, 0, ErrNoRange
	}
	unit, spec, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, ErrNoRange
	}
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.Contains(spec, ",") {
		return 0, 0, ErrNoRange
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, ErrNoRange
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	unsatisfiable := s3err.ErrInvalidRange.Wrap(errUnsatisfiable)

	if first == "" {
		// Suffix range: the last n bytes.
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, ErrNoRange
		}
		if n == 0 || size == 0 {
			return 0, 0, unsatisfiable
		}
		if n > size {
			n = size
		}
		return size - n, n, nil
	}

	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, ErrNoRange
	}
	b := int64(-1) // open-ended
	if last != "" {
		b, ok = parseDigits(last)
		if !ok {
			return 0, 0, ErrNoRange
		}
		if b < a {
			return 0, 0, ErrNoRange
		}
	}
	if a >= size {
		return 0, 0, unsatisfiable
	}
	if b < 0 || b >= size {
		b = size - 1
	}
	return a, b - a + 1, nil
}

// parseDigits parses a non-empty run of ASCII digits. A value too large for
// int64 saturates at the maximum: it is past the end of any object.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			n = 1<<63 - 1
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// ContentRange returns the Content-Range value of a 206 response:
// "bytes start-end/size".
func ContentRange(start, length, size int64) string {
	return "bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(start+length-1, 10) + "/" + strconv.FormatInt(size, 10)
}

// Unsatisfiable returns the Content-Range value of a 416 response:
// "bytes */size".
func Unsatisfiable(size int64) string {
	return "bytes */" + strconv.FormatInt(size, 10)
}
