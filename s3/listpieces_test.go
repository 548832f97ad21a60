package s3_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/internal/enginetest"
	"github.com/sealfs/sealfs/s3/s3xml"
)

// piecesKeys are the keys TestListingInPieces lists: enough objects that a
// page's document is sent in several pieces, some needing escaping or URL
// encoding, some under common prefixes.
func piecesKeys() []string {
	var keys []string
	for i := range 700 {
		k := fmt.Sprintf("obj/%04d-%s", i, strings.Repeat("x", 40))
		switch i % 100 {
		case 7:
			k = fmt.Sprintf("obj/%04d-a&b<c>\"d'e f\u00e9", i)
		case 50:
			k = fmt.Sprintf("obj/%04d/under/a/prefix", i)
		}
		keys = append(keys, k)
	}
	return keys
}

// listRaw sends a signed listing request and returns the response and its
// body, with the error reading the body (a cut connection) if any.
func listRaw(e *env, query string) (*http.Response, []byte, error) {
	e.t.Helper()
	req := e.newRequest(http.MethodGet, e.https.URL, "/pieces?"+query, nil, nil)
	e.sign(req)
	resp, err := e.https.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestListingInPieces: a listing larger than a piece is sent chunked, as it
// is decoded, and its document is byte for byte what encoding/xml makes of
// the same result, with the objects the store holds; a record that fails its
// MAC is an error response when it falls in the first piece and a cut
// connection (never a shorter, well-formed listing) when it falls later.
func TestListingInPieces(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	t.Cleanup(func() { e.close() })
	e.mkBucket("pieces", true)
	keys := piecesKeys()
	var wg sync.WaitGroup
	work := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := e.client.PutObject(e.ctx(), &awss3.PutObjectInput{Bucket: aws.String("pieces"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	type query struct {
		q       string
		v1      bool
		opts    cryptostore.ListOptions
		url     bool
		chunked bool
	}
	queries := []query{
		{q: "list-type=2&fetch-owner=true&encoding-type=url&delimiter=/&prefix=obj/", opts: cryptostore.ListOptions{Prefix: "obj/", Delimiter: "/"}, url: true, chunked: true},
		{q: "list-type=2&start-after=obj/0100&max-keys=500", opts: cryptostore.ListOptions{After: "obj/0100", MaxKeys: 500}, chunked: true},
		{q: "marker=obj/0003&delimiter=/&prefix=obj/", v1: true, opts: cryptostore.ListOptions{Prefix: "obj/", After: "obj/0003", Delimiter: "/"}, chunked: true},
		{q: "list-type=2&max-keys=5&prefix=obj/00", opts: cryptostore.ListOptions{Prefix: "obj/00", MaxKeys: 5}},
	}
	for _, qq := range queries {
		resp, body, err := listRaw(e, qq.q)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d, %v: %.300s", qq.q, resp.StatusCode, err, body)
		}
		if qq.chunked && (resp.ContentLength != -1 || len(resp.TransferEncoding) != 1) {
			t.Errorf("%s: a %d-byte listing went out with Content-Length %d, not in pieces", qq.q, len(body), resp.ContentLength)
		}
		if !qq.chunked && resp.ContentLength != int64(len(body)) {
			t.Errorf("%s: a one-piece listing has Content-Length %d for %d bytes", qq.q, resp.ContentLength, len(body))
		}
		page, err := e.store.List(e.ctx(), "pieces", qq.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []s3xml.Object
		var gotPrefixes []s3xml.CommonPrefix
		var remarshaled []byte
		if qq.v1 {
			var res s3xml.ListBucketResult
			if err := xml.Unmarshal(body, &res); err != nil {
				t.Fatalf("%s: %v", qq.q, err)
			}
			if res.IsTruncated != page.IsTruncated || page.IsTruncated && res.NextMarker != page.NextAfter {
				t.Errorf("%s: truncated %v next %q, want %v %q", qq.q, res.IsTruncated, res.NextMarker, page.IsTruncated, page.NextAfter)
			}
			got, gotPrefixes = res.Contents, res.CommonPrefixes
			remarshaled, err = s3xml.Marshal(res)
		} else {
			var res s3xml.ListBucketResultV2
			if err := xml.Unmarshal(body, &res); err != nil {
				t.Fatalf("%s: %v", qq.q, err)
			}
			next := ""
			if page.IsTruncated {
				next = base64.RawURLEncoding.EncodeToString([]byte(page.NextAfter))
			}
			if res.IsTruncated != page.IsTruncated || res.NextContinuationToken != next || res.KeyCount != len(page.Objects)+len(page.CommonPrefixes) {
				t.Errorf("%s: truncated %v token %q KeyCount %d; want %v %q %d", qq.q, res.IsTruncated, res.NextContinuationToken, res.KeyCount,
					page.IsTruncated, next, len(page.Objects)+len(page.CommonPrefixes))
			}
			got, gotPrefixes = res.Contents, res.CommonPrefixes
			remarshaled, err = s3xml.Marshal(res)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(remarshaled, body) {
			t.Errorf("%s: the document differs from encoding/xml's of the same result", qq.q)
		}
		if len(got) != len(page.Objects) || len(gotPrefixes) != len(page.CommonPrefixes) {
			t.Fatalf("%s: %d objects and %d prefixes, want %d and %d", qq.q, len(got), len(gotPrefixes), len(page.Objects), len(page.CommonPrefixes))
		}
		enc := func(s string) string {
			if qq.url {
				return s3xml.URLEncode(s)
			}
			return s
		}
		for i, o := range page.Objects {
			g := got[i]
			owned := qq.v1 || strings.Contains(qq.q, "fetch-owner")
			if g.Key != enc(o.Key) || g.ETag != `"`+o.ETag+`"` || g.Size != o.Size || !g.LastModified.Equal(o.LastModified.Truncate(1e6)) ||
				g.ChecksumAlgorithm != "CRC32" || g.ChecksumType != "FULL_OBJECT" || g.StorageClass != "STANDARD" || (g.Owner != nil) != owned {
				t.Fatalf("%s: entry %d is %+v, want object %+v", qq.q, i, g, o)
			}
		}
		for i, p := range page.CommonPrefixes {
			if gotPrefixes[i].Prefix != enc(p) {
				t.Fatalf("%s: prefix %d is %q, want %q", qq.q, i, gotPrefixes[i].Prefix, enc(p))
			}
		}
	}

	// Tampered records: a bit of one object's MAC flipped on the disk.
	tamper := func(key string) (restore func()) {
		e.close()
		k := append([]byte("o\x00pieces\x00"), key...)
		var saved []byte
		enginetest.WithBadger(t, dir, func(db *badger.DB) {
			err := db.Update(func(tx *badger.Txn) error {
				item, err := tx.Get(k)
				if err != nil {
					return err
				}
				saved, err = item.ValueCopy(nil)
				if err != nil {
					return err
				}
				v := bytes.Clone(saved)
				v[len(v)-1] ^= 1
				return tx.Set(k, v)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		e = openEnv(t, dir)
		return func() {
			e.close()
			enginetest.WithBadger(t, dir, func(db *badger.DB) {
				if err := db.Update(func(tx *badger.Txn) error { return tx.Set(k, saved) }); err != nil {
					t.Fatal(err)
				}
			})
			e = openEnv(t, dir)
		}
	}
	restore := tamper(keys[2])
	resp, body, err := listRaw(e, "list-type=2")
	if err != nil || resp.StatusCode != 500 || !bytes.Contains(body, []byte("<Code>InternalError</Code>")) {
		t.Errorf("a tampered record in the first piece: %d, %v, %.300s; want a 500 error response", resp.StatusCode, err, body)
	}
	restore()
	restore = tamper(keys[650])
	resp, body, err = listRaw(e, "list-type=2")
	if err == nil || resp.StatusCode != 200 || bytes.Contains(body, []byte("</ListBucketResult>")) || bytes.Contains(body, []byte(keys[650])) {
		t.Errorf("a tampered record after the first piece: %d, read error %v, %d bytes ending %q; want the connection cut before it",
			resp.StatusCode, err, len(body), body[max(0, len(body)-100):])
	}
	if _, err := e.client.ListObjectsV2(e.ctx(), &awss3.ListObjectsV2Input{Bucket: aws.String("pieces")}); err == nil {
		t.Error("the SDK listed a bucket holding a tampered record without an error")
	}
	if !strings.Contains(e.logs.String(), "s3 listing failed mid-document") {
		t.Error("the cut listing left no log line")
	}
	restore()
	if _, body, err := listRaw(e, "list-type=2"); err != nil || !bytes.Contains(body, []byte(keys[650])) {
		t.Errorf("after the record is restored: %v", err)
	}
}
