package meta

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// entries renders a page as S3 orders it: objects and common prefixes
// interleaved in byte order, prefixes marked with a trailing " (prefix)".
func entries(p *ListPage) []string {
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Key)
	}
	for _, cp := range p.CommonPrefixes {
		out = append(out, cp+" (prefix)")
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.TrimSuffix(out[i], " (prefix)") < strings.TrimSuffix(out[j], " (prefix)")
	})
	return out
}

// list lists a page, and checks that ListRecords reads the same page and
// that its summaries are the objects' fields.
func list(t *testing.T, db *DB, bucket string, opts ListOptions) *ListPage {
	t.Helper()
	var page *ListPage
	var recs *RecordPage
	view(t, db, func(tx *Txn) (err error) {
		if page, err = tx.List(bucket, opts); err != nil {
			return err
		}
		recs, err = tx.ListRecords(bucket, opts)
		return err
	})
	defer recs.Release()
	if recs.Len() != len(page.Objects) || !slices.Equal(recs.CommonPrefixes, page.CommonPrefixes) ||
		recs.IsTruncated != page.IsTruncated || recs.NextAfter != page.NextAfter {
		t.Fatalf("ListRecords: %d objects, prefixes %q, truncated %v, next %q; List: %d, %q, %v, %q", recs.Len(), recs.CommonPrefixes,
			recs.IsTruncated, recs.NextAfter, len(page.Objects), page.CommonPrefixes, page.IsTruncated, page.NextAfter)
	}
	var s ObjectSummary
	for i, o := range page.Objects {
		if err := recs.Summary(i, &s); err != nil {
			t.Fatal(err)
		}
		want := ObjectSummary{Key: o.Key, ETag: o.ETag, Size: o.Size, LastModified: o.LastModified, Checksums: o.Checksums}
		if s.Key != want.Key || s.ETag != want.ETag || s.Size != want.Size || !s.LastModified.Equal(want.LastModified) || !slices.Equal(s.Checksums, want.Checksums) {
			t.Fatalf("summary %d: %+v, want %+v", i, s, want)
		}
	}
	return page
}

