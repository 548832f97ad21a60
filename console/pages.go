package console

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/replicate"
)

// pageNames are the templates, each rendered inside base.html.
var pageNames = []string{"login", "overview", "buckets", "bucket_delete", "settings", "objects", "object", "object_delete", "keys", "key_action", "replication", "resync", "error"}

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"time":  formatTime,
	"pct": func(part, whole int64) string {
		if whole == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f %%", 100*float64(part)/float64(whole))
	},
	"p": url.PathEscape,
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// view is what base.html gets.
type view struct {
	Title   string
	Nav     string
	CSRF    string
	User    string
	Version string
	Region  string
	Flash   []string
	Data    any
}

// render writes a page. The HTML is built in memory first, so that a
// failing template answers 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title, nav string, data any) {
	v := view{Title: title, Nav: nav, Version: c.cfg.Version, Region: c.cfg.Region, Data: data}
	if s != nil {
		v.CSRF, v.User, v.Flash = s.csrf, s.accessKey, s.takeFlash()
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, v); err != nil {
		c.log.Error("console: rendering a page failed", "page", name, "err", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// back redirects after a POST (the browser then GETs the page: reloading
// it does not repeat the change), with a message the page shows once.
func back(w http.ResponseWriter, r *http.Request, s *session, to, done string) {
	if done != "" {
		s.addFlash(done)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// ---- login

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessionOf(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomToken()
	setCookie(w, loginCookie, tok, 3600)
	c.render(w, r, nil, status, "login", "Log in", "", map[string]any{"LoginCSRF": tok, "Error": msg, "AccessKey": r.PostFormValue("access_key")})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ak, sk := strings.TrimSpace(r.PostFormValue("access_key")), r.PostFormValue("secret_key")
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.showLogin(w, r, http.StatusForbidden, "The login form expired. Please try again.")
		return
	}
	keys := throttleKeys(r, ak)
	if left := c.throttle.wait(keys); left > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(left.Seconds()+1)))
		c.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins. Try again in %d seconds.", int(left.Seconds()+1)))
		return
	}
	if !c.checkCredentials(r.Context(), ak, sk) {
		c.throttle.fail(keys)
		c.log.Warn("console: login refused", "access_key", ak, "remote", r.RemoteAddr)
		if c.cfg.FailedLoginDelay > 0 {
			select {
			case <-time.After(c.cfg.FailedLoginDelay):
			case <-r.Context().Done():
				return
			}
		}
		msg := "Wrong access key or secret key."
		if ak != c.cfg.AccessKey && c.isUserKey(r.Context(), ak, sk) {
			msg = "This access key belongs to a user: users reach sealfs over S3; the console is for the daemon's admin credentials."
		}
		c.showLogin(w, r, http.StatusUnauthorized, msg)
		return
	}
	c.throttle.ok(keys)
	id, _ := c.sessions.create(ak)
	setCookie(w, cookieName, id, int(c.cfg.SessionMax/time.Second))
	setCookie(w, loginCookie, "", -1)
	c.log.Info("console: logged in", "access_key", ak, "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// checkCredentials accepts the admin's access key and secret.
func (c *Console) checkCredentials(_ context.Context, ak, sk string) bool {
	okKey := subtle.ConstantTimeCompare([]byte(ak), []byte(c.cfg.AccessKey))
	okSecret := subtle.ConstantTimeCompare([]byte(sk), []byte(c.cfg.SecretKey))
	return ak != "" && okKey&okSecret == 1
}

// isUserKey reports whether ak and sk are a user's working S3 credentials
// (to say why the console refuses them).
func (c *Console) isUserKey(ctx context.Context, ak, sk string) bool {
	p, err := c.store.Principal(ctx, ak)
	return err == nil && subtle.ConstantTimeCompare([]byte(p.Secret), []byte(sk)) == 1
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.sessions.remove(ck.Value)
	}
	setCookie(w, cookieName, "", -1)
	c.log.Info("console: logged out", "access_key", s.accessKey, "remote", r.RemoteAddr)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}

// ---- overview

type overviewData struct {
	Buckets          int
	Objects, Bytes   int64
	EncObjects       int64
	EncBytes         int64
	Encrypting       int
	Backlog          int
	Retrying         int
	Failed           uint64
	Completed        uint64
	Targets          int
	Charts           []chart
	Uptime           string
	Started          time.Time
	ServerTime       string
	BucketStats      []cryptostore.BucketStats
	ReplicationError string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	start := time.Now()
	st, err := c.store.Stats(r.Context())
	if err != nil {
		return err
	}
	d := overviewData{Buckets: len(st), BucketStats: st, Charts: c.cfg.Stats.charts(), Started: c.cfg.Started,
		Uptime: time.Since(c.cfg.Started).Round(time.Second).String()}
	for _, b := range st {
		d.Objects += b.Objects
		d.Bytes += b.Bytes
		d.EncObjects += b.EncryptedObjects
		d.EncBytes += b.EncryptedBytes
		if b.Encryption {
			d.Encrypting++
		}
	}
	if rs, err := c.repl.Stats(r.Context()); err != nil {
		d.ReplicationError = err.Error()
	} else {
		d.Backlog, d.Retrying, d.Failed, d.Completed, d.Targets = rs.Backlog, rs.Retrying, rs.Failed, rs.Completed, len(rs.Targets)
	}
	d.ServerTime = time.Since(start).Round(time.Microsecond).String()
	c.render(w, r, s, http.StatusOK, "overview", "Overview", "overview", d)
	return nil
}

// ---- buckets

type bucketRow struct {
	cryptostore.BucketStats
	Created     time.Time
	KeyID       string
	Rules       int
	Replicating bool
}

func (c *Console) bucketRows(ctx context.Context) ([]bucketRow, error) {
	st, err := c.store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := c.store.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*cryptostore.Bucket, len(bs))
	for _, b := range bs {
		byName[b.Name] = b
	}
	rows := make([]bucketRow, 0, len(st))
	for _, s := range st {
		row := bucketRow{BucketStats: s}
		if b := byName[s.Bucket]; b != nil {
			row.Created, row.KeyID = b.Created, b.MasterKeyID
		}
		if cfg, err := c.repl.Configuration(ctx, s.Bucket); err == nil {
			row.Rules = len(cfg.Rules)
			for _, rule := range cfg.Rules {
				row.Replicating = row.Replicating || rule.Enabled
			}
		} else if !errors.Is(err, replicate.ErrNoConfiguration) {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (c *Console) bucketsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	rows, err := c.bucketRows(r.Context())
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "buckets", "Buckets", "buckets", map[string]any{"Buckets": rows, "Region": c.cfg.Region})
	return nil
}

func (c *Console) createBucket(w http.ResponseWriter, r *http.Request, s *session) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if err := cryptostore.ValidBucketName(name); err != nil {
		return badRequest("%q is not a valid bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit", name)
	}
	if err := c.store.CreateBucket(r.Context(), name, c.cfg.Region); err != nil {
		if errors.Is(err, cryptostore.ErrBucketExists) {
			return &userError{http.StatusConflict, fmt.Sprintf("bucket %s already exists", name)}
		}
		return err
	}
	if r.PostFormValue("encryption") == "SSE-KMS" {
		if err := c.store.SetBucketEncryption(r.Context(), name, true); err != nil {
			return err
		}
	}
	c.log.Info("console: bucket created", "bucket", name, "access_key", s.accessKey)
	back(w, r, s, Prefix+"buckets", "Bucket "+name+" created.")
	return nil
}

