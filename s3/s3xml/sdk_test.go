package s3xml_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sealfs/sealfs/s3/s3err"
	"github.com/sealfs/sealfs/s3/s3xml"
	"github.com/sealfs/sealfs/s3/sigv4"
)

// These tests put the XML documents between real clients and a handler:
// the handler decodes what aws-sdk-go-v2 (and minio-go) send with
// s3xml.Decode and answers with s3xml types, which the clients must parse.

const (
	ak     = "SEALFSXMLTESTKEY0001"
	sk     = "sealfs-xml-test-secret"
	region = "us-east-1"
)

var modTime = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// fixture is the handler's state: request documents it decoded, and the
// keys its listings return.
type fixture struct {
	mu       sync.Mutex
	got      map[string]any // by operation
	keys     []string
	sse      *s3xml.ServerSideEncryptionConfiguration
	repl     *s3xml.ReplicationConfiguration
	versions *s3xml.VersioningConfiguration
}

func (f *fixture) record(op string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[op] = v
}

func (f *fixture) recorded(t *testing.T, op string) any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.got[op]
	if !ok {
		t.Fatalf("handler recorded no %s", op)
	}
	return v
}

func writeDoc(w http.ResponseWriter, v any) {
	out, err := s3xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Write(out)
}

func (f *fixture) handler(t *testing.T) http.Handler {
	v := &sigv4.Verifier{Lookup: func(k string) (string, bool) { return sk, k == ak }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, err := v.Verify(r)
		if err != nil {
			s3err.WriteXML(w, r, err, "x")
			return
		}
		p, err := auth.Body(r)
		if err != nil {
			s3err.WriteXML(w, r, err, "x")
			return
		}
		body, err := io.ReadAll(p)
		if err != nil {
			s3err.WriteXML(w, r, err, "x")
			return
		}
		q := r.URL.Query()
		path := strings.TrimPrefix(r.URL.Path, "/")
		bucket, key, _ := strings.Cut(path, "/")
		decode := func(op string, doc any) bool {
			if err := s3xml.Decode(bytes.NewReader(body), 0, doc); err != nil {
				s3err.WriteXML(w, r, err, "x")
				return false
			}
			f.record(op, doc)
			return true
		}
		owner := &s3xml.Owner{ID: "sealfs-owner", DisplayName: "sealfs"}
		switch {
		case r.Method == http.MethodGet && path == "":
			writeDoc(w, s3xml.ListAllMyBucketsResult{Owner: *owner, Buckets: []s3xml.Bucket{
				{Name: "alpha", CreationDate: s3xml.NewTime(modTime)}, {Name: "beta", CreationDate: s3xml.NewTime(modTime.Add(time.Hour))},
			}})
		case r.Method == http.MethodPut && key == "" && len(q) == 0:
			if len(body) > 0 && !decode("CreateBucket", &s3xml.CreateBucketConfiguration{}) {
				return
			}
		case r.Method == http.MethodGet && q.Has("location"):
			writeDoc(w, s3xml.LocationConstraint{Region: "eu-west-3"})
		case r.Method == http.MethodGet && q.Has("versions"):
			writeDoc(w, s3xml.ListVersionsResult{Name: bucket, MaxKeys: 1000, Versions: []s3xml.ObjectVersion{
				{Key: "a", VersionID: "v3", IsLatest: true, DeleteMarker: true, LastModified: s3xml.NewTime(modTime), Owner: owner},
				{Key: "a", VersionID: "v2", ETag: `"e2"`, Size: 0, StorageClass: "STANDARD", LastModified: s3xml.NewTime(modTime)},
				{Key: "b", VersionID: "v1", IsLatest: true, ETag: `"e1"`, Size: 42, StorageClass: "STANDARD", LastModified: s3xml.NewTime(modTime)},
			}})
		case r.Method == http.MethodGet && q.Has("uploads"):
			writeDoc(w, s3xml.ListMultipartUploadsResult{Bucket: bucket, MaxUploads: 1000, Uploads: []s3xml.Upload{
				{Key: "big", UploadID: "u1", StorageClass: "STANDARD", Initiated: s3xml.NewTime(modTime), Owner: owner, Initiator: &s3xml.Initiator{ID: "sealfs-owner"}},
			}})
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			res := s3xml.ListBucketResultV2{Name: bucket, Prefix: q.Get("prefix"), MaxKeys: 1000}
			for _, k := range f.keys {
				res.Contents = append(res.Contents, s3xml.Object{Key: k, LastModified: s3xml.NewTime(modTime), ETag: `"abc"`, Size: int64(len(k)), StorageClass: "STANDARD"})
			}
			res.KeyCount = len(res.Contents)
			if q.Get("encoding-type") == "url" {
				res.EncodeURL()
			}
			writeDoc(w, res)
		case r.Method == http.MethodGet && key == "" && len(q) <= 3 && !q.Has("encryption") && !q.Has("replication") && !q.Has("versioning"):
			res := s3xml.ListBucketResult{Name: bucket, MaxKeys: 1000, IsTruncated: true, NextMarker: f.keys[len(f.keys)-1]}
			for _, k := range f.keys {
				res.Contents = append(res.Contents, s3xml.Object{Key: k, LastModified: s3xml.NewTime(modTime), ETag: `"abc"`, Size: 1, StorageClass: "STANDARD", Owner: owner})
			}
			res.CommonPrefixes = []s3xml.CommonPrefix{{Prefix: "dir/"}}
			if q.Get("encoding-type") == "url" {
				res.EncodeURL()
			}
			writeDoc(w, res)
		case r.Method == http.MethodPost && q.Has("delete"):
			var d s3xml.Delete
			if !decode("DeleteObjects", &d) {
				return
			}
			var res s3xml.DeleteResult
			for _, o := range d.Objects {
				if o.Key == "locked" {
					res.Errors = append(res.Errors, s3xml.DeleteError{Key: o.Key, Code: "AccessDenied", Message: "Access Denied"})
					continue
				}
				res.Deleted = append(res.Deleted, s3xml.DeletedObject{Key: o.Key, VersionID: o.VersionID})
			}
			writeDoc(w, res)
		case r.Method == http.MethodPost && q.Has("uploads"):
			writeDoc(w, s3xml.InitiateMultipartUploadResult{Bucket: bucket, Key: key, UploadID: "upload-1"})
		case r.Method == http.MethodPost && q.Has("uploadId"):
			var c s3xml.CompleteMultipartUpload
			if !decode("CompleteMultipartUpload", &c) {
				return
			}
			writeDoc(w, s3xml.CompleteMultipartUploadResult{Location: "https://x/" + path, Bucket: bucket, Key: key, ETag: `"abc-2"`})
		case r.Method == http.MethodGet && q.Has("uploadId"):
			writeDoc(w, s3xml.ListPartsResult{Bucket: bucket, Key: key, UploadID: q.Get("uploadId"), MaxParts: 1000, StorageClass: "STANDARD",
				Parts: []s3xml.Part{{PartNumber: 1, ETag: `"p1"`, Size: 5 << 20, LastModified: s3xml.NewTime(modTime), Checksums: s3xml.Checksums{ChecksumCRC32: "AAAAAA=="}}}})
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
			writeDoc(w, s3xml.CopyObjectResult{ETag: `"copied"`, LastModified: s3xml.NewTime(modTime)})
		case r.Method == http.MethodPut && q.Has("encryption"):
			var c s3xml.ServerSideEncryptionConfiguration
			if decode("PutBucketEncryption", &c) {
				f.sse = &c
			}
		case r.Method == http.MethodGet && q.Has("encryption"):
			writeDoc(w, f.sse)
		case r.Method == http.MethodPut && q.Has("replication"):
			var c s3xml.ReplicationConfiguration
			if decode("PutBucketReplication", &c) {
				f.repl = &c
			}
		case r.Method == http.MethodGet && q.Has("replication"):
			writeDoc(w, f.repl)
		case r.Method == http.MethodPut && q.Has("versioning"):
			var c s3xml.VersioningConfiguration
			if decode("PutBucketVersioning", &c) {
				f.versions = &c
			}
		case r.Method == http.MethodGet && q.Has("versioning"):
			writeDoc(w, f.versions)
		default:
			t.Errorf("unhandled %s %s", r.Method, r.URL)
			s3err.WriteXML(w, r, s3err.ErrNotImplemented, "x")
		}
	})
}

