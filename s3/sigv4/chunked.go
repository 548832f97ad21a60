package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/sealfs/sealfs/s3/s3err"
)

// The aws-chunked body, as S3 clients send it:
//
//	chunk    = HEX-SIZE [ ";chunk-signature=" SIG ] CRLF DATA CRLF
//	final    = "0" [ ";chunk-signature=" SIG ] CRLF
//	trailers = *( NAME ":" VALUE EOL ) [ "x-amz-trailer-signature:" SIG CRLF ] CRLF
//	body     = *chunk final trailers
//
// SIG is 64 hex digits. Chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// and its -TRAILER variant) chain: each is the HMAC, under the request's
// signing key, of
//
//	"AWS4-HMAC-SHA256-PAYLOAD" \n X-AMZ-DATE \n SCOPE \n PREVIOUS-SIG \n
//	SHA256("") \n SHA256(DATA)
//
// with PREVIOUS-SIG the seed (the request's own signature) for the first
// chunk. The final chunk is signed the same way over empty data. The
// trailer signature is the HMAC of
//
//	"AWS4-HMAC-SHA256-TRAILER" \n X-AMZ-DATE \n SCOPE \n FINAL-CHUNK-SIG \n
//	SHA256(trailer lines, each as "name:value\n")
//
// Clients differ in line endings around the trailers: the AWS SDKs end each
// trailer line with CRLF; minio-go ends them with LF, puts a blank line
// before x-amz-trailer-signature and, in the unsigned form, sends one CRLF
// more than needed. The reader accepts all of these; the body may end with
// at most a few stray CR/LF bytes and nothing else.
//
// Chunk data is never buffered: it is handed to the caller as it arrives and
// hashed on the way, so a chunk may be of any size.

const (
	lineBufferSize  = 8 << 10 // longest chunk-header or trailer line
	maxTrailerLines = 64
	maxStrayEOL     = 8
)

// trailerField is one trailing header.
type trailerField struct {
	name, value string
}

// chunkSigner verifies the chain of chunk signatures. Its buffers live in
// the struct so that verifying a chunk allocates nothing.
type chunkSigner struct {
	mac          hash.Hash
	dataHash     hash.Hash // SHA-256 of the current chunk (or trailers)
	prev         [sha256.Size]byte
	chunkPrefix  []byte // "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n"
	trailPrefix  []byte // "AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n"
	buf          []byte
	digest, want [sha256.Size]byte
}

func newChunkSigner(key []byte, amzDate, scope string, seed [sha256.Size]byte) *chunkSigner {
	return &chunkSigner{
		mac:         hmac.New(sha256.New, key),
		dataHash:    sha256.New(),
		prev:        seed,
		chunkPrefix: []byte("AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n"),
		trailPrefix: []byte("AWS4-HMAC-SHA256-TRAILER\n" + amzDate + "\n" + scope + "\n"),
		buf:         make([]byte, 0, 320),
	}
}