// bucketFacts are what deleting a bucket would lose.
type bucketFacts struct {
	Name    string
	Stats   cryptostore.BucketStats
	Bucket  *cryptostore.Bucket
	KeyARN  string
	Rules   []replicate.Rule
	Uploads bool
}

func (c *Console) bucketFacts(ctx context.Context, name string) (*bucketFacts, error) {
	b, err := c.store.GetBucket(ctx, name)
	if err != nil {
		return nil, err
	}
	f := &bucketFacts{Name: name, Bucket: b, Stats: cryptostore.BucketStats{Bucket: name, Encryption: b.EncryptionOn}}
	st, err := c.store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range st {
		if s.Bucket == name {
			f.Stats = s
		}
	}
	if b.MasterKeyID != "" {
		f.KeyARN = c.store.KeyARN(b.MasterKeyID)
	}
	if cfg, err := c.repl.Configuration(ctx, name); err == nil {
		f.Rules = cfg.Rules
	} else if !errors.Is(err, replicate.ErrNoConfiguration) {
		return nil, err
	}
	return f, nil
}

func (c *Console) deleteBucketPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f, err := c.bucketFacts(r.Context(), r.PathValue("bucket"))
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "bucket_delete", "Delete bucket "+f.Name, "buckets", f)
	return nil
}