func TestList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		createBucket(t, db, "bkt2") // a neighbour whose keys must never show
		keys := []string{
			"a.txt",
			"a/1", "a/2", "a/b/3",
			"a0",
			"b",
			"photos/2024/jan.jpg", "photos/2024/feb.jpg", "photos/2025/mar.jpg", "photos/index.html",
			"photos.txt",
			"z",
		}
		putObjects(t, db, "bkt", keys)
		putObjects(t, db, "bkt2", []string{"a.txt", "photos/x", "zz"})

		tests := []struct {
			name      string
			opts      ListOptions
			want      []string
			truncated bool
		}{
			{
				name: "everything",
				opts: ListOptions{},
				want: []string{"a.txt", "a/1", "a/2", "a/b/3", "a0", "b", "photos.txt", "photos/2024/feb.jpg",
					"photos/2024/jan.jpg", "photos/2025/mar.jpg", "photos/index.html", "z"},
			},
			{
				name: "delimiter at the root",
				opts: ListOptions{Delimiter: "/"},
				want: []string{"a.txt", "a/ (prefix)", "a0", "b", "photos.txt", "photos/ (prefix)", "z"},
			},
			{
				name: "prefix",
				opts: ListOptions{Prefix: "photos/"},
				want: []string{"photos/2024/feb.jpg", "photos/2024/jan.jpg", "photos/2025/mar.jpg", "photos/index.html"},
			},
			{
				name: "prefix and delimiter",
				opts: ListOptions{Prefix: "photos/", Delimiter: "/"},
				want: []string{"photos/2024/ (prefix)", "photos/2025/ (prefix)", "photos/index.html"},
			},
			{
				name: "prefix that is not a directory",
				opts: ListOptions{Prefix: "photos", Delimiter: "/"},
				want: []string{"photos.txt", "photos/ (prefix)"},
			},
			{
				name: "prefix without match",
				opts: ListOptions{Prefix: "q", Delimiter: "/"},
			},
			{
				name: "multi-byte delimiter",
				opts: ListOptions{Delimiter: "20"},
				want: []string{"a.txt", "a/1", "a/2", "a/b/3", "a0", "b", "photos.txt", "photos/20 (prefix)",
					"photos/index.html", "z"},
			},
			{
				name: "after a key",
				opts: ListOptions{After: "a/2"},
				want: []string{"a/b/3", "a0", "b", "photos.txt", "photos/2024/feb.jpg", "photos/2024/jan.jpg",
					"photos/2025/mar.jpg", "photos/index.html", "z"},
			},
			{
				name: "after a key that does not exist",
				opts: ListOptions{After: "photos/2024/g", Prefix: "photos/"},
				want: []string{"photos/2024/jan.jpg", "photos/2025/mar.jpg", "photos/index.html"},
			},
			{
				name: "after a common prefix skips what is under it",
				opts: ListOptions{After: "a/", Delimiter: "/"},
				want: []string{"a0", "b", "photos.txt", "photos/ (prefix)", "z"},
			},
			{
				name: "after a nested common prefix",
				opts: ListOptions{Prefix: "photos/", After: "photos/2024/", Delimiter: "/"},
				want: []string{"photos/2025/ (prefix)", "photos/index.html"},
			},
			{
				name: "after a common prefix, without a delimiter",
				opts: ListOptions{After: "a/"},
				want: []string{"a/1", "a/2", "a/b/3", "a0", "b", "photos.txt", "photos/2024/feb.jpg",
					"photos/2024/jan.jpg", "photos/2025/mar.jpg", "photos/index.html", "z"},
			},
			{
				name: "after before the prefix",
				opts: ListOptions{Prefix: "photos/", After: "a", Delimiter: "/"},
				want: []string{"photos/2024/ (prefix)", "photos/2025/ (prefix)", "photos/index.html"},
			},
			{
				name: "after the last key",
				opts: ListOptions{After: "z"},
			},
			{
				name:      "max keys counts objects and prefixes",
				opts:      ListOptions{Delimiter: "/", MaxKeys: 3},
				want:      []string{"a.txt", "a/ (prefix)", "a0"},
				truncated: true,
			},
			{
				name:      "max keys ending on a prefix",
				opts:      ListOptions{Delimiter: "/", MaxKeys: 2},
				want:      []string{"a.txt", "a/ (prefix)"},
				truncated: true,
			},
			{
				name: "max keys equal to the count is not truncated",
				opts: ListOptions{Delimiter: "/", MaxKeys: 7},
				want: []string{"a.txt", "a/ (prefix)", "a0", "b", "photos.txt", "photos/ (prefix)", "z"},
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				page := list(t, db, "bkt", tc.opts)
				got := entries(page)
				if !slices.Equal(got, tc.want) {
					t.Errorf("got  %q\nwant %q", got, tc.want)
				}
				if page.IsTruncated != tc.truncated {
					t.Errorf("IsTruncated = %v, want %v", page.IsTruncated, tc.truncated)
				}
				if len(got) > 0 {
					if last := strings.TrimSuffix(got[len(got)-1], " (prefix)"); page.NextAfter != last {
						t.Errorf("NextAfter = %q, want %q", page.NextAfter, last)
					}
				}
				for _, o := range page.Objects {
					if o.Bucket != "bkt" || o.Size != int64(len(o.Key)) || o.ID.IsZero() {
						t.Errorf("object record not filled in: %+v", o)
					}
				}
			})
		}
	})
}

// Walking a bucket page by page from NextAfter gives the full listing, with
// and without a delimiter, for every page size.
func TestListContinuation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		var keys []string
		for d := range 5 {
			for f := range 7 {
				keys = append(keys, fmt.Sprintf("dir%d/file%d", d, f))
			}
			keys = append(keys, fmt.Sprintf("dir%d", d), fmt.Sprintf("dir%d.txt", d))
		}
		keys = append(keys, "dir1/sub/deep", "top")
		putObjects(t, db, "bkt", keys)

		for _, delim := range []string{"", "/"} {
			full := entries(list(t, db, "bkt", ListOptions{Delimiter: delim}))
			if delim == "" && len(full) != len(keys) {
				t.Fatalf("full listing has %d keys, want %d", len(full), len(keys))
			}
			for _, size := range []int{1, 2, 3, 7, 1000} {
				var walked []string
				after := ""
				for pages := 0; ; pages++ {
					if pages > len(keys)+1 {
						t.Fatalf("delimiter %q, page size %d: listing does not end", delim, size)
					}
					page := list(t, db, "bkt", ListOptions{Delimiter: delim, After: after, MaxKeys: size})
					walked = append(walked, entries(page)...)
					if !page.IsTruncated {
						break
					}
					after = page.NextAfter
				}
				if !slices.Equal(walked, full) {
					t.Errorf("delimiter %q, page size %d:\n walked %q\n full   %q", delim, size, walked, full)
				}
			}
		}
	})
}

