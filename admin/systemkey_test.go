package admin

import (
	"context"
	"errors"
	"testing"

	"github.com/sealfs/sealfs/kms"
)

// The system key, which wraps the record-authentication key, cannot be
// disabled through the admin API: the store would not open again.
func TestAdminRefusesDisablingSystemKey(t *testing.T) {
	d, srv, _ := adminTestDaemon(t)
	ctx := context.Background()
	a := adminTestClient(srv, d.creds.AccessKey, d.creds.SecretKey)
	sys, err := d.store.SystemKeyID(ctx)
	if err != nil || sys == "" {
		t.Fatalf("SystemKeyID = %q, %v", sys, err)
	}
	for _, name := range []string{sys} {
		err := a.call(ctx, "POST", "kms/keys/"+name+"/disable", nil, nil)
		var ce *adminCallError
		if !errors.As(err, &ce) || ce.Code != "SystemKey" {
			t.Fatalf("disable %s: %v, want SystemKey", name, err)
		}
	}
	md, err := d.kms.DescribeKey(ctx, &kms.KeyRequest{KeyID: sys})
	if err != nil || md.State != kms.KeyEnabled {
		t.Fatalf("system key after refused disable: %+v, %v", md, err)
	}
}
