package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browser is a headless Chromium (Debian's chromium package) driven over
// the DevTools protocol, with a folder for the screenshots of the pages
// the test visits.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
	// dialogs counts the JavaScript dialogs pages opened (an alert from
	// an injected script would be one).
	dialogs chan string
}

// chromiumPath finds Debian's chromium, failing in CI (SEALFS_REQUIRE_TOOLS
// or SEALFS_REQUIRE_FUSE) where .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	notRun(t, "chromium is not installed (apt-get install chromium)")
	return ""
}

// newBrowser starts Chromium at a 1280×800 window. Every wait below is
// bounded by the test's deadline of 4 minutes.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox,        // root in CI
		chromedp.IgnoreCertErrors, // the daemon's self-signed certificate
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
	)
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 4*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelDeadline()
	})
	shots := os.Getenv("SEALFS_CONSOLE_SCREENSHOTS")
	if shots == "" {
		// Kept only when the test fails, to see what the browser saw.
		var err error
		if shots, err = os.MkdirTemp("", "sealfs-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(shots)
			}
		})
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of the pages visited (a directory of its own is removed when the test passes): %s", shots)
	b := &browser{t: t, ctx: ctx, shots: shots, dialogs: make(chan string, 16)}
	// Starts the browser; the page's viewport is exactly 1280×800.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case b.dialogs <- ev.Message:
			default:
			}
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// do runs actions, each step within 30 s.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v (at %s)", sel, err, b.location())
	}
	return s
}

// until waits (30 s at most) for a JavaScript expression to be true; it
// survives the navigations a click starts.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("(function(){try{return !!("+expr+")}catch(e){return false}})()"))
		if err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("waiting for %s (%s): %v (at %s)", what, expr, ctx.Err(), b.location())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// shot saves a screenshot of the window (PNG) as NN-name.png.