func newFixture(t *testing.T) (*fixture, *httptest.Server, *s3.Client) {
	t.Helper()
	f := &fixture{got: make(map[string]any), keys: []string{"a b/c+d", "ünï/€.txt", "100%", "x&y<z>", "tilde~star*", "plain"}}
	srv := httptest.NewTLSServer(f.handler(t))
	t.Cleanup(srv.Close)
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_REGION", region)
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		config.WithHTTPClient(srv.Client()),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	return f, srv, c
}

func TestSDKBucketDocuments(t *testing.T) {
	f, _, c := newFixture(t)
	ctx := context.Background()

	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(lb.Buckets) != 2 || aws.ToString(lb.Buckets[1].Name) != "beta" || !aws.ToTime(lb.Buckets[0].CreationDate).Equal(modTime) ||
		aws.ToString(lb.Owner.ID) != "sealfs-owner" {
		t.Fatalf("ListBuckets parsed %+v", lb)
	}

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("newb"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest3}}); err != nil {
		t.Fatal(err)
	}
	if got := f.recorded(t, "CreateBucket").(*s3xml.CreateBucketConfiguration); got.LocationConstraint != "eu-west-3" {
		t.Fatalf("CreateBucketConfiguration %+v", got)
	}

	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("newb")})
	if err != nil || loc.LocationConstraint != types.BucketLocationConstraintEuWest3 {
		t.Fatalf("GetBucketLocation %v %v", loc, err)
	}

	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("b"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusSuspended}}); err != nil {
		t.Fatal(err)
	}
	gv, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("b")})
	if err != nil || gv.Status != types.BucketVersioningStatusSuspended {
		t.Fatalf("versioning round trip: %v %v", gv, err)
	}

	if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("b"),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("sealfs-key")},
			BucketKeyEnabled:                   aws.Bool(true),
		}}}}); err != nil {
		t.Fatal(err)
	}
	sse := f.recorded(t, "PutBucketEncryption").(*s3xml.ServerSideEncryptionConfiguration)
	if len(sse.Rules) != 1 || sse.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != s3xml.SSEAlgorithmKMS ||
		sse.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID != "sealfs-key" || !*sse.Rules[0].BucketKeyEnabled {
		t.Fatalf("decoded SSE %+v", sse)
	}
	ge, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String("b")})
	if err != nil {
		t.Fatal(err)
	}
	rule := ge.ServerSideEncryptionConfiguration.Rules[0]
	if rule.ApplyServerSideEncryptionByDefault.SSEAlgorithm != types.ServerSideEncryptionAwsKms || aws.ToString(rule.ApplyServerSideEncryptionByDefault.KMSMasterKeyID) != "sealfs-key" {
		t.Fatalf("GetBucketEncryption parsed %+v", rule)
	}

	prefix := "logs/"
	if _, err := c.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String("b"),
		ReplicationConfiguration: &types.ReplicationConfiguration{Role: aws.String("arn:sealfs:iam::role/r"), Rules: []types.ReplicationRule{
			{ID: aws.String("new"), Priority: aws.Int32(2), Status: types.ReplicationRuleStatusEnabled,
				Filter:                  &types.ReplicationRuleFilter{Prefix: aws.String(prefix)},
				DeleteMarkerReplication: &types.DeleteMarkerReplication{Status: types.DeleteMarkerReplicationStatusDisabled},
				Destination:             &types.Destination{Bucket: aws.String("arn:aws:s3:::target")}},
			{ID: aws.String("legacy"), Status: types.ReplicationRuleStatusDisabled, Prefix: aws.String("old/"),
				Destination: &types.Destination{Bucket: aws.String("arn:aws:s3:::target2")}},
		}}}); err != nil {
		t.Fatal(err)
	}
	repl := f.recorded(t, "PutBucketReplication").(*s3xml.ReplicationConfiguration)
	if len(repl.Rules) != 2 || repl.Role != "arn:sealfs:iam::role/r" {
		t.Fatalf("decoded replication %+v", repl)
	}
	r0, r1 := repl.Rules[0], repl.Rules[1]
	if r0.ID != "new" || *r0.Priority != 2 || r0.EffectivePrefix() != prefix || r0.DeleteMarkerReplication.Status != "Disabled" ||
		r0.Destination.Bucket != "arn:aws:s3:::target" || r0.Prefix != nil {
		t.Fatalf("rule 0 %+v", r0)
	}
	if r1.Filter != nil || r1.EffectivePrefix() != "old/" || r1.Status != "Disabled" {
		t.Fatalf("rule 1 %+v", r1)
	}
	gr, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String("b")})
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the legacy rule Prefix is part of what is being checked
	if rr := gr.ReplicationConfiguration.Rules; len(rr) != 2 || aws.ToString(rr[0].Filter.Prefix) != prefix || aws.ToString(rr[1].Prefix) != "old/" ||
		aws.ToInt32(rr[0].Priority) != 2 || aws.ToString(rr[1].Destination.Bucket) != "arn:aws:s3:::target2" {
		t.Fatalf("GetBucketReplication parsed %+v", gr.ReplicationConfiguration)
	}
}