// Keys order by their UTF-8 bytes, which is code point order.
func TestListUTF8Order(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		keys := []string{"z", "é", "e", "日本", "Ω", "a/ü", "a/u", "𝄞", "\u00a0", "~"}
		putObjects(t, db, "bkt", keys)
		want := slices.Clone(keys)
		slices.Sort(want) // Go compares strings bytewise
		got := entries(list(t, db, "bkt", ListOptions{}))
		if !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		got = entries(list(t, db, "bkt", ListOptions{Delimiter: "本"}))
		want = []string{"a/u", "a/ü", "e", "z", "~", "\u00a0", "é", "Ω", "日本 (prefix)", "𝄞"}
		if !slices.Equal(got, want) {
			t.Fatalf("delimiter 本: got %q, want %q", got, want)
		}
	})
}

// A delimiter listing seeks past every common prefix: listing the root of
// 20 folders of 1000 files each reads about 20 records, not 20000.
func TestListSeeksPastCommonPrefixes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		createBucket(t, db, "bkt")
		var keys []string
		for d := range 20 {
			for f := range 1000 {
				keys = append(keys, fmt.Sprintf("folder%02d/file%04d", d, f))
			}
		}
		keys = append(keys, "readme")
		putObjects(t, db, "bkt", keys)

		view(t, db, func(tx *Txn) error {
			page, err := tx.List("bkt", ListOptions{Delimiter: "/"})
			if err != nil {
				return err
			}
			if len(page.CommonPrefixes) != 20 || len(page.Objects) != 1 || page.IsTruncated {
				t.Errorf("root listing: %d prefixes, %d objects, truncated %v", len(page.CommonPrefixes), len(page.Objects), page.IsTruncated)
			}
			if tx.reads > 21 {
				t.Errorf("root listing read %d records, want at most 21", tx.reads)
			}

			// One folder, page of 100: reads the page and one more.
			tx.reads = 0
			page, err = tx.List("bkt", ListOptions{Prefix: "folder07/", Delimiter: "/", MaxKeys: 100})
			if err != nil {
				return err
			}
			if len(page.Objects) != 100 || !page.IsTruncated || page.NextAfter != "folder07/file0099" {
				t.Errorf("folder page: %d objects, truncated %v, next %q", len(page.Objects), page.IsTruncated, page.NextAfter)
			}
			if tx.reads > 101 {
				t.Errorf("folder page read %d records, want at most 101", tx.reads)
			}

			// Continuing after a common prefix does not walk it either.
			tx.reads = 0
			page, err = tx.List("bkt", ListOptions{Delimiter: "/", After: "folder18/"})
			if err != nil {
				return err
			}
			if got := entries(page); !slices.Equal(got, []string{"folder19/ (prefix)", "readme"}) {
				t.Errorf("after folder18/: %q", got)
			}
			if tx.reads > 2 {
				t.Errorf("listing after folder18/ read %d records, want at most 2", tx.reads)
			}

			// Without the delimiter, everything is read: the counter counts.
			tx.reads = 0
			if _, err := tx.List("bkt", ListOptions{Prefix: "folder03/"}); err != nil {
				return err
			}
			if tx.reads != 1000 {
				t.Errorf("flat listing of a folder read %d records, want 1000", tx.reads)
			}
			return nil
		})
	})
}

func BenchmarkList(b *testing.B) {
	db := openTest(b)
	createBucket(b, db, "bkt")
	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprintf("dir%02d/file%05d", i%20, i)
	}
	putObjects(b, db, "bkt", keys)
	for b.Loop() {
		err := db.View(b.Context(), func(tx *Txn) error {
			page, err := tx.List("bkt", ListOptions{Prefix: "dir07/"})
			if err == nil && len(page.Objects) != 1000 {
				err = fmt.Errorf("page of %d", len(page.Objects))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
