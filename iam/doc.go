// Package iam is sealfs's policy language: identity policies in the IAM
// JSON shape users already write, parsed and evaluated. It is a library of
// its own, below every front door: it imports nothing of sealfs, knows no
// store, no HTTP and no FUSE, and holds no state.
//
// # What it owns
//
//   - Parse: a policy document (Version, Statement, Sid, Effect, Action,
//     NotAction, Resource, NotResource, Condition) to a Policy, refusing
//     what it cannot evaluate exactly (a Principal, an unknown condition
//     operator or key, a malformed ARN) rather than ignoring it.
//   - Evaluate: a Request (an action such as s3:GetObject or kms:Decrypt,
//     a resource ARN, and the request's context: TLS or not, the source
//     address, the s3:prefix of a listing) to a Decision, by IAM's rules:
//     an explicit Deny in any statement wins, otherwise an Allow that
//     matches allows, otherwise the request is denied (implicitly).
//   - Wildcards: * (any run of characters) and ? (one character) in
//     actions (matched without regard to case) and resources (case
//     sensitive), as IAM matches them.
//
// # Conditions
//
// The supported keys are aws:SecureTransport (Bool), aws:SourceIp
// (IpAddress, NotIpAddress) and s3:prefix (StringEquals, StringNotEquals,
// StringLike, StringNotLike, and their ...IfExists forms). As in IAM,
// several operators in a block must all hold, several keys under an
// operator must all hold, and several values for one key are
// alternatives. A condition on a key the request does not carry is false,
// except for the negated operators (StringNotEquals, StringNotLike,
// NotIpAddress) and the ...IfExists forms, for which it is true.
//
// # What it must never do
//
//   - Allow by default: a request no statement allows is denied.
//   - Accept a document it would evaluate differently from IAM: anything it
//     does not implement is an error at Parse, not a silent no-match.
package iam
