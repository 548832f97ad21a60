"""boto3 side of TestS3Conformance (s3_conformance_test.go).

argv: endpoint, CA file, bucket (plain, created by the caller), check name.
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints one
JSON object: {"ok": true} or {"ok": false, "detail": "..."}. Each check is
what boto3 users (and the conformance suites written with it) do.
"""

import base64
import email.header
import hashlib
import json
import sys

import boto3
import botocore
from botocore.config import Config

endpoint, ca, bucket, check = sys.argv[1:5]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    verify=ca,
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 1}),
)


class Fail(Exception):
    pass


def want(cond, detail):
    if not cond:
        raise Fail(detail)


def error_of(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"], e.response["Error"].get("Message", "")
    raise Fail("%s(%s) succeeded, want an error" % (fn.__name__, kw.get("Key", "")))


def metadata_non_ascii():
    # The conformance suites' way to send a non-ASCII value: botocore
    # refuses one in Metadata, so the header is set directly (sent as UTF-8).
    def set_header(params, **kwargs):
        params["headers"]["x-amz-meta-meta1"] = "Hello World\xe9"

    s3.meta.events.register("before-call.s3.PutObject", set_header)
    try:
        s3.put_object(Bucket=bucket, Key="meta-utf8", Body=b"x")
    finally:
        s3.meta.events.unregister("before-call.s3.PutObject", set_header)
    got = s3.head_object(Bucket=bucket, Key="meta-utf8")["Metadata"]["meta1"]
    # AWS returns a non-ASCII value RFC 2047 encoded; decoded, it is what
    # was sent.
    want(got.startswith("=?UTF-8?"), "HEAD returned %r, want an RFC 2047 encoded word" % got)
    text = "".join(
        part.decode(cs or "ascii") if isinstance(part, bytes) else part
        for part, cs in email.header.decode_header(got)
    )
    want(text == "Hello World\xe9", "decoded %r from %r, want %r" % (text, got, "Hello World\xe9"))
    # A value sent RFC 2047 encoded (ASCII, so Metadata takes it) comes
    # back as it was sent.
    enc = "=?UTF-8?B?" + base64.b64encode("Grüße".encode()).decode() + "?="
    s3.put_object(Bucket=bucket, Key="meta-2047", Body=b"x", Metadata={"meta1": enc})
    got = s3.get_object(Bucket=bucket, Key="meta-2047")["Metadata"]["meta1"]
    want(got == enc, "GET returned %r, want %r" % (got, enc))
    # ASCII stays as it is.
    s3.put_object(Bucket=bucket, Key="meta-ascii", Body=b"x", Metadata={"meta1": "plain value"})
    got = s3.head_object(Bucket=bucket, Key="meta-ascii")["Metadata"]["meta1"]
    want(got == "plain value", "ASCII value came back as %r" % got)


def checksum_bad_digest():
    body = b"checksummed body"
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    st, code, msg = error_of(s3.put_object, Bucket=bucket, Key="ck", Body=body, ChecksumSHA256=wrong)
    want((st, code) == (400, "BadDigest"), "PutObject with a wrong SHA256: %s %s" % (st, code))
    want(msg == "The SHA256 you specified did not match the calculated checksum.", "message %r" % msg)
    up = s3.create_multipart_upload(Bucket=bucket, Key="ck-mp")["UploadId"]
    try:
        st, code, _ = error_of(s3.upload_part, Bucket=bucket, Key="ck-mp", UploadId=up, PartNumber=1, Body=body, ChecksumSHA256=wrong)
        want((st, code) == (400, "BadDigest"), "UploadPart with a wrong SHA256: %s %s" % (st, code))
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="ck-mp", UploadId=up)
    # A value that is not a SHA-256 at all is malformed, not a mismatch:
    # AWS answers InvalidRequest there.
    st, code, _ = error_of(s3.put_object, Bucket=bucket, Key="ck", Body=body, ChecksumSHA256="bad")
    want((st, code) == (400, "InvalidRequest"), "PutObject with a malformed SHA256: %s %s" % (st, code))


def complete_twice():
    key = "mp-twice"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"p" * 1000)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload=parts)
    want(again["ETag"] == first["ETag"] and again["Key"] == key, "repeat answered %r, first %r" % (again, first))
    # Other parts than the completion had: still NoSuchUpload.
    st, code, _ = error_of(s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up,
                           MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": part["ETag"]}]})
    want((st, code) == (404, "NoSuchUpload"), "a different part list: %s %s" % (st, code))
    # Once the object is replaced, the completion's result is gone.
    s3.put_object(Bucket=bucket, Key=key, Body=b"new")
    st, code, _ = error_of(s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up, MultipartUpload=parts)
    want((st, code) == (404, "NoSuchUpload"), "after the object was replaced: %s %s" % (st, code))


def complete_duplicate_part():
    key = "mp-dup"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=b"p" * 1000)
        # An SDK's retried UploadPart replaces the part; a Complete naming
        # one number twice is a broken list, which AWS refuses.
        dup = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}, {"PartNumber": 1, "ETag": part["ETag"]}]}
        st, code, _ = error_of(s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=up, MultipartUpload=dup)
        want((st, code) == (400, "InvalidPartOrder"), "duplicate part number: %s %s" % (st, code))
        # The upload is untouched and completes with a good list.
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    except Exception:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=up)
        raise