func (c *Console) deleteBucket(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("bucket")
	if r.PostFormValue("confirm") != name {
		return badRequest("type the bucket's name (%s) to confirm its deletion", name)
	}
	if err := c.store.DeleteBucket(r.Context(), name); err != nil {
		if errors.Is(err, cryptostore.ErrBucketNotEmpty) {
			return &userError{http.StatusConflict, fmt.Sprintf("bucket %s is not empty: delete its objects first", name)}
		}
		return err
	}
	c.log.Info("console: bucket deleted", "bucket", name, "access_key", s.accessKey)
	back(w, r, s, Prefix+"buckets", "Bucket "+name+" deleted.")
	return nil
}

// ---- bucket settings: default encryption

type keyFacts struct {
	*cryptostore.KeyMetadata
	VersionsInUse []versionUse
	Buckets       []string
}

type versionUse struct {
	Version uint32
	Objects int64
}

func (c *Console) keyFacts(ctx context.Context, id string, use map[string]map[uint32]int64) (*keyFacts, error) {
	md, err := c.store.DescribeKey(ctx, id)
	if err != nil {
		return nil, err
	}
	kf := &keyFacts{KeyMetadata: md}
	for v, n := range use[md.KeyID] {
		kf.VersionsInUse = append(kf.VersionsInUse, versionUse{v, n})
	}
	sort.Slice(kf.VersionsInUse, func(i, j int) bool { return kf.VersionsInUse[i].Version < kf.VersionsInUse[j].Version })
	return kf, nil
}

func (c *Console) settingsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	f, err := c.bucketFacts(ctx, r.PathValue("bucket"))
	if err != nil {
		return err
	}
	d := map[string]any{"B": f, "Modify": r.URL.Query().Get("modify") == "encryption"}
	if f.Bucket.MasterKeyID != "" {
		use, err := c.store.KeyVersionUse(ctx)
		if err != nil {
			return err
		}
		kf, err := c.keyFacts(ctx, f.Bucket.MasterKeyID, use)
		if err != nil {
			d["KeyError"] = err.Error()
		} else {
			d["Key"] = kf
		}
	}
	c.render(w, r, s, http.StatusOK, "settings", "Bucket "+f.Name+": settings", "buckets", d)
	return nil
}

func (c *Console) setEncryption(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("bucket")
	var on bool
	switch r.PostFormValue("mode") {
	case "SSE-KMS":
		on = true
	case "none":
	default:
		return badRequest("choose SSE-KMS or none")
	}
	if err := c.store.SetBucketEncryption(r.Context(), name, on); err != nil {
		return err
	}
	c.log.Info("console: bucket default encryption set", "bucket", name, "encryption", on, "access_key", s.accessKey)
	msg := "Default encryption is now SSE-KMS: objects written from now on are encrypted."
	if !on {
		msg = "Default encryption is now off: objects written from now on are stored unencrypted; existing objects stay as they are."
	}
	back(w, r, s, Prefix+"buckets/"+url.PathEscape(name)+"/settings", msg)
	return nil
}

