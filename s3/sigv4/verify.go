package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealfs/sealfs/s3/s3err"
)

// Wire constants of Signature Version 4 for S3.
const (
	Algorithm  = "AWS4-HMAC-SHA256"
	Service    = "s3"
	terminator = "aws4_request"

	// AmzDateLayout is the layout of X-Amz-Date.
	AmzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"

	// EmptySHA256 is the hex SHA-256 of nothing.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// DefaultMaxSkew is the clock difference tolerated between a signed
	// request's time and the server's, as S3 does.
	DefaultMaxSkew = 15 * time.Minute

	// MaxPresignExpiry is the longest X-Amz-Expires S3 accepts: 7 days.
	MaxPresignExpiry = 604800 * time.Second
)

// Values of x-amz-content-sha256 besides a hex digest.
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingPayload                = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// Sentinel causes, reachable with errors.Is through the *s3err.Error that
// carries them.
var (
	// ErrAnonymous: the request carries no authentication at all.
	ErrAnonymous = errors.New("sigv4: request carries no authentication")
	// ErrNotV4: the request is signed with Signature Version 2 or another
	// scheme sealfs does not accept.
	ErrNotV4 = errors.New("sigv4: only Signature Version 4 (AWS4-HMAC-SHA256) is accepted")
	// ErrExpired: a presigned URL past its expiry.
	ErrExpired = errors.New("sigv4: presigned request has expired")
)

// PayloadMode is how the body of a request is protected, from its
// x-amz-content-sha256 value.
type PayloadMode int

// The payload modes.
const (
	// PayloadUnsigned: UNSIGNED-PAYLOAD (always the case for presigned URLs
	// that do not sign a hash).
	PayloadUnsigned PayloadMode = iota + 1
	// PayloadSHA256: a hex SHA-256 of the whole body.
	PayloadSHA256
	// PayloadStreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD.
	PayloadStreamingSigned
	// PayloadStreamingSignedTrailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.
	PayloadStreamingSignedTrailer
	// PayloadStreamingUnsignedTrailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	PayloadStreamingUnsignedTrailer
)

// String returns the x-amz-content-sha256 keyword of m ("SHA256" for a
// digest).
func (m PayloadMode) String() string {
	switch m {
	case PayloadUnsigned:
		return UnsignedPayload
	case PayloadSHA256:
		return "SHA256"
	case PayloadStreamingSigned:
		return StreamingPayload
	case PayloadStreamingSignedTrailer:
		return StreamingPayloadTrailer
	case PayloadStreamingUnsignedTrailer:
		return StreamingUnsignedPayloadTrailer
	}
	return "PayloadMode(" + strconv.Itoa(int(m)) + ")"
}

// Chunked reports whether the body is aws-chunked encoded.
func (m PayloadMode) Chunked() bool {
	return m == PayloadStreamingSigned || m == PayloadStreamingSignedTrailer || m == PayloadStreamingUnsignedTrailer
}

// Trailer reports whether the body ends with trailing headers.
func (m PayloadMode) Trailer() bool {
	return m == PayloadStreamingSignedTrailer || m == PayloadStreamingUnsignedTrailer
}

// chunkSigned reports whether every chunk carries a signature.
func (m PayloadMode) chunkSigned() bool {
	return m == PayloadStreamingSigned || m == PayloadStreamingSignedTrailer
}

// parsePayloadHash maps an x-amz-content-sha256 value to its mode.
func parsePayloadHash(v string) (PayloadMode, bool) {
	switch v {
	case UnsignedPayload:
		return PayloadUnsigned, true
	case StreamingPayload:
		return PayloadStreamingSigned, true
	case StreamingPayloadTrailer:
		return PayloadStreamingSignedTrailer, true
	case StreamingUnsignedPayloadTrailer:
		return PayloadStreamingUnsignedTrailer, true
	}
	if len(v) == 2*sha256.Size && isHex(v) {
		return PayloadSHA256, true
	}
	return 0, false
}