def list_v1_prefix():
    key = "nl\nkey"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # boto3 asks for encoding-type=url and decodes what AWS encodes.
    r = s3.list_objects(Bucket=bucket, Prefix="nl\n")
    want(r.get("Prefix") == "nl\n", "Prefix came back as %r" % r.get("Prefix"))
    keys = [o["Key"] for o in r.get("Contents", [])]
    want(keys == [key], "keys %r" % keys)
    r = s3.list_objects_v2(Bucket=bucket, Prefix="nl\n")
    want(r.get("Prefix") == "nl\n" and [o["Key"] for o in r.get("Contents", [])] == [key], "V2: %r" % r)


def content_encoding():
    s3.put_object(Bucket=bucket, Key="ce", Body=b"x", ContentEncoding="deflate, gzip")
    for r in (s3.head_object(Bucket=bucket, Key="ce"), s3.get_object(Bucket=bucket, Key="ce")):
        want(r.get("ContentEncoding") == "deflate, gzip", "Content-Encoding %r" % r.get("ContentEncoding"))


def part_copy_range():
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"s" * 100)
    up = s3.create_multipart_upload(Bucket=bucket, Key="copy-dst")["UploadId"]
    try:
        st, code, _ = error_of(s3.upload_part_copy, Bucket=bucket, Key="copy-dst", UploadId=up, PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "copy-src"}, CopySourceRange="bytes=0-100")
        want((st, code) == (416, "InvalidRange"), "range past the source: %s %s" % (st, code))
        r = s3.upload_part_copy(Bucket=bucket, Key="copy-dst", UploadId=up, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "copy-src"}, CopySourceRange="bytes=0-99")
        want("ETag" in r["CopyPartResult"], "in-range copy: %r" % r)
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="copy-dst", UploadId=up)


def sse_invalid():
    st, code, _ = error_of(s3.put_object, Bucket=bucket, Key="sse-bad", Body=b"x", ServerSideEncryption="aes:kms")
    want((st, code) == (400, "InvalidArgument"), "PutObject with SSE aes:kms: %s %s" % (st, code))
    st, code, _ = error_of(s3.create_multipart_upload, Bucket=bucket, Key="sse-bad", ServerSideEncryption="aes:kms")
    want((st, code) == (400, "InvalidArgument"), "CreateMultipartUpload with SSE aes:kms: %s %s" % (st, code))
    s3.put_object(Bucket=bucket, Key="sse-read", Body=b"x")
    headers = {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "testkey-1"}

    def add(params, **kwargs):
        params["headers"].update(headers)

    for op, fn in (("GetObject", s3.get_object), ("HeadObject", s3.head_object)):
        s3.meta.events.register("before-call.s3." + op, add)
        try:
            st, code, _ = error_of(fn, Bucket=bucket, Key="sse-read")
        finally:
            s3.meta.events.unregister("before-call.s3." + op, add)
        want(st == 400, "%s with SSE-KMS headers: %s %s" % (op, st, code))
        if op == "GetObject":
            want(code == "InvalidArgument", "GetObject with SSE-KMS headers: %s" % code)


def sse_ignored():
    for key in ("sse-kms-1", "sse-kms-2"):
        r = s3.put_object(Bucket=bucket, Key=key, Body=b"x", ServerSideEncryption="aws:kms")
        want("ServerSideEncryption" not in r, "PutObject answered %r" % r.get("ServerSideEncryption"))
        h = s3.head_object(Bucket=bucket, Key=key)
        want("ServerSideEncryption" not in h, "HeadObject answered %r" % h.get("ServerSideEncryption"))


checks = {
    "metadata_non_ascii": metadata_non_ascii,
    "checksum_bad_digest": checksum_bad_digest,
    "complete_twice": complete_twice,
    "complete_duplicate_part": complete_duplicate_part,
    "list_v1_prefix": list_v1_prefix,
    "content_encoding": content_encoding,
    "part_copy_range": part_copy_range,
    "sse_invalid": sse_invalid,
    "sse_ignored": sse_ignored,
}

try:
    checks[check]()
    print(json.dumps({"ok": True}))
except Fail as e:
    print(json.dumps({"ok": False, "detail": str(e)}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({"ok": False, "detail": "unexpected error: %s" % e}))