// ---- object browser

// defaultPageSize and maxPageSize bound a page of the object browser.
const (
	defaultPageSize = 200
	maxPageSize     = 1000
)

// objectRow is a row of the object browser, its links and texts made
// here rather than by template functions (a page has up to 1000 rows).
type objectRow struct {
	Name        string // the key below the prefix
	Href        string // the object's details
	Download    string
	Delete      string
	Size        string
	Modified    string
	Encrypted   bool
	Replication string
}

type folderRow struct {
	Prefix string
	Name   string
}

type crumb struct {
	Name, Prefix string
}

func (c *Console) objectsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	bucket := r.PathValue("bucket")
	b, err := c.store.GetBucket(ctx, bucket)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	prefix, after := q.Get("prefix"), q.Get("after")
	n := defaultPageSize
	if v, err := strconv.Atoi(q.Get("n")); err == nil && v > 0 {
		n = min(v, maxPageSize)
	}
	page, err := c.store.List(ctx, bucket, cryptostore.ListOptions{Prefix: prefix, Delimiter: "/", After: after, MaxKeys: n})
	if err != nil {
		return err
	}
	d := map[string]any{"Bucket": bucket, "Encryption": b.EncryptionOn, "Prefix": prefix, "After": after, "N": n}
	var folders []folderRow
	for _, p := range page.CommonPrefixes {
		folders = append(folders, folderRow{Prefix: p, Name: strings.TrimPrefix(p, prefix)})
	}
	objs := make([]objectRow, 0, len(page.Objects))
	base := Prefix + "buckets/" + url.PathEscape(bucket) + "/"
	for _, o := range page.Objects {
		q := "?key=" + url.QueryEscape(o.Key)
		objs = append(objs, objectRow{Name: strings.TrimPrefix(o.Key, prefix), Href: base + "object" + q, Download: base + "download" + q,
			Delete: base + "object/delete" + q, Size: humanBytes(o.Size), Modified: formatTime(o.LastModified),
			Encrypted: o.Encryption != nil, Replication: o.ReplicationStatus})
	}
	d["Folders"], d["Objects"] = folders, objs
	if page.IsTruncated {
		d["Next"] = page.NextAfter
	}
	// Breadcrumbs: the bucket, then each folder of the prefix.
	crumbs := []crumb{{Name: bucket, Prefix: ""}}
	acc := ""
	for _, part := range strings.SplitAfter(prefix, "/") {
		if part == "" {
			continue
		}
		acc += part
		crumbs = append(crumbs, crumb{Name: part, Prefix: acc})
	}
	d["Crumbs"] = crumbs
	if prefix != "" {
		parent := strings.TrimSuffix(prefix, "/")
		if i := strings.LastIndex(parent, "/"); i >= 0 {
			d["Up"] = parent[:i+1]
		} else {
			d["Up"] = ""
		}
		d["HasUp"] = true
	}
	c.render(w, r, s, http.StatusOK, "objects", bucket+"/"+prefix, "buckets", d)
	return nil
}

// objectFacts are an object's details, named as S3 HEAD and the mount's
// sealfs.* attributes name them.
type objectFacts struct {
	Bucket, Key  string
	Size         int64
	ETag         string
	ContentType  string
	LastModified time.Time
	SSE          string
	KeyARN       string
	KeyVersion   uint32
	Replication  string
	User         [][2]string
	Checksums    []cryptostore.Checksum
	Headers      [][2]string
}

