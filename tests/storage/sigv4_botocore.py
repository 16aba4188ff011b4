#!/usr/bin/python3
"""Known answers for recmodel's SigV4 signer from an independent one: botocore's S3SigV4Auth.

Generates COUNT random S3 requests (seeded, so every run gives the same cases): methods, keys
with spaces, unicode and reserved characters, query parameters (with and without values),
extra headers with runs of whitespace, session tokens, regions, path-style and virtual-hosted
hosts with and without ports, signed payloads and UNSIGNED-PAYLOAD over https. Prints one JSON
object per line: the raw inputs, the URL botocore would send and the headers it signed.
Usage: sigv4_botocore.py [COUNT] [SEED]
"""
import json
import random
import sys

try:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode
except ImportError:  # the copy inside Debian's awscli
    from awscli.botocore.auth import S3SigV4Auth
    from awscli.botocore.awsrequest import AWSRequest
    from awscli.botocore.credentials import Credentials
    from awscli.botocore.utils import percent_encode

count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)

KEY_CHARS = list("abcXYZ019-_.~ /+=&?%#@!$'()*,;:") + ["é", "ü", "日本", "😀", "\u00a0"]


def random_text(chars, low, high):
    return "".join(rng.choice(chars) for _ in range(rng.randint(low, high)))


def random_key():
    key = random_text(KEY_CHARS, 1, 30).lstrip("/")
    return key or "k"


for i in range(count):
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    scheme = rng.choice(["http", "https"])
    hostname = rng.choice(["127.0.0.1", "localhost", "s3.eu-west-1.amazonaws.com", "rgw.internal.example"])
    port = rng.choice(["", ":7480", ":443" if scheme == "https" else ":80", ":9000"])
    host = hostname + ("" if port in (":80", ":443") else port)
    bucket = rng.choice(["models", "team-artifacts", "a.b.c"])
    path_style = rng.random() < 0.5
    key = random_key() if rng.random() < 0.85 else ""
    encoded_key = percent_encode(key, safe="/~")
    if path_style:
        url_host = host
        path = "/" + bucket + ("/" + encoded_key if key else "")
    else:
        url_host = bucket + "." + host
        path = "/" + encoded_key
    query = []
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["uploadId", "partNumber", "list-type", "prefix", "continuation-token", "uploads",
                           "max-keys", "delimiter", "x-id", "part-number-marker"])
        value = "" if name == "uploads" else random_text(KEY_CHARS, 0, 12)
        query.append([name, value])
    headers = []
    if rng.random() < 0.4:
        headers.append(["Range", "bytes=%d-%d" % (rng.randint(0, 100), rng.randint(101, 10 ** 9))])
    if rng.random() < 0.3:
        headers.append(["Content-Type", rng.choice(["application/octet-stream", "text/plain;  charset=utf-8"])])
    if rng.random() < 0.3:
        headers.append(["x-amz-meta-Note", rng.choice(["  leading", "trailing  ", "a   b\tc", "x"])])
    if rng.random() < 0.2:
        headers.append(["Content-MD5", "1B2M2Y8AsgTpgAEllo/jlg=="])
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))) if method in ("PUT", "POST") else b""
    unsigned = scheme == "https" and rng.random() < 0.5
    token = rng.choice(["", "", "IQoJb3JpZ2luX2VjEH8aCXVzLWVhc3QtMSJIMEYCIQD+token/with=chars"])
    region = rng.choice(["us-east-1", "eu-central-1", "ap-southeast-2", "default"])
    access_key = rng.choice(["AKIAIOSFODNN7EXAMPLE", "RECMODELTESTKEY"])
    secret = rng.choice(["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "recmodel-test-secret-key", "s3cr3t+/="])
    timestamp = "2026%02d%02dT%02d%02d%02dZ" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                                                rng.randint(0, 59), rng.randint(0, 59))

    url = scheme + "://" + url_host + path
    request = AWSRequest(method=method, url=url, data=body, params=[(k, v) for k, v in query])
    for name, value in headers:
        request.headers[name] = value
    request.headers["Host"] = url_host
    request.context["timestamp"] = timestamp
    if unsigned:  # as botocore does with Config(s3={"payload_signing_enabled": False}) over https
        request.context["client_config"] = type("Config", (), {"s3": {"payload_signing_enabled": False}})()
    signer = S3SigV4Auth(Credentials(access_key, secret, token or None), "s3", region)
    # add_auth() minus its clock: the same steps with a fixed timestamp.
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    prepared = request.prepare()
    print(json.dumps({
        "method": method, "scheme": scheme, "host": url_host, "bucket": bucket, "path_style": path_style,
        "key": key, "encoded_path": path, "query": query, "headers": headers, "body_hex": body.hex(),
        "unsigned": unsigned, "token": token, "region": region, "access_key": access_key, "secret": secret,
        "timestamp": timestamp, "url": prepared.url, "canonical_request": canonical,
        "authorization": request.headers["Authorization"],
        "content_sha256": request.headers["X-Amz-Content-SHA256"],
    }, ensure_ascii=False))