func TestSDKListings(t *testing.T) {
	f, _, c := newFixture(t)
	ctx := context.Background()
	want := append([]string(nil), f.keys...)
	sort.Strings(want)

	for _, enc := range []types.EncodingType{"", types.EncodingTypeUrl} {
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b"), EncodingType: enc})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if enc == types.EncodingTypeUrl {
				if k, err = url.QueryUnescape(k); err != nil {
					t.Fatal(err)
				}
			}
			got = append(got, k)
			if !aws.ToTime(o.LastModified).Equal(modTime) || aws.ToString(o.ETag) != `"abc"` {
				t.Fatalf("object %+v", o)
			}
		}
		sort.Strings(got)
		if strings.Join(got, "|") != strings.Join(want, "|") || aws.ToInt32(out.KeyCount) != int32(len(want)) {
			t.Fatalf("encoding %q: keys %q, want %q", enc, got, want)
		}
	}

	v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("b"), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	if len(v1.Contents) != len(want) || !aws.ToBool(v1.IsTruncated) || len(v1.CommonPrefixes) != 1 || aws.ToString(v1.Contents[0].Owner.ID) != "sealfs-owner" {
		t.Fatalf("ListObjects parsed %+v", v1)
	}

	lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("b")})
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.DeleteMarkers) != 1 || len(lv.Versions) != 2 || aws.ToString(lv.DeleteMarkers[0].VersionId) != "v3" ||
		!aws.ToBool(lv.DeleteMarkers[0].IsLatest) || aws.ToInt64(lv.Versions[0].Size) != 0 || aws.ToInt64(lv.Versions[1].Size) != 42 {
		t.Fatalf("ListObjectVersions parsed %+v", lv)
	}

	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("b")})
	if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != "u1" || !aws.ToTime(lu.Uploads[0].Initiated).Equal(modTime) {
		t.Fatalf("ListMultipartUploads %+v %v", lu, err)
	}
}