func (c *Console) objectFacts(ctx context.Context, bucket, key string) (*objectFacts, error) {
	o, err := c.store.Head(ctx, bucket, key)
	if err != nil {
		return nil, err
	}
	f := &objectFacts{Bucket: bucket, Key: key, Size: o.Size, ETag: `"` + o.ETag + `"`, ContentType: o.Meta.ContentType,
		LastModified: o.LastModified, Replication: o.ReplicationStatus, Checksums: o.Checksums}
	if f.ContentType == "" {
		f.ContentType = "binary/octet-stream"
	}
	if o.Encryption != nil {
		f.SSE = o.Encryption.Algorithm
		f.KeyARN = c.store.KeyARN(o.Encryption.KeyID)
		f.KeyVersion = o.Encryption.KeyVersion
	}
	names := make([]string, 0, len(o.Meta.User))
	for k := range o.Meta.User {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		f.User = append(f.User, [2]string{k, o.Meta.User[k]})
	}
	h := func(k, v string) {
		if v != "" {
			f.Headers = append(f.Headers, [2]string{k, v})
		}
	}
	h("content-length", strconv.FormatInt(o.Size, 10))
	h("content-type", f.ContentType)
	h("etag", f.ETag)
	h("last-modified", o.LastModified.UTC().Format(http.TimeFormat))
	h("x-amz-server-side-encryption", f.SSE)
	h("x-amz-server-side-encryption-aws-kms-key-id", f.KeyARN)
	h("x-amz-replication-status", o.ReplicationStatus)
	for _, kv := range f.User {
		h("x-amz-meta-"+kv[0], kv[1])
	}
	return f, nil
}

func (c *Console) objectPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f, err := c.objectFacts(r.Context(), r.PathValue("bucket"), r.URL.Query().Get("key"))
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "object", f.Bucket+"/"+f.Key, "buckets", map[string]any{"O": f, "Parent": parentPrefix(f.Key)})
	return nil
}

func parentPrefix(key string) string {
	if i := strings.LastIndex(key, "/"); i >= 0 {
		return key[:i+1]
	}
	return ""
}

// download sends an object as an attachment: never rendered by the
// browser on the console's origin, whatever its content type.
func (c *Console) download(w http.ResponseWriter, r *http.Request, s *session) error {
	bucket, key := r.PathValue("bucket"), r.URL.Query().Get("key")
	h, err := c.store.Open(r.Context(), bucket, key)
	if err != nil {
		return err
	}
	defer h.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(key)}))
	hd.Set("Content-Length", strconv.FormatInt(h.Size(), 10))
	hd.Set("Content-Security-Policy", "sandbox")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, h.Reader(0, h.Size())); err != nil {
		c.log.Warn("console: download cut short", "bucket", bucket, "key", key, "err", err)
	}
	return nil
}

// upload streams the files of a multipart form into the store under the
// form's prefix (nothing is spooled on the way). The browser's script
// sends one file per request, to show each one's progress; without the
// script the form sends them all at once.
func (c *Console) upload(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	bucket := r.PathValue("bucket")
	if _, err := c.store.GetBucket(ctx, bucket); err != nil {
		return err
	}
	mr, _ := r.Context().Value(multipartKey{}).(*multipart.Reader)
	if mr == nil {
		var err error
		if mr, err = r.MultipartReader(); err != nil {
			return badRequest("an upload is a multipart form: %v", err)
		}
	}
	prefix := r.URL.Query().Get("prefix")
	var stored []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return badRequest("reading the upload: %v", err)
		}
		if p.FormName() != "file" || p.FileName() == "" {
			p.Close()
			continue
		}
		name := path.Base(strings.ReplaceAll(p.FileName(), "\\", "/"))
		if name == "." || name == "/" {
			return badRequest("a file without a name")
		}
		key := prefix + name
		if err := cryptostore.ValidKey(key); err != nil {
			return badRequest("%q is not a valid object key", key)
		}
		ctype := p.Header.Get("Content-Type")
		if ctype == "" || ctype == "application/octet-stream" {
			if t := mime.TypeByExtension(path.Ext(name)); t != "" {
				ctype = t
			}
		}
		if _, err := c.store.Put(ctx, &cryptostore.PutInput{Bucket: bucket, Key: key, Body: p, Size: -1, Meta: cryptostore.ObjectMeta{ContentType: ctype}}); err != nil {
			return err
		}
		stored = append(stored, key)
	}
	if len(stored) == 0 {
		return badRequest("no file was chosen")
	}
	c.log.Info("console: uploaded", "bucket", bucket, "keys", stored, "access_key", s.accessKey)
	if r.Header.Get("X-CSRF-Token") != "" {
		s.addFlash("Uploaded " + strings.Join(stored, ", ") + ".")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "stored %d\n", len(stored))
		return nil
	}
	back(w, r, s, Prefix+"buckets/"+url.PathEscape(bucket)+"/objects?prefix="+url.QueryEscape(prefix), fmt.Sprintf("Uploaded %d file(s).", len(stored)))
	return nil
}

