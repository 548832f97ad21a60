package s3

import (
	"encoding/xml"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sealfs/sealfs/s3/s3xml"
)

// The listing documents are the largest and most frequent responses; built
// with encoding/xml a 1000-key page costs about 2 ms of CPU. These appenders
// write the very same bytes as s3xml.Marshal (a test holds them to it) in a
// fraction of the time. writeListing (list.go) sends a document built from
// the same parts (head, objects, tail) a piece at a time.

// appendListV1 appends the document s3xml.Marshal(res) would produce.
func appendListV1(b []byte, res *s3xml.ListBucketResult) []byte {
	return appendEntries(appendListV1Head(b, res), res.Contents, res.CommonPrefixes)
}

// appendListV1Head appends the part of appendListV1's document before the
// entries.
func appendListV1Head(b []byte, res *s3xml.ListBucketResult) []byte {
	b = append(b, xml.Header...)
	b = append(b, `<ListBucketResult xmlns="`+s3xml.Namespace+`">`...)
	b = appendElem(b, "Name", res.Name)
	b = appendElem(b, "Prefix", res.Prefix)
	b = appendElem(b, "Marker", res.Marker)
	b = appendElemOmit(b, "NextMarker", res.NextMarker)
	b = appendInt(b, "MaxKeys", int64(res.MaxKeys))
	b = appendElemOmit(b, "Delimiter", res.Delimiter)
	b = appendBool(b, "IsTruncated", res.IsTruncated)
	return appendElemOmit(b, "EncodingType", res.EncodingType)
}

// appendListV2 appends the document s3xml.Marshal(res) would produce.
func appendListV2(b []byte, res *s3xml.ListBucketResultV2) []byte {
	return appendEntries(appendListV2Head(b, res), res.Contents, res.CommonPrefixes)
}

// appendListV2Head appends the part of appendListV2's document before the
// entries.
func appendListV2Head(b []byte, res *s3xml.ListBucketResultV2) []byte {
	b = append(b, xml.Header...)
	b = append(b, `<ListBucketResult xmlns="`+s3xml.Namespace+`">`...)
	b = appendElem(b, "Name", res.Name)
	b = appendElem(b, "Prefix", res.Prefix)
	b = appendInt(b, "MaxKeys", int64(res.MaxKeys))
	b = appendElemOmit(b, "Delimiter", res.Delimiter)
	b = appendBool(b, "IsTruncated", res.IsTruncated)
	b = appendInt(b, "KeyCount", int64(res.KeyCount))
	b = appendElemOmit(b, "ContinuationToken", res.ContinuationToken)
	b = appendElemOmit(b, "NextContinuationToken", res.NextContinuationToken)
	b = appendElemOmit(b, "StartAfter", res.StartAfter)
	return appendElemOmit(b, "EncodingType", res.EncodingType)
}

// appendEntries appends the objects and common prefixes of a V1 or V2
// listing and closes the document.
func appendEntries(b []byte, contents []s3xml.Object, prefixes []s3xml.CommonPrefix) []byte {
	for i := range contents {
		b = appendObject(b, &contents[i])
	}
	return appendListTail(b, prefixes)
}

// appendListTail appends what follows a V1 or V2 listing's objects: its
// common prefixes and the document's end.
func appendListTail(b []byte, prefixes []s3xml.CommonPrefix) []byte {
	for _, p := range prefixes {
		b = append(b, "<CommonPrefixes>"...)
		b = appendElem(b, "Prefix", p.Prefix)
		b = append(b, "</CommonPrefixes>"...)
	}
	return append(b, "</ListBucketResult>"...)
}

func appendObject(b []byte, o *s3xml.Object) []byte {
	b = append(b, "<Contents>"...)
	b = appendElem(b, "Key", o.Key)
	b = appendTime(b, "LastModified", o.LastModified.Time)
	b = appendElem(b, "ETag", o.ETag)
	b = appendElemOmit(b, "ChecksumAlgorithm", o.ChecksumAlgorithm)
	b = appendElemOmit(b, "ChecksumType", o.ChecksumType)
	b = appendInt(b, "Size", o.Size)
	if o.Owner != nil {
		b = append(b, "<Owner>"...)
		b = appendElem(b, "ID", o.Owner.ID)
		b = appendElemOmit(b, "DisplayName", o.Owner.DisplayName)
		b = append(b, "</Owner>"...)
	}
	b = appendElem(b, "StorageClass", o.StorageClass)
	return append(b, "</Contents>"...)
}

func appendElem(b []byte, name, v string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendEscaped(b, v)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>')
}

func appendElemOmit(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendElem(b, name, v)
}

func appendInt(b []byte, name string, v int64) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = strconv.AppendInt(b, v, 10)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>')
}

func appendBool(b []byte, name string, v bool) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = strconv.AppendBool(b, v)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>')
}

// appendTime writes a timestamp as s3xml.Time does: nothing when zero.
func appendTime(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = t.UTC().AppendFormat(b, s3xml.TimeLayout)
	b = append(b, '<', '/')
	b = append(b, name...)
	return append(b, '>')
}

// appendEscaped escapes character data as encoding/xml does: the five
// markup characters and tab, newline and carriage return as references, and
// anything that is not an XML character (invalid UTF-8 included) as U+FFFD.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\'' && c != '&' && c != '<' && c != '>' {
			i++
			continue
		}
		r, width := rune(c), 1
		if c >= utf8.RuneSelf {
			r, width = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if xmlChar(r) && !(r == utf8.RuneError && width == 1) {
				i += width
				continue
			}
			esc = "\uFFFD"
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		i += width
		start = i
	}
	return append(b, s[start:]...)
}

// xmlChar reports whether r may appear in an XML document (XML 1.0 Char).
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