// verify checks got against the signature of what dataHash has seen, and on
// success makes got the previous signature of the chain.
func (s *chunkSigner) verify(got [sha256.Size]byte, trailer bool) bool {
	s.dataHash.Sum(s.digest[:0])
	if trailer {
		s.buf = append(s.buf[:0], s.trailPrefix...)
	} else {
		s.buf = append(s.buf[:0], s.chunkPrefix...)
	}
	s.buf = hex.AppendEncode(s.buf, s.prev[:])
	s.buf = append(s.buf, '\n')
	if !trailer {
		s.buf = append(s.buf, EmptySHA256...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = hex.AppendEncode(s.buf, s.digest[:])
	s.mac.Reset()
	s.mac.Write(s.buf)
	if !hmac.Equal(s.mac.Sum(s.want[:0]), got[:]) {
		return false
	}
	s.prev = got
	return true
}

// chunkReader decodes an aws-chunked body, verifying chunk and trailer
// signatures when signer is set. It returns io.EOF only once the final
// chunk, the trailers and the end of the body have all been checked.
type chunkReader struct {
	br         *bufio.Reader
	mode       PayloadMode
	signer     *chunkSigner // nil for unsigned chunks
	maxDecoded int64        // x-amz-decoded-content-length, -1 if unknown
	decoded    int64
	remaining  int64 // data bytes left in the current chunk
	inData     bool
	sig        [sha256.Size]byte // signature of the current chunk
	trailers   []trailerField
	err        error // sticky; io.EOF once complete
}

func newChunkReader(src io.Reader, mode PayloadMode, signer *chunkSigner, maxDecoded int64) *chunkReader {
	return &chunkReader{
		br:         bufio.NewReaderSize(src, lineBufferSize),
		mode:       mode,
		signer:     signer,
		maxDecoded: maxDecoded,
	}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.err != nil {
			return 0, c.err
		}
		if !c.inData {
			if err := c.startChunk(); err != nil {
				c.err = err
			}
			continue
		}
		if len(p) == 0 {
			return 0, nil
		}
		want := p
		if int64(len(want)) > c.remaining {
			want = want[:c.remaining]
		}
		n, err := c.br.Read(want)
		if n > 0 {
			c.decoded += int64(n)
			c.remaining -= int64(n)
			if c.signer != nil {
				c.signer.dataHash.Write(want[:n])
			}
		}
		if c.remaining == 0 {
			if ferr := c.endChunk(); ferr != nil {
				c.err = ferr
			}
		} else if err != nil {
			c.err = bodyReadError(err)
		}
		if n > 0 {
			return n, nil
		}
	}
}

// startChunk reads a chunk header; for the final chunk it also reads and
// verifies the trailers and the end of the body, and returns io.EOF.
func (c *chunkReader) startChunk() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	size, sig, err := parseChunkHeader(line, c.signer != nil)
	if err != nil {
		return err
	}
	if c.maxDecoded >= 0 && size > c.maxDecoded-c.decoded {
		return s3err.ErrIncompleteBody.WithMessage("The aws-chunked body carries more data than x-amz-decoded-content-length declares.")
	}
	if c.signer != nil {
		c.signer.dataHash.Reset()
	}
	if size > 0 {
		c.remaining, c.sig, c.inData = size, sig, true
		return nil
	}
	if c.signer != nil && !c.signer.verify(sig, false) {
		return s3err.ErrSignatureDoesNotMatch.Wrap(errors.New("sigv4: final chunk signature does not match"))
	}
	if err := c.readTrailers(); err != nil {
		return err
	}
	if err := c.drain(); err != nil {
		return err
	}
	return io.EOF
}

// endChunk consumes the CRLF after a chunk's data and verifies its
// signature.
func (c *chunkReader) endChunk() error {
	c.inData = false
	for _, want := range []byte{'\r', '\n'} {
		b, err := c.br.ReadByte()
		if err != nil {
			return bodyReadError(err)
		}
		if b != want {
			return malformedChunked("chunk data is not followed by CRLF")
		}
	}
	if c.signer != nil && !c.signer.verify(c.sig, false) {
		return s3err.ErrSignatureDoesNotMatch.Wrap(errors.New("sigv4: chunk signature does not match"))
	}
	return nil
}