// Verifier authenticates S3 requests signed with Signature Version 4.
// Configure its exported fields before first use; a Verifier is safe for
// concurrent use and must not be copied after first use.
type Verifier struct {
	// Lookup returns the secret key of an access key. Required.
	Lookup func(accessKey string) (secret string, ok bool)
	// Region, when set, is the only region accepted in a credential
	// scope; empty accepts the region the client signed for.
	Region string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is the tolerated clock difference; 0 means DefaultMaxSkew.
	MaxSkew time.Duration

	mu   sync.Mutex
	keys map[keyCacheID][]byte
}

type keyCacheID struct {
	secret, date, region, service string
}

// maxCachedKeys bounds the signing-key cache; it is emptied when full (keys
// change daily, so it refills with what is in use).
const maxCachedKeys = 1024

// signingKey derives, or returns the cached, signing key.
func (v *Verifier) signingKey(secret, date, region, service string) []byte {
	id := keyCacheID{secret: secret, date: date, region: region, service: service}
	v.mu.Lock()
	k, ok := v.keys[id]
	v.mu.Unlock()
	if ok {
		return k
	}
	k = deriveKey(secret, date, region, service)
	v.mu.Lock()
	if v.keys == nil || len(v.keys) >= maxCachedKeys {
		v.keys = make(map[keyCacheID][]byte)
	}
	v.keys[id] = k
	v.mu.Unlock()
	return k
}

// deriveKey is the SigV4 key derivation: an HMAC-SHA256 chain over the
// scope's date, region, service and terminator, keyed first by "AWS4"+secret.
func deriveKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

// Auth describes an authenticated request.
type Auth struct {
	// AccessKey is the access key that signed the request.
	AccessKey string
	// Presigned is true for query-string (presigned URL) authentication.
	Presigned bool
	// Region is the region of the credential scope.
	Region string
	// Time is the signing time (X-Amz-Date).
	Time time.Time
	// Expires is when a presigned URL stops being valid (zero otherwise).
	Expires time.Time
	// Payload is how the body is protected.
	Payload PayloadMode
	// PayloadHash is the x-amz-content-sha256 value that was signed.
	PayloadHash string
	// SignedHeaders lists the signed header names, lower case.
	SignedHeaders []string

	key     []byte
	seed    [sha256.Size]byte
	scope   string
	amzDate string
}

// credential is a parsed credential scope.
type credential struct {
	accessKey, date, region, service string
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + terminator
}

// authorization is a parsed Authorization header.
type authorization struct {
	cred             credential
	signedHeaders    []string
	signedHeadersRaw string
	signature        [sha256.Size]byte
}

// Verify authenticates r. It returns an *Auth, or an *s3err.Error:
// AccessDenied (no authentication: ErrAnonymous; a presigned URL expired:
// ErrExpired; unsigned x-amz-* headers), InvalidRequest (not Signature
// Version 4: ErrNotV4), InvalidAccessKeyId, SignatureDoesNotMatch,
// RequestTimeTooSkewed, AuthorizationHeaderMalformed,
// AuthorizationQueryParametersError or InvalidArgument.
func (v *Verifier) Verify(r *http.Request) (*Auth, error) {
	query, qerr := parseQuery(r.URL.RawQuery)
	hasHeader := len(r.Header.Values("Authorization")) > 0
	qV4 := query.has("X-Amz-Algorithm") || query.has("X-Amz-Credential") || query.has("X-Amz-Signature")
	qV2 := query.has("AWSAccessKeyId") || query.has("Signature")

	switch {
	case hasHeader && (qV4 || qV2):
		return nil, s3err.ErrInvalidArgument.WithMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	case hasHeader:
		if qerr != nil {
			return nil, s3err.ErrInvalidArgument.WithMessage("The query string is not valid.").Wrap(qerr)
		}
		return v.verifyHeader(r, query)
	case qV4:
		if qerr != nil {
			return nil, s3err.ErrAuthorizationQueryParameters.WithMessage("The query string is not valid.").Wrap(qerr)
		}
		return v.verifyPresigned(r, query)
	case qV2:
		return nil, s3err.ErrSignatureVersionNotSupported.Wrap(ErrNotV4)
	}
	return nil, s3err.ErrAccessDenied.Wrap(ErrAnonymous)
}

