package replicate

import (
	"testing"

	"github.com/sealfs/sealfs/cryptostore"
	"github.com/sealfs/sealfs/meta"
)

// TestReplicaKeepsMissingContentType: an object stored without a
// Content-Type (everything written through the mount) answers S3's
// default, binary/octet-stream; its replica must do the same, not gain the
// SDK's application/octet-stream.
func TestReplicaKeepsMissingContentType(t *testing.T) {
	p := newPair(t, false, false, nil, nil)
	p.src.put(t, "src", "from-the-mount", []byte("no content type"), meta.ObjectMeta{})
	p.src.put(t, "src", "big", randBytes(3<<20), meta.ObjectMeta{}) // streamed, with a trailer
	p.src.put(t, "src", "typed", []byte("typed"), meta.ObjectMeta{ContentType: "image/jpeg"})
	for key, want := range map[string]string{"from-the-mount": "", "big": "", "typed": "image/jpeg"} {
		p.waitStatus(t, key, cryptostore.ReplicationCompleted)
		_, rep := p.dst.read(t, "dst", key)
		if rep.Meta.ContentType != want {
			t.Errorf("%s: replica's Content-Type %q, source's %q", key, rep.Meta.ContentType, want)
		}
	}
}
