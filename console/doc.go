// Package console is sealfs's web console: pages an operator opens in a
// browser to see and change what the admin API and the S3 API reach —
// buckets (with objects, bytes, encryption and replication), a bucket's
// default encryption (Settings → Default Encryption → Modify → SSE-KMS or
// none → OK), the object browser (folders, paging, upload with progress,
// download, delete, an object's details as S3 HEAD and the mount's
// sealfs.* attributes show them), the KMS keys (enable, disable, rotate),
// replication (targets, rules, backlog, failures, resync with progress)
// and an overview with charts of the last hour's S3 requests and bytes.
//
// It is a front door beside package admin and package s3: it reaches
// records, blobs and keys only through a *cryptostore.Store and
// replication through a *replicate.Manager, never meta or kms
// (internal/archtest enforces it). The daemon (cmd/sealfs) builds it (New)
// and serves it under Prefix.
//
// # Address
//
// The console is served by the daemon on its HTTPS S3 listener, under
// /console/ (no port of its own: one certificate, one address to open in a
// firewall). A browser asking for "/" — a GET that accepts text/html and
// carries no S3 authentication (IsBrowserRoot) — is redirected there; S3
// clients asking for "/" (ListBuckets, signed or anonymous) are answered
// by the S3 API as before. It is never served over the plain-HTTP
// listener (403: the cookie is Secure and secrets are typed into it). It
// is on by default; --console=false (SEALFS_CONSOLE=false) turns it off,
// and /console/ is then an S3 path like any other. Requests under /console/
// that are signed for S3 (an Authorization header or a presigned URL: a
// browser's never are) go to the S3 API even with the console on
// (Serves), so a bucket named "console" stays reachable over S3.
//
// Every page and asset is embedded in the binary (html/template pages, one
// stylesheet and one small script, written for it): nothing is fetched
// from elsewhere and building needs only Go. Every value shown is escaped
// by html/template; answers carry a Content-Security-Policy allowing only
// the console's own script and stylesheet, so a stored <script> in a key
// or a metadata value is shown as text and could not run anyway.
// Downloads are sent as attachments (application/octet-stream, CSP
// sandbox): an object's content is never rendered on the console's origin.
//
// # Who logs in
//
// The daemon's admin credentials: its S3 access key and secret key. A
// user's access key (package iam, cryptostore's users) is refused with a
// message saying so: the console's pages are the admin's (keys,
// replication targets, every bucket's statistics), and evaluating a user's
// policy for each of them is not done yet. Users reach sealfs over S3,
// where their policies apply.
//
// # Sessions
//
// A login makes a server-side session: the cookie holds only a random
// 256-bit id (crypto/rand), and the daemon keeps the session under the
// id's SHA-256, in memory (a restart logs everyone out). The cookie is
// "sealfs-console", Path=/console/, Secure, HttpOnly, SameSite=Strict. A
// session ends after 30 minutes unused (DefaultSessionIdle) or 12 hours
// after the login however busy (DefaultSessionMax), and at logout, which
// removes it from the daemon. At most 1000 sessions are kept (the least
// recently used goes first).
//
// Every state-changing request is a POST carrying the session's CSRF token
// (a second random 256-bit value, compared in constant time) as the form
// field "csrf" or the header X-CSRF-Token (the upload script's), and is
// refused when the browser names another Origin. The login form has its own
// token (a short-lived cookie matched against the form's field, since there
// is no session yet). Without a session every console path answers 401 (a
// browser's page request is redirected to the login page instead); without
// a valid CSRF token a POST answers 403.
//
// Failed logins are slowed down: each refused login is answered after a
// second (DefaultFailedLoginDelay), and after 3 failures from one source
// address or for one access key each further attempt must wait twice as
// long as the one before, from 1 s up to 5 minutes for a source and 1
// minute for an access key (so that no one can lock the admin out for long
// by failing on purpose). A successful login clears both; failures are
// forgotten 15 minutes after the last.
//
// # Charts
//
// The overview's charts are drawn as SVG on the server from Stats: the S3
// requests (and those answered with a status of 400 or more) and the body
// bytes received and sent, in 10-second slots over the last hour (a fixed
// ring of 360 slots, filled by Stats.Observe, which the daemon chains
// into the S3 handler's Observe beside the Prometheus metrics). Each chart
// has a text summary for screen readers.
//
// # Pages
//
// Every page is a plain HTML page with links and forms (it works without
// the script, which only adds upload progress and the resync page's
// refresh), laid out for a 1280×800 window and down to a phone's width
// (tables scroll sideways), with a skip link, visible focus, labels on
// every field and ARIA names on actions that repeat per row.
package console