// readTrailers reads the trailer section after the final chunk.
func (c *chunkReader) readTrailers() error {
	signedTrailer := c.mode == PayloadStreamingSignedTrailer
	sawSig := false
	for lines := 0; ; lines++ {
		if lines >= maxTrailerLines {
			return malformedChunked("too many trailer lines")
		}
		line, err := c.readLine()
		if errors.Is(err, errNoLine) {
			// The body ended without the last CRLF: acceptable once
			// everything that must be there is.
			if !signedTrailer || sawSig {
				return nil
			}
			return s3err.ErrIncompleteBody.Wrap(errors.New("sigv4: body ends before the trailer signature"))
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if signedTrailer && !sawSig {
				continue
			}
			break
		}
		if !c.mode.Trailer() {
			return malformedChunked("trailing headers in a body declared without trailers")
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return malformedChunked("trailer line without ':'")
		}
		lname := strings.ToLower(string(bytes.TrimSpace(name)))
		if lname == "x-amz-trailer-signature" {
			if !signedTrailer || sawSig {
				return malformedChunked("unexpected x-amz-trailer-signature")
			}
			sig, ok := parseSignature(string(bytes.TrimSpace(value)))
			if !ok {
				return malformedChunked("x-amz-trailer-signature is not 64 hexadecimal characters")
			}
			if !c.signer.verify(sig, true) {
				return s3err.ErrSignatureDoesNotMatch.Wrap(errors.New("sigv4: trailer signature does not match"))
			}
			sawSig = true
			continue
		}
		if sawSig {
			return malformedChunked("trailer after x-amz-trailer-signature")
		}
		if signedTrailer {
			c.signer.dataHash.Write(line)
			c.signer.dataHash.Write([]byte{'\n'})
		}
		c.trailers = append(c.trailers, trailerField{name: lname, value: string(bytes.TrimSpace(value))})
	}
	if signedTrailer && !sawSig {
		return s3err.ErrSignatureDoesNotMatch.Wrap(errors.New("sigv4: missing x-amz-trailer-signature"))
	}
	return nil
}

// drain accepts a few stray CR/LF bytes and then requires the end of the
// body.
func (c *chunkReader) drain() error {
	for i := 0; ; i++ {
		b, err := c.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return bodyReadError(err)
		}
		if (b != '\r' && b != '\n') || i >= maxStrayEOL {
			return s3err.ErrIncompleteBody.WithMessage("The request body goes on after the end of its aws-chunked encoding.")
		}
	}
}

// errNoLine: the body ended cleanly where a line would start.
var errNoLine = errors.New("sigv4: end of body")

// readLine returns the next line without its LF or CRLF. It is valid until
// the next read. A body that ends exactly where the line would start gives
// errNoLine wrapped in IncompleteBody.
func (c *chunkReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, malformedChunked("line too long")
		case err == io.EOF && len(line) == 0:
			return nil, s3err.ErrIncompleteBody.Wrap(errNoLine)
		}
		return nil, bodyReadError(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseChunkHeader parses HEX-SIZE[;ext...]. With signed set, a
// chunk-signature extension is required; other extensions are ignored.
func parseChunkHeader(line []byte, signed bool) (int64, [sha256.Size]byte, error) {
	var sig [sha256.Size]byte
	sizePart, ext, hasExt := bytes.Cut(line, []byte{';'})
	if len(sizePart) == 0 || len(sizePart) > 16 {
		return 0, sig, malformedChunked("bad chunk size")
	}
	var size int64
	for _, ch := range sizePart {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, sig, malformedChunked("bad chunk size")
		}
		if size > (1<<63-1)>>4 {
			return 0, sig, malformedChunked("chunk size overflows")
		}
		size = size<<4 | int64(d)
	}
	if !signed {
		return size, sig, nil
	}
	if hasExt {
		for part := range bytes.SplitSeq(ext, []byte{';'}) {
			k, v, _ := bytes.Cut(part, []byte{'='})
			if string(bytes.TrimSpace(k)) != "chunk-signature" {
				continue
			}
			s, ok := parseSignature(string(bytes.TrimSpace(v)))
			if !ok {
				return 0, sig, malformedChunked("chunk-signature is not 64 hexadecimal characters")
			}
			return size, s, nil
		}
	}
	return 0, sig, malformedChunked("chunk without chunk-signature")
}

func malformedChunked(msg string) error {
	return s3err.ErrInvalidRequest.WithMessage("The aws-chunked request body is malformed: " + msg + ".")
}

// bodyReadError maps an error from reading the request body: a body that
// ends early is IncompleteBody, one over a http.MaxBytesReader limit is
// EntityTooLarge, anything else (a reset connection) is passed on wrapped.
func bodyReadError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return s3err.ErrIncompleteBody.Wrap(io.ErrUnexpectedEOF)
	case errors.As(err, &mbe):
		return s3err.ErrEntityTooLarge.Wrap(err)
	}
	var e *s3err.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf("sigv4: reading request body: %w", err)
}