func TestSDKObjectDocuments(t *testing.T) {
	f, _, c := newFixture(t)
	ctx := context.Background()

	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("b"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("a&b <c>")}, {Key: aws.String("locked")}, {Key: aws.String("v"), VersionId: aws.String("7")}},
		Quiet:   aws.Bool(false),
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := f.recorded(t, "DeleteObjects").(*s3xml.Delete)
	if len(d.Objects) != 3 || d.Objects[0].Key != "a&b <c>" || d.Objects[2].VersionID != "7" {
		t.Fatalf("decoded Delete %+v", d)
	}
	if len(del.Deleted) != 2 || len(del.Errors) != 1 || aws.ToString(del.Errors[0].Code) != "AccessDenied" || aws.ToString(del.Deleted[1].VersionId) != "7" {
		t.Fatalf("DeleteObjects parsed %+v", del)
	}

	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("big")})
	if err != nil || aws.ToString(cr.UploadId) != "upload-1" {
		t.Fatalf("CreateMultipartUpload %v %v", cr, err)
	}
	cm, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("b"), Key: aws.String("big"), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: aws.String(`"p1"`), ChecksumCRC32: aws.String("AAAAAA==")},
			{PartNumber: aws.Int32(2), ETag: aws.String(`"p2"`)},
		}}})
	if err != nil || aws.ToString(cm.ETag) != `"abc-2"` {
		t.Fatalf("CompleteMultipartUpload %v %v", cm, err)
	}
	comp := f.recorded(t, "CompleteMultipartUpload").(*s3xml.CompleteMultipartUpload)
	if len(comp.Parts) != 2 || comp.Parts[0].ETag != `"p1"` || comp.Parts[0].ChecksumCRC32 != "AAAAAA==" || comp.Parts[1].PartNumber != 2 {
		t.Fatalf("decoded CompleteMultipartUpload %+v", comp)
	}

	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("b"), Key: aws.String("big"), UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt64(lp.Parts[0].Size) != 5<<20 || aws.ToString(lp.Parts[0].ChecksumCRC32) != "AAAAAA==" {
		t.Fatalf("ListParts %+v %v", lp, err)
	}

	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("b"), Key: aws.String("dst"), CopySource: aws.String("b/src")})
	if err != nil || aws.ToString(cp.CopyObjectResult.ETag) != `"copied"` || !aws.ToTime(cp.CopyObjectResult.LastModified).Equal(modTime) {
		t.Fatalf("CopyObject %+v %v", cp, err)
	}
}

func TestMinioListObjectsURLEncoded(t *testing.T) {
	f, srv, _ := newFixture(t)
	u, _ := url.Parse(srv.URL)
	mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(ak, sk, ""), Secure: true,
		Transport: srv.Client().Transport, Region: region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for o := range mc.ListObjects(context.Background(), "bucket", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		got = append(got, o.Key)
	}
	want := append([]string(nil), f.keys...)
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("minio-go listed %q, want %q", got, want)
	}
}
