package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Session handling (doc.go says why these numbers).
const (
	// DefaultSessionIdle: a session unused this long is over.
	DefaultSessionIdle = 30 * time.Minute
	// DefaultSessionMax: a session is over this long after the login,
	// however busy.
	DefaultSessionMax = 12 * time.Hour
	// DefaultFailedLoginDelay: every refused login is answered this late.
	DefaultFailedLoginDelay = time.Second
	// maxSessions bounds the sessions kept; the oldest goes first.
	maxSessions = 1000

	cookieName = "sealfs-console"
	// loginCookie carries the login form's CSRF token (double submit:
	// there is no session yet to hold it).
	loginCookie = "sealfs-console-login"
)

// session is one logged-in browser. Only the SHA-256 of its id is kept:
// the map leaks no cookie that would still work.
type session struct {
	csrf      string
	accessKey string
	created   time.Time
	lastSeen  time.Time

	// flash are the messages the next page shows once (what a POST did).
	// They are kept here, not in the URL, so that no link can make the
	// console say something it did not.
	mu    sync.Mutex
	flash []string
}

func (s *session) addFlash(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.flash) < 20 {
		s.flash = append(s.flash, msg)
	}
}

func (s *session) takeFlash() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

func (s *session) checkCSRF(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

type sessions struct {
	mu        sync.Mutex
	m         map[[32]byte]*session
	now       func() time.Time
	idle, max time.Duration
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{m: make(map[[32]byte]*session), now: now, idle: idle, max: max}
}

// randomToken is 256 random bits, URL-safe base64.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its id (the cookie's value).
func (ss *sessions) create(accessKey string) (string, *session) {
	id := randomToken()
	now := ss.now()
	s := &session{csrf: randomToken(), accessKey: accessKey, created: now, lastSeen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expireLocked(now)
	if len(ss.m) >= maxSessions {
		var oldest [32]byte
		var at time.Time
		for k, v := range ss.m {
			if at.IsZero() || v.lastSeen.Before(at) {
				oldest, at = k, v.lastSeen
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

func (ss *sessions) expireLocked(now time.Time) {
	for k, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > ss.idle || now.Sub(s.created) > ss.max
}

// get returns the live session of id and marks it used; nil if there is
// none (unknown, forged or expired).
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	h := sha256.Sum256([]byte(id))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[h]
	if !ok {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, h)
		return nil
	}
	s.lastSeen = now
	return s
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// sessionOf returns the request's live session, or nil.
func (c *Console) sessionOf(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     Prefix,
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: when the browser names an Origin (or a Referer),
// its host must be the request's.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true // not a browser's cross-site request (or a privacy setting): the CSRF token decides
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == r.Host
}

// throttle slows down failed logins, per source address and per access
// key: after freeFailures failures, each further attempt must wait twice
// as long as the one before (from 1 s, at most maxLockout for a source and
// maxKeyLockout for a key, so that nobody can lock the admin out for long
// by failing on purpose). A success clears both counts; counts are
// forgotten forgetAfter after the last failure.
type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

type failures struct {
	n    int
	last time.Time
}

const (
	freeFailures  = 3
	maxLockout    = 5 * time.Minute
	maxKeyLockout = time.Minute
	forgetAfter   = 15 * time.Minute
	maxThrottled  = 10000
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{m: make(map[string]*failures), now: now}
}

func throttleKeys(r *http.Request, accessKey string) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"ip:" + host, "key:" + accessKey}
}

func lockout(n int, limit time.Duration) time.Duration {
	if n < freeFailures {
		return 0
	}
	d := time.Second << min(n-freeFailures, 20)
	return min(d, limit)
}

// wait returns how long the caller must still wait before trying again.
func (t *throttle) wait(keys []string) time.Duration {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		f, ok := t.m[k]
		if !ok {
			continue
		}
		limit := maxLockout
		if k[:4] == "key:" {
			limit = maxKeyLockout
		}
		if left := f.last.Add(lockout(f.n, limit)).Sub(now); left > longest {
			longest = left
		}
	}
	return longest
}

func (t *throttle) fail(keys []string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottled {
		for k, f := range t.m {
			if now.Sub(f.last) > forgetAfter {
				delete(t.m, k)
			}
		}
	}
	for _, k := range keys {
		f, ok := t.m[k]
		if !ok || now.Sub(f.last) > forgetAfter {
			f = &failures{}
			t.m[k] = f
		}
		f.n++
		f.last = now
	}
}

func (t *throttle) ok(keys []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.m, k)
	}
}