func (v *Verifier) verifyHeader(r *http.Request, query queryParams) (*Auth, error) {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return nil, headerMalformed("more than one Authorization header")
	}
	h := values[0]
	if !strings.HasPrefix(h, Algorithm+" ") {
		return nil, s3err.ErrSignatureVersionNotSupported.Wrap(ErrNotV4)
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return nil, err
	}
	secret, err := v.lookup(a.cred.accessKey)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(a.cred, false); err != nil {
		return nil, err
	}
	amzDate, t, err := requestDate(r)
	if err != nil {
		return nil, err
	}
	if amzDate[:8] != a.cred.date {
		return nil, headerMalformed("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	now := v.now()
	if d := t.Sub(now); d > v.skew() || -d > v.skew() {
		return nil, s3err.ErrRequestTimeTooSkewed
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		return nil, s3err.ErrInvalidRequest.WithMessage("Missing required header for this request: x-amz-content-sha256")
	}
	mode, ok := parsePayloadHash(payloadHash)
	if !ok {
		return nil, s3err.ErrInvalidArgument.WithMessage("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
	}
	if err := checkAllAmzSigned(r, a.signedHeaders); err != nil {
		return nil, err
	}
	key := v.signingKey(secret, a.cred.date, a.cred.region, a.cred.service)
	cr := canonicalRequest(r, query, false, a.signedHeaders, a.signedHeadersRaw, payloadHash)
	scope := a.cred.scope()
	sts := stringToSign(amzDate, scope, cr)
	if !hmac.Equal(hmacSHA256(key, sts), a.signature[:]) {
		return nil, s3err.ErrSignatureDoesNotMatch.Wrap(fmt.Errorf("sigv4: string to sign %q", sts))
	}
	return &Auth{
		AccessKey:     a.cred.accessKey,
		Region:        a.cred.region,
		Time:          t,
		Payload:       mode,
		PayloadHash:   payloadHash,
		SignedHeaders: a.signedHeaders,
		key:           key,
		seed:          a.signature,
		scope:         scope,
		amzDate:       amzDate,
	}, nil
}

func (v *Verifier) verifyPresigned(r *http.Request, query queryParams) (*Auth, error) {
	const required = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
	get := func(name string) (string, error) {
		vals := query.get(name)
		switch len(vals) {
		case 0:
			return "", queryMalformed(required)
		case 1:
			return vals[0], nil
		}
		return "", queryMalformed("The " + name + " parameter is given more than once.")
	}
	alg, err := get("X-Amz-Algorithm")
	if err != nil {
		return nil, err
	}
	if alg != Algorithm {
		if alg == "" {
			return nil, queryMalformed(required)
		}
		return nil, s3err.ErrSignatureVersionNotSupported.Wrap(ErrNotV4)
	}
	credStr, err := get("X-Amz-Credential")
	if err != nil {
		return nil, err
	}
	amzDate, err := get("X-Amz-Date")
	if err != nil {
		return nil, err
	}
	signedRaw, err := get("X-Amz-SignedHeaders")
	if err != nil {
		return nil, err
	}
	sigHex, err := get("X-Amz-Signature")
	if err != nil {
		return nil, err
	}
	expStr, err := get("X-Amz-Expires")
	if err != nil {
		return nil, err
	}
	exp, perr := strconv.ParseInt(expStr, 10, 64)
	if perr != nil {
		return nil, queryMalformed("X-Amz-Expires should be a number")
	}
	if exp < 0 {
		return nil, queryMalformed("X-Amz-Expires must be non-negative")
	}
	if exp > int64(MaxPresignExpiry/time.Second) {
		return nil, queryMalformed("X-Amz-Expires must be less than a week (in seconds) that is 604800")
	}
	cred, cerr := parseCredential(credStr)
	if cerr != nil {
		return nil, queryMalformed("Error parsing the X-Amz-Credential parameter; " + cerr.Error())
	}
	signed, serr := parseSignedHeaders(signedRaw)
	if serr != nil {
		return nil, queryMalformed("Error parsing the X-Amz-SignedHeaders parameter; " + serr.Error())
	}
	sig, ok := parseSignature(sigHex)
	if !ok {
		return nil, queryMalformed("Error parsing the X-Amz-Signature parameter; it must be 64 hexadecimal characters.")
	}
	secret, err := v.lookup(cred.accessKey)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(cred, true); err != nil {
		return nil, err
	}
	t, terr := time.Parse(AmzDateLayout, amzDate)
	if terr != nil {
		return nil, queryMalformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	if amzDate[:8] != cred.date {
		return nil, queryMalformed("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	now := v.now()
	if t.Sub(now) > v.skew() {
		return nil, s3err.ErrRequestNotYetValid
	}
	expires := t.Add(time.Duration(exp) * time.Second)
	if now.After(expires) {
		return nil, s3err.ErrRequestExpired.Wrap(ErrExpired)
	}
	payloadHash := UnsignedPayload
	if vals := query.get("X-Amz-Content-Sha256"); len(vals) > 0 {
		payloadHash = vals[0]
	}
	mode, ok := parsePayloadHash(payloadHash)
	if !ok {
		return nil, s3err.ErrInvalidArgument.WithMessage("X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.")
	}
	if err := checkAllAmzSigned(r, signed); err != nil {
		return nil, err
	}
	key := v.signingKey(secret, cred.date, cred.region, cred.service)
	cr := canonicalRequest(r, query, true, signed, signedRaw, payloadHash)
	scope := cred.scope()
	sts := stringToSign(amzDate, scope, cr)
	if !hmac.Equal(hmacSHA256(key, sts), sig[:]) {
		return nil, s3err.ErrSignatureDoesNotMatch.Wrap(fmt.Errorf("sigv4: string to sign %q", sts))
	}
	return &Auth{
		AccessKey:     cred.accessKey,
		Presigned:     true,
		Region:        cred.region,
		Time:          t,
		Expires:       expires,
		Payload:       mode,
		PayloadHash:   payloadHash,
		SignedHeaders: signed,
		key:           key,
		seed:          sig,
		scope:         scope,
		amzDate:       amzDate,
	}, nil
}

func (v *Verifier) lookup(accessKey string) (string, error) {
	if v.Lookup != nil {
		if secret, ok := v.Lookup(accessKey); ok {
			return secret, nil
		}
	}
	return "", s3err.ErrInvalidAccessKeyID
}

// checkScope checks the region, service and terminator of a credential.
func (v *Verifier) checkScope(c credential, presigned bool) error {
	bad := headerMalformed
	prefix := ""
	if presigned {
		bad = queryMalformed
		prefix = "Error parsing the X-Amz-Credential parameter; "
	}
	if v.Region != "" && c.region != v.Region {
		return bad(prefix + "the region '" + c.region + "' is wrong; expecting '" + v.Region + "'")
	}
	if c.service != Service {
		return bad(prefix + "incorrect service '" + c.service + "'. This endpoint belongs to '" + Service + "'.")
	}
	return nil
}

func headerMalformed(msg string) error {
	return s3err.ErrAuthorizationHeaderMalformed.WithMessage("The authorization header is malformed; " + msg)
}

func queryMalformed(msg string) error {
	return s3err.ErrAuthorizationQueryParameters.WithMessage(msg)
}

// requestDate returns the request's X-Amz-Date (or, without one, its Date
// header in X-Amz-Date layout) and the time it names.
func requestDate(r *http.Request) (string, time.Time, error) {
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(AmzDateLayout, s)
		if err != nil {
			return "", time.Time{}, s3err.ErrAccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
		}
		return s, t, nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err == nil {
			t = t.UTC()
			return t.Format(AmzDateLayout), t, nil
		}
	}
	return "", time.Time{}, s3err.ErrAccessDenied.WithMessage("AWS authentication requires a valid Date or x-amz-date header")
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AK/20060102/region/s3/aws4_request, SignedHeaders=a;b, Signature=hex
//
// The three fields may come in any order, separated by commas and optional
// spaces; each must appear exactly once.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, Algorithm)
	if !ok || rest == "" || rest[0] != ' ' {
		return a, headerMalformed("the algorithm must be " + Algorithm)
	}
	var cred, signed, sig string
	var seen [3]bool
	for f := range strings.SplitSeq(strings.TrimLeft(rest, " "), ",") {
		f = strings.TrimSpace(f)
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return a, headerMalformed("incorrect component '" + truncate(f) + "'")
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, val
		case "SignedHeaders":
			i, signed = 1, val
		case "Signature":
			i, sig = 2, val
		default:
			return a, headerMalformed("unknown component '" + truncate(k) + "'")
		}
		if seen[i] {
			return a, headerMalformed("component '" + k + "' given more than once")
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return a, headerMalformed("it must contain Credential, SignedHeaders and Signature")
	}
	c, err := parseCredential(cred)
	if err != nil {
		return a, headerMalformed(err.Error())
	}
	sh, err := parseSignedHeaders(signed)
	if err != nil {
		return a, headerMalformed(err.Error())
	}
	s, ok := parseSignature(sig)
	if !ok {
		return a, headerMalformed("the signature must be 64 hexadecimal characters")
	}
	a.cred, a.signedHeaders, a.signedHeadersRaw, a.signature = c, sh, signed, s
	return a, nil
}

// parseCredential parses AK/yyyymmdd/region/service/aws4_request. The access
// key is everything before the last four fields.
func parseCredential(s string) (credential, error) {
	var c credential
	parts := strings.Split(s, "/")
	n := len(parts)
	if n < 5 {
		return c, errors.New("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"")
	}
	c.accessKey = strings.Join(parts[:n-4], "/")
	c.date, c.region, c.service = parts[n-4], parts[n-3], parts[n-2]
	if c.accessKey == "" {
		return c, errors.New("the Credential has an empty access key")
	}
	if _, err := time.Parse(scopeDateLayout, c.date); err != nil || len(c.date) != 8 {
		return c, errors.New("the Credential date '" + truncate(c.date) + "' is not yyyyMMdd")
	}
	if c.region == "" {
		return c, errors.New("the Credential has an empty region")
	}
	if parts[n-1] != terminator {
		return c, errors.New("the Credential terminator must be '" + terminator + "'")
	}
	return c, nil
}

// parseSignedHeaders parses a;b;c: lower-case names, host among them.
func parseSignedHeaders(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("SignedHeaders is empty")
	}
	names := strings.Split(s, ";")
	host := false
	for _, n := range names {
		if n == "" {
			return nil, errors.New("SignedHeaders has an empty name")
		}
		for i := 0; i < len(n); i++ {
			c := n[i]
			if c <= ' ' || c >= 0x7f || ('A' <= c && c <= 'Z') || c == ':' {
				return nil, errors.New("SignedHeaders names must be lower-case header names")
			}
		}
		if n == "host" {
			host = true
		}
	}
	if !host {
		return nil, errors.New("the host header must be signed")
	}
	return names, nil
}

func parseSignature(s string) ([sha256.Size]byte, bool) {
	var sig [sha256.Size]byte
	if len(s) != 2*sha256.Size {
		return sig, false
	}
	if _, err := hex.Decode(sig[:], []byte(s)); err != nil {
		return sig, false
	}
	return sig, true
}

// checkAllAmzSigned refuses x-amz-* headers that are present but not signed.
func checkAllAmzSigned(r *http.Request, signed []string) error {
	for name := range r.Header {
		if len(name) < 6 || !strings.EqualFold(name[:6], "x-amz-") {
			continue
		}
		lower := strings.ToLower(name)
		found := false
		for _, s := range signed {
			if s == lower {
				found = true
				break
			}
		}
		if !found {
			return s3err.ErrUnsignedHeaders.Wrap(fmt.Errorf("sigv4: header %s is not signed", lower))
		}
	}
	return nil
}

func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// truncate keeps client-supplied text short in error messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
