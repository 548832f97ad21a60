package iam

import (
	"errors"
	"fmt"
)

// ErrAccessDenied is wrapped by every AccessDeniedError.
var ErrAccessDenied = errors.New("access denied")

// AccessDeniedError is a request a policy does not allow. Its message is
// the one AWS gives, naming the principal, the action and the resource.
type AccessDeniedError struct {
	Principal string // the user's ARN
	Action    string
	Resource  string
	Decision  Decision // ImplicitDeny or ExplicitDeny
}

func (e *AccessDeniedError) Error() string {
	why := fmt.Sprintf("because no identity-based policy allows the %s action", e.Action)
	if e.Decision == ExplicitDeny {
		why = "with an explicit deny in an identity-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", e.Principal, e.Action, e.Resource, why)
}

// Unwrap makes errors.Is(err, ErrAccessDenied) hold.
func (e *AccessDeniedError) Unwrap() error { return ErrAccessDenied }

// UserARN is the ARN of a user in account.
func UserARN(account, user string) string { return "arn:aws:iam::" + account + ":user/" + user }

// Check evaluates r against p for the principal and returns nil when p
// allows it, an *AccessDeniedError otherwise.
func (p *Policy) Check(principal string, r *Request) error {
	d := p.Evaluate(r)
	if d == Allowed {
		return nil
	}
	return &AccessDeniedError{Principal: principal, Action: r.Action, Resource: r.Resource, Decision: d}
}