func (c *Console) deleteObjectPage(w http.ResponseWriter, r *http.Request, s *session) error {
	f, err := c.objectFacts(r.Context(), r.PathValue("bucket"), r.URL.Query().Get("key"))
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "object_delete", "Delete "+f.Key, "buckets", map[string]any{"O": f})
	return nil
}

func (c *Console) deleteObject(w http.ResponseWriter, r *http.Request, s *session) error {
	bucket, key := r.PathValue("bucket"), r.PostFormValue("key")
	if err := c.store.Delete(r.Context(), bucket, key); err != nil {
		return err
	}
	c.log.Info("console: object deleted", "bucket", bucket, "key", key, "access_key", s.accessKey)
	back(w, r, s, Prefix+"buckets/"+url.PathEscape(bucket)+"/objects?prefix="+url.QueryEscape(parentPrefix(key)), "Deleted "+key+".")
	return nil
}

// ---- keys

func (c *Console) allKeys(ctx context.Context) ([]*keyFacts, string, error) {
	keys, err := c.store.Keys(ctx)
	if err != nil {
		return nil, "", err
	}
	use, err := c.store.KeyVersionUse(ctx)
	if err != nil {
		return nil, "", err
	}
	bs, err := c.store.ListBuckets(ctx)
	if err != nil {
		return nil, "", err
	}
	sys, err := c.store.SystemKeyID(ctx)
	if err != nil {
		return nil, "", err
	}
	out := make([]*keyFacts, 0, len(keys))
	for _, k := range keys {
		kf := &keyFacts{KeyMetadata: k}
		for v, n := range use[k.KeyID] {
			kf.VersionsInUse = append(kf.VersionsInUse, versionUse{v, n})
		}
		sort.Slice(kf.VersionsInUse, func(i, j int) bool { return kf.VersionsInUse[i].Version < kf.VersionsInUse[j].Version })
		for _, b := range bs {
			if b.MasterKeyID == k.KeyID {
				kf.Buckets = append(kf.Buckets, b.Name)
			}
		}
		out = append(out, kf)
	}
	return out, sys, nil
}

func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, s *session) error {
	keys, sys, err := c.allKeys(r.Context())
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "keys", "Keys", "keys", map[string]any{"Keys": keys, "System": sys})
	return nil
}

var keyOps = map[string]string{"enable": "Enable", "disable": "Disable", "rotate": "Rotate"}

func (c *Console) keyActionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	op := r.PathValue("op")
	if keyOps[op] == "" {
		return &userError{http.StatusNotFound, "key actions are enable, disable and rotate"}
	}
	ctx := r.Context()
	use, err := c.store.KeyVersionUse(ctx)
	if err != nil {
		return err
	}
	kf, err := c.keyFacts(ctx, r.PathValue("key"), use)
	if err != nil {
		return err
	}
	bs, err := c.store.ListBuckets(ctx)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.MasterKeyID == kf.KeyID {
			kf.Buckets = append(kf.Buckets, b.Name)
		}
	}
	var objects int64
	for _, v := range kf.VersionsInUse {
		objects += v.Objects
	}
	c.render(w, r, s, http.StatusOK, "key_action", keyOps[op]+" key", "keys", map[string]any{"K": kf, "Op": op, "OpName": keyOps[op], "Objects": objects})
	return nil
}