func (b *browser) shot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.n++
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// TestConsoleBrowser is the flow in a real browser: log in, create
// a bucket, Settings → Default Encryption → Modify → SSE-KMS → OK, upload
// a file through the console; then, through the other doors, the object
// is encrypted (S3 HEAD: aws:kms and the key id; getfattr on the mount;
// no plaintext under the data directory). Encryption off in the console:
// the next upload is plain and the first stays encrypted.
func TestConsoleBrowser(t *testing.T) {
	requireTool(t, "getfattr")
	d := startMount(t, DaemonOptions{})
	b := newBrowser(t)
	base := "https://" + d.S3Addr
	ctx := context.Background()
	cli := d.S3()

	// "/" from a browser leads to the console's login page.
	b.do("open /", chromedp.Navigate(base+"/"))
	b.until("the login page", `location.pathname == "/console/login" && document.querySelector("#access_key")`)
	b.shot("login")
	b.do("log in",
		chromedp.SendKeys(chromedp.ID("access_key"), d.AccessKey),
		chromedp.SendKeys(chromedp.ID("secret_key"), d.SecretKey),
		chromedp.Click(chromedp.ID("login")),
	)
	b.until("the overview", `document.querySelector("#ov-buckets")`)
	b.shot("overview-empty")

	// Keyboard: the first Tab reaches the skip link.
	b.do("tab", chromedp.KeyEvent("\t"))
	b.until("the skip link focused", `document.activeElement && document.activeElement.classList.contains("skip")`)

	// Create a bucket.
	const bucket = "console-demo"
	b.do("buckets page", chromedp.Click(chromedp.CSS(`nav a[href="/console/buckets"]`)))
	b.until("the buckets page", `document.querySelector("#bucket-name")`)
	b.do("create bucket",
		chromedp.SendKeys(chromedp.ID("bucket-name"), bucket),
		chromedp.Click(chromedp.ID("create-bucket")),
	)
	b.until("the new bucket listed", `document.querySelector('#buckets a[href="/console/buckets/`+bucket+`/objects"]')`)
	b.shot("buckets")

	// Settings → Default Encryption → Modify → SSE-KMS → OK.
	setEncryption := func(mode, want, shotName string) {
		t.Helper()
		b.do("settings", chromedp.Navigate(base+"/console/buckets"))
		b.until("the buckets page", `document.querySelector('a[aria-label="Settings of `+bucket+`"]')`)
		b.do("open settings", chromedp.Click(chromedp.CSS(`a[aria-label="Settings of `+bucket+`"]`)))
		b.until("the settings page", `document.querySelector("#encryption-modify")`)
		b.do("modify", chromedp.Click(chromedp.ID("encryption-modify")))
		b.until("the choice", `document.querySelector("#mode-kms") && document.querySelector("#mode-none")`)
		n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll('#encryption-form input[type="radio"]').length`))
		if err != nil || n != 2 {
			t.Fatalf("the choice offers %d modes (%v), want SSE-KMS and none", n, err)
		}
		b.do("choose "+mode, chromedp.Click(chromedp.ID(mode)))
		b.shot(shotName + "-modify")
		b.do("OK", chromedp.Click(chromedp.ID("encryption-ok")))
		b.until("the new state", `(document.querySelector("#encryption-state")||{}).textContent.includes("`+want+`")`)
		note := b.text(".note")
		for _, w := range []string{"Only objects written after a change are affected", "HTTPS", "Signature Version 4"} {
			if !strings.Contains(note, w) {
				t.Errorf("the settings page's note lacks %q: %s", w, note)
			}
		}
		b.shot(shotName)
	}
	setEncryption("mode-kms", "SSE-KMS", "settings-sse-kms")

	// Upload a file through the console.
	dir := t.TempDir()
	marker := func() string {
		var r [12]byte
		rand.Read(r[:])
		return "SEALFS-CONSOLE-PLAINTEXT-" + hex.EncodeToString(r[:])
	}
	secret := marker()
	first := filepath.Join(dir, "secret-report.txt")
	if err := os.WriteFile(first, []byte(strings.Repeat(secret+"\n", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	upload := func(path string) {
		t.Helper()
		b.do("objects page", chromedp.Navigate(base+"/console/buckets/"+bucket+"/objects"))
		b.until("the upload form", `document.querySelector("#upload-files")`)
		b.do("choose "+filepath.Base(path), chromedp.SetUploadFiles(chromedp.ID("upload-files"), []string{path}))
		b.do("upload", chromedp.Click(chromedp.ID("upload")))
		b.until("the upload done", `document.querySelector(".flash") && document.querySelector(".flash").textContent.includes("`+filepath.Base(path)+`") && document.querySelector('a.obj[href$="key=`+url.QueryEscape(filepath.Base(path))+`"]')`)
	}
	upload(first)
	b.shot("objects")
	if msgs := b.pendingDialogs(); len(msgs) > 0 {
		t.Fatalf("pages opened dialogs: %q", msgs)
	}

	// The console's object page.
	b.do("object page", chromedp.Click(chromedp.CSS(`a.obj[href$="key=secret-report.txt"]`)))
	b.until("the object page", `document.querySelector("#object-sse")`)
	if sse := b.text("#object-sse"); !strings.Contains(sse, "aws:kms") {
		t.Fatalf("the object page shows encryption %q", sse)
	}
	pageKeyID := b.text("#object-key-id")
	b.shot("object")
	b.do("settings", chromedp.Navigate(base+"/console/buckets/"+bucket+"/settings"))
	b.until("the master key's facts", `document.querySelector("#master-key")`)
	b.shot("settings-master-key")

	// Through the other doors. S3 HEAD:
	head, err := cli.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("secret-report.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if head.ServerSideEncryption != "aws:kms" || aws.ToString(head.SSEKMSKeyId) == "" {
		t.Fatalf("S3 HEAD: encryption %q, key id %q", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId))
	}
	if !strings.Contains(pageKeyID, aws.ToString(head.SSEKMSKeyId)) {
		t.Errorf("the console shows key %q, S3 HEAD %q", pageKeyID, aws.ToString(head.SSEKMSKeyId))
	}
	// The mount:
	if v := strings.TrimSpace(run(t, "getfattr", "--absolute-names", "--only-values", "-n", "sealfs.x-amz-server-side-encryption", d.Path(bucket, "secret-report.txt"))); v != "aws:kms" {
		t.Fatalf("getfattr sealfs.x-amz-server-side-encryption: %q", v)
	}
	// The disk:
	if hits := filesHolding(t, d.DataDir, []byte(secret)); len(hits) > 0 {
		t.Fatalf("the plaintext of an object uploaded into an encrypting bucket is on disk: %v", hits)
	}

	// Encryption off; the next upload is plain.
	setEncryption("mode-none", "None", "settings-none")
	open := marker()
	second := filepath.Join(dir, "public-notes.txt")
	if err := os.WriteFile(second, []byte(strings.Repeat(open+"\n", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	upload(second)
	b.shot("objects-two")
	head2, err := cli.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("public-notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if head2.ServerSideEncryption != "" || head2.SSEKMSKeyId != nil {
		t.Fatalf("an upload after turning encryption off is encrypted: %q %q", head2.ServerSideEncryption, aws.ToString(head2.SSEKMSKeyId))
	}
	if v, err := runErr("getfattr", "--absolute-names", "--only-values", "-n", "sealfs.x-amz-server-side-encryption", d.Path(bucket, "public-notes.txt")); err == nil && strings.TrimSpace(v) != "" {
		t.Fatalf("getfattr on the plain object: %q", v)
	}
	// The check for plaintext finds plaintext where there is some (the data
	// is synced to disk by now: the daemon commits it before answering).
	if hits := filesHolding(t, d.DataDir, []byte(open)); len(hits) == 0 {
		t.Fatalf("the plain object's content is nowhere under %s: the search for plaintext would miss it", d.DataDir)
	}
	head, err = cli.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("secret-report.txt")})
	if err != nil || head.ServerSideEncryption != "aws:kms" {
		t.Fatalf("the first object after turning encryption off: %v %q", err, head.ServerSideEncryption)
	}
	if hits := filesHolding(t, d.DataDir, []byte(secret)); len(hits) > 0 {
		t.Fatalf("the first object's plaintext is on disk: %v", hits)
	}

	// Keys, replication and the overview (with the requests just made).
	b.do("keys", chromedp.Click(chromedp.CSS(`nav a[href="/console/keys"]`)))
	b.until("the keys page", `document.querySelector("#keys") && document.querySelector("#keys").textContent.includes("`+bucket+`")`)
	b.shot("keys")
	b.do("replication", chromedp.Click(chromedp.CSS(`nav a[href="/console/replication"]`)))
	b.until("the replication page", `document.querySelector("#targets")`)
	b.shot("replication")
	b.do("overview", chromedp.Click(chromedp.CSS(`nav a[href="/console/"]`)))
	b.until("the overview", `document.querySelector("#ov-objects") && document.querySelector("#ov-objects").textContent == "2"`)
	if enc := b.text("#ov-encrypted"); enc != "50 %" {
		t.Errorf("the overview says %q of objects are encrypted, want 50 %%", enc)
	}
	b.shot("overview")

	// XSS: a key and metadata full of markup, written over S3, are text.
	evil := `<script>alert("key")</script>'"><img src=x onerror=alert(2)>`
	if _, err := cli.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(evil), Body: strings.NewReader("x"),
		Metadata: map[string]string{"note": `<script>alert("meta")</script>'"`}}); err != nil {
		t.Fatal(err)
	}
	b.do("objects", chromedp.Navigate(base+"/console/buckets/"+bucket+"/objects"))
	b.until("the objects page", `document.querySelectorAll("a.obj").length == 2 && document.querySelector("tr.folder")`) // the key holds a "/": a folder
	b.shot("objects-xss")
	b.do("evil object", chromedp.Navigate(base+"/console/buckets/"+bucket+"/object?key="+url.QueryEscape(evil)))
	b.until("the object page", `document.querySelector("#object-key")`)
	if got := b.text("#object-key"); got != evil {
		t.Errorf("the object page's title is %q, want the key as text %q", got, evil)
	}
	if got := b.text("#user-meta"); !strings.Contains(got, `<script>alert("meta")</script>'"`) {
		t.Errorf("the metadata is not shown as text: %q", got)
	}
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`))
	if err != nil || n != 0 {
		t.Errorf("the page holds %d script or img elements from the data (%v)", n, err)
	}
	b.shot("object-xss")
	time.Sleep(300 * time.Millisecond)
	if msgs := b.pendingDialogs(); len(msgs) > 0 {
		t.Fatalf("a script from the data ran: dialogs %q", msgs)
	}

	// A phone's width.
	// Every page at a phone's width (wide tables scroll inside their box,
	// the page itself does not) and at 1280×800.
	pages := []struct{ name, path, ready string }{
		{"overview", "/console/", "#ov-objects"},
		{"buckets", "/console/buckets", "#bucket-name"},
		{"settings", "/console/buckets/" + bucket + "/settings", "#encryption-modify"},
		{"settings-modify", "/console/buckets/" + bucket + "/settings?modify=encryption", "#mode-kms"},
		{"objects", "/console/buckets/" + bucket + "/objects", "#upload-files"},
		{"object", "/console/buckets/" + bucket + "/object?key=secret-report.txt", "#object-sse"},
		{"object-delete", "/console/buckets/" + bucket + "/object/delete?key=secret-report.txt", "#delete-object"},
		{"bucket-delete", "/console/buckets/" + bucket + "/delete", "#delete-bucket"},
		{"keys", "/console/keys", "#keys"},
		{"key-rotate", "/console/keys/" + path.Base(aws.ToString(head.SSEKMSKeyId)) + "/rotate", "#confirm-key"},
		{"replication", "/console/replication", "#targets"},
	}
	for _, vp := range []struct {
		name string
		w, h int64
		opts []chromedp.EmulateViewportOption
	}{{"phone", 390, 844, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}}, {"desktop", 1280, 800, nil}} {
		b.do(vp.name, chromedp.EmulateViewport(vp.w, vp.h, vp.opts...))
		for _, p := range pages {
			b.do(p.name, chromedp.Navigate(base+p.path))
			b.until("the "+p.name+" page", `document.querySelector("`+p.ready+`")`)
			w, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
			if err != nil || w > vp.w {
				t.Errorf("%s at %d px: the page is %d px wide (%v): it scrolls sideways", p.name, vp.w, w, err)
			}
			// Every form field has a label.
			unlabelled, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea")).filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).length`))
			if err != nil || unlabelled != 0 {
				t.Errorf("%s: %d form fields without a label (%v)", p.name, unlabelled, err)
			}
			if vp.name == "phone" {
				b.shot(p.name + "-phone")
			}
		}
	}

	// Log out: the console is closed again.
	b.do("log out", chromedp.Click(chromedp.CSS(`form.logout button`)))
	b.until("the login page", `location.pathname == "/console/login"`)
	b.do("overview", chromedp.Navigate(base+"/console/"))
	b.until("the login page again", `location.pathname == "/console/login"`)
}

func (b *browser) pendingDialogs() []string {
	var out []string
	for {
		select {
		case m := <-b.dialogs:
			out = append(out, m)
		default:
			return out
		}
	}
}
