package s3xml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sealfs/sealfs/s3/s3err"
)

// DefaultMaxBodySize bounds request bodies decoded with Decode when the
// caller passes a limit <= 0. A DeleteObjects body naming 1000 keys of 1 KiB
// is about 1.1 MiB; 2 MiB leaves room without inviting abuse.
const DefaultMaxBodySize = 2 << 20

// errInvalid reports a document that parsed but breaks the schema.
func errInvalid(msg string) error { return errors.New("s3xml: " + msg) }

// validator is implemented by request documents with schema rules beyond
// what encoding/xml checks.
type validator interface{ validate() error }

// Decode reads one XML request document from r into v (a pointer to one of
// this package's request types, or any struct with an XMLName). It reads at
// most limit bytes (DefaultMaxBodySize when limit <= 0) and fails, always
// with an error matching s3err.ErrMalformedXML, when the body is empty, too
// large, not well-formed, has a root element other than v's, has content after
// the root element, declares a DTD, declares an encoding other than UTF-8, or
// breaks the type's schema rules (a Delete naming no object or more than
// 1000, a CompleteMultipartUpload with no part, a ServerSideEncryption
// configuration with no rule, ...). Unknown child elements are ignored, as S3
// does, so newer clients that send extra fields still work.
//
// An error reading r that is not about the document itself (a connection
// reset, a body the client did not finish) is returned as it is, wrapped.
func Decode(r io.Reader, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultMaxBodySize
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("s3xml: reading request body: %w", err)
	}
	if int64(len(data)) > limit {
		return malformed(fmt.Errorf("s3xml: body larger than %d bytes", limit))
	}
	return DecodeBytes(data, v)
}

// DecodeBytes is Decode on a body already in memory.
func DecodeBytes(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return malformed(errors.New("s3xml: empty body"))
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("s3xml: unsupported charset %q", charset)
	}
	// Everything before the root element must be a declaration, a comment
	// or white space; a DTD is refused outright.
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return malformed(fmt.Errorf("s3xml: before the root element: %w", err))
		}
		switch t := tok.(type) {
		case xml.ProcInst, xml.Comment:
			continue
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return malformed(errors.New("s3xml: text before the root element"))
			}
			continue
		case xml.Directive:
			return malformed(errors.New("s3xml: DTDs and directives are not accepted"))
		case xml.StartElement:
			// Decode the element from where it started.
			d = xml.NewDecoder(bytes.NewReader(data[off:]))
			d.Strict = true
			if err := d.Decode(v); err != nil {
				return malformed(fmt.Errorf("s3xml: %w", err))
			}
			if err := checkTail(d); err != nil {
				return err
			}
			if val, ok := v.(validator); ok {
				if err := val.validate(); err != nil {
					return malformed(err)
				}
			}
			return nil
		default:
			return malformed(fmt.Errorf("s3xml: unexpected %T before the root element", tok))
		}
	}
}

// checkTail accepts only white space and comments after the root element.
func checkTail(d *xml.Decoder) error {
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return malformed(fmt.Errorf("s3xml: after the root element: %w", err))
		}
		switch t := tok.(type) {
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return malformed(errors.New("s3xml: text after the root element"))
			}
		default:
			return malformed(fmt.Errorf("s3xml: unexpected %T after the root element", tok))
		}
	}
}

func malformed(cause error) error { return s3err.ErrMalformedXML.Wrap(cause) }

// Marshal returns the XML declaration followed by v encoded: the body of an
// S3 response.
func Marshal(v any) ([]byte, error) {
	out, err := xml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("s3xml: encoding %T: %w", v, err)
	}
	return append([]byte(xml.Header), out...), nil
}

// Encode writes Marshal(v) to w.
func Encode(w io.Writer, v any) error {
	out, err := Marshal(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("s3xml: writing %T: %w", v, err)
	}
	return nil
}

// The documents that travel both ways encode with the S3 namespace whether
// or not the caller filled Xmlns. Each converts to a method-less copy of
// itself so that EncodeElement does not recurse.

// MarshalXML encodes c with the S3 namespace.
func (c CreateBucketConfiguration) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain CreateBucketConfiguration
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// MarshalXML encodes c with the S3 namespace.
func (c VersioningConfiguration) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain VersioningConfiguration
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// MarshalXML encodes c with the S3 namespace.
func (c Delete) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain Delete
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// MarshalXML encodes c with the S3 namespace.
func (c CompleteMultipartUpload) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain CompleteMultipartUpload
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// MarshalXML encodes c with the S3 namespace.
func (c ServerSideEncryptionConfiguration) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain ServerSideEncryptionConfiguration
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// MarshalXML encodes c with the S3 namespace.
func (c ReplicationConfiguration) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type plain ReplicationConfiguration
	if c.Xmlns == "" {
		c.Xmlns = Namespace
	}
	return e.EncodeElement(plain(c), start)
}

// URLEncode applies S3's encoding-type=url to a key, prefix, marker or
// delimiter: every byte outside the unreserved set (A-Z a-z 0-9 - . _ ~) and
// '/' is percent-encoded, a space as %20. The result decodes to the original
// with url.QueryUnescape, url.PathUnescape and Python's unquote_plus alike
// (a literal '+' is sent as %2B).
func URLEncode(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !keepByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keepByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func keepByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
}
