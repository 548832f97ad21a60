package sigv4

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// queryParam is one decoded query parameter, in the order it came.
type queryParam struct{ key, value string }

type queryParams []queryParam

func (q queryParams) has(key string) bool {
	for _, p := range q {
		if p.key == key {
			return true
		}
	}
	return false
}

func (q queryParams) get(key string) []string {
	var out []string
	for _, p := range q {
		if p.key == key {
			out = append(out, p.value)
		}
	}
	return out
}

// parseQuery splits a raw query on '&' and decodes each name and value
// ('+' is a space, as in form encoding). Empty pieces are skipped; a piece
// without '=' has an empty value ("?uploads").
func parseQuery(raw string) (queryParams, error) {
	var q queryParams
	var firstErr error
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		q = append(q, queryParam{key: dk, value: dv})
	}
	return q, firstErr
}

// canonicalRequest builds the SigV4 canonical request of r:
//
//	METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
//
// where HEADERS is one "name:value\n" per signed header. presigned leaves
// X-Amz-Signature out of QUERY.
func canonicalRequest(r *http.Request, query queryParams, presigned bool, signed []string, signedRaw, payloadHash string) string {
	var b strings.Builder
	b.Grow(256)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(query, presigned))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signedRaw)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI decodes the request path once and encodes every segment
// once, keeping the '/' separators: S3 does not double-encode.
func canonicalURI(r *http.Request) string {
	p := r.URL.EscapedPath()
	if p == "" {
		return "/"
	}
	var b strings.Builder
	b.Grow(len(p) + 16)
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		dec, err := url.PathUnescape(seg)
		if err != nil {
			// EscapedPath is always valid; keep the raw text if not.
			dec = seg
		}
		uriEncode(&b, dec)
	}
	return b.String()
}

func canonicalQuery(query queryParams, presigned bool) string {
	if len(query) == 0 {
		return ""
	}
	enc := make([]queryParam, 0, len(query))
	for _, p := range query {
		if presigned && p.key == "X-Amz-Signature" {
			continue
		}
		enc = append(enc, queryParam{key: uriEncodeString(p.key), value: uriEncodeString(p.value)})
	}
	slices.SortFunc(enc, func(a, b queryParam) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// headerValue returns the canonical value of a signed header: its values
// trimmed, runs of spaces collapsed, joined with ','.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		// net/http moves Transfer-Encoding out of the header map.
		vals = r.TransferEncoding
		if len(vals) == 0 {
			vals = r.Header.Values("Transfer-Encoding")
		}
	default:
		vals = r.Header[textproto.CanonicalMIMEHeaderKey(name)]
		if vals == nil {
			for k, v := range r.Header {
				if strings.EqualFold(k, name) {
					vals = append(vals, v...)
				}
			}
		}
	}
	if len(vals) == 1 {
		return normalizeSpace(vals[0])
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(normalizeSpace(v))
	}
	return b.String()
}

// normalizeSpace trims spaces and tabs at both ends and collapses each run of
// spaces inside into one.
func normalizeSpace(s string) string {
	s = strings.Trim(s, " \t")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// uriEncode writes s with every byte outside the unreserved set
// (A-Z a-z 0-9 - . _ ~) percent-encoded in upper-case hex.
func uriEncode(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

func uriEncodeString(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	uriEncode(&b, s)
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