func (c *Console) keyAction(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id, op := r.PathValue("key"), r.PathValue("op")
	var err error
	switch op {
	case "enable":
		err = c.store.EnableKey(ctx, id)
	case "disable":
		err = c.store.DisableKey(ctx, id)
	case "rotate":
		_, err = c.store.RotateKey(ctx, id)
	default:
		return &userError{http.StatusNotFound, "key actions are enable, disable and rotate"}
	}
	if err != nil {
		if errors.Is(err, cryptostore.ErrSystemKey) {
			return &userError{http.StatusConflict, err.Error()}
		}
		return err
	}
	c.log.Info("console: key "+op, "key", id, "access_key", s.accessKey)
	back(w, r, s, Prefix+"keys", fmt.Sprintf("Key %s: %s done.", id, op))
	return nil
}

// ---- replication

type replBucket struct {
	Bucket string
	Status *replicate.BucketStatus
	Error  string
}

func (c *Console) replicationPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	targets, err := c.repl.Targets(ctx)
	if err != nil {
		return err
	}
	st, err := c.repl.Stats(ctx)
	if err != nil {
		return err
	}
	bs, err := c.store.ListBuckets(ctx)
	if err != nil {
		return err
	}
	var rows []replBucket
	for _, b := range bs {
		if _, err := c.repl.Configuration(ctx, b.Name); errors.Is(err, replicate.ErrNoConfiguration) {
			continue
		}
		bst, err := c.repl.BucketStatus(ctx, b.Name)
		row := replBucket{Bucket: b.Name, Status: bst}
		if err != nil {
			row.Error = err.Error()
		}
		rows = append(rows, row)
	}
	health := map[string]replicate.TargetStatus{}
	for _, t := range st.Targets {
		health[t.Region] = t
	}
	c.render(w, r, s, http.StatusOK, "replication", "Replication", "replication", map[string]any{
		"Targets": targets, "Health": health, "Stats": st, "Buckets": rows, "Jobs": c.resyncJobs(), "Region": c.cfg.Region})
	return nil
}

// resyncJobs are the console's resyncs, newest first.
func (c *Console) resyncJobs() []*replicate.ResyncProgress {
	var out []*replicate.ResyncProgress
	ids := c.jobs.all()
	for i := len(ids) - 1; i >= 0; i-- {
		if p, err := c.repl.ResyncStatus(ids[i]); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *Console) startResync(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.repl.StartResync(r.Context(), r.PathValue("bucket"))
	if err != nil {
		if errors.Is(err, replicate.ErrNoConfiguration) {
			return badRequest("bucket %s has no replication rules", r.PathValue("bucket"))
		}
		return err
	}
	c.jobs.add(p.ID)
	c.log.Info("console: resync started", "bucket", p.Bucket, "id", p.ID, "access_key", s.accessKey)
	back(w, r, s, Prefix+"replication/resync/"+url.PathEscape(p.ID), "")
	return nil
}

func (c *Console) resyncPage(w http.ResponseWriter, r *http.Request, s *session) error {
	p, err := c.repl.ResyncStatus(r.PathValue("id"))
	if err != nil {
		return err
	}
	var pct int64
	if p.Total > 0 {
		pct = min(100, 100*p.Scanned/p.Total)
	} else if p.Done {
		pct = 100
	}
	c.render(w, r, s, http.StatusOK, "resync", "Resync of "+p.Bucket, "replication", map[string]any{"P": p, "Pct": pct})
	return nil
}

// resyncs are the resyncs started from the console, newest last.
type resyncs struct {
	mu  sync.Mutex
	ids []string
}

func (j *resyncs) add(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ids = append(j.ids, id)
	if len(j.ids) > 20 {
		j.ids = j.ids[len(j.ids)-20:]
	}
}

func (j *resyncs) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.ids)
}
