#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy on loopback for the storage tests.

Forwards every request to UPSTREAM (host:port) on its own upstream connection and injects,
deterministically by request count:
  --fail-every N    every Nth request is answered 503 SlowDown (the body is read first)
  --drop-every N    every Nth request loses its connection: requests with a body are cut
                    before forwarding; GET responses are cut halfway through the body
  --rate BYTES      throttle each response body to BYTES per second
  --delay-ms MS     hold each request MS milliseconds before forwarding it (to kill servers midway)
  --redirect-region R  answer 301 PermanentRedirect with x-amz-bucket-region: R to requests
                    not signed for region R (region discovery)
Prints "PORT=<port>" on stdout once listening, and keeps the counts of requests and injected
faults in the file given by --stats (rewritten after each request and on SIGTERM).
"""
import argparse
import os
import signal
import socket
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("upstream")
parser.add_argument("--fail-every", type=int, default=0)
parser.add_argument("--drop-every", type=int, default=0)
parser.add_argument("--rate", type=int, default=0)
parser.add_argument("--delay-ms", type=int, default=0)
parser.add_argument("--redirect-region", default="")
parser.add_argument("--stats", default="")
args = parser.parse_args()
up_host, up_port = args.upstream.rsplit(":", 1)
up_port = int(up_port)

lock = threading.Lock()
counters = {"requests": 0, "failed": 0, "dropped": 0, "redirected": 0}


def write_stats():
    if args.stats:
        with open(args.stats + ".tmp", "w") as f:
            for k, v in counters.items():
                f.write(f"{k}={v}\n")
        os.replace(args.stats + ".tmp", args.stats)


def on_term(signum, frame):
    write_stats()
    sys.exit(0)


signal.signal(signal.SIGTERM, on_term)


def read_head(sock, buffer):
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buffer
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return None


def read_body(sock, rest, length):
    body = rest
    while len(body) < length:
        chunk = sock.recv(min(65536, length - len(body)))
        if not chunk:
            return None, b""
        body += chunk
    return body[:length], body[length:]


def read_chunked(sock, rest):
    """Returns a chunked body as it came (chunk framing included), or None if cut short."""
    data = rest
    at = 0
    while True:
        while b"\r\n" not in data[at:]:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        line_end = data.index(b"\r\n", at)
        size = int(data[at:line_end].split(b";")[0], 16)
        need = line_end + 2 + size + 2
        while len(data) < need:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        at = need
        if size == 0:
            return data[:at]


def send_throttled(sock, data):
    if not args.rate:
        sock.sendall(data)
        return
    step = max(1, args.rate // 20)
    for i in range(0, len(data), step):
        sock.sendall(data[i:i + step])
        time.sleep(0.05)


def respond(sock, status, reason, body, extra=b""):
    sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n"
                 % (status, reason, len(body), extra) + body)


def handle(client):
    upstream = None
    buffer = b""
    try:
        while True:
            head, buffer = read_head(client, buffer)
            if head is None:
                return
            length = int(header(head, b"content-length") or b"0")
            body, buffer = read_body(client, buffer, length)
            if body is None:
                return
            with lock:
                counters["requests"] += 1
                n = counters["requests"]
                write_stats()
            method = head.split(b" ", 1)[0]
            auth = header(head, b"authorization") or b""
            if args.redirect_region and b"/" + args.redirect_region.encode() + b"/s3/" not in auth:
                with lock:
                    counters["redirected"] += 1
                respond(client, 301, b"Moved Permanently",
                        b"<?xml version=\"1.0\"?><Error><Code>PermanentRedirect</Code><Message>wrong region</Message>"
                        b"<Region>%s</Region></Error>" % args.redirect_region.encode(),
                        b"x-amz-bucket-region: %s\r\n" % args.redirect_region.encode())
                return
            if args.fail_every and n % args.fail_every == 0:
                with lock:
                    counters["failed"] += 1
                respond(client, 503, b"Slow Down",
                        b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>")
                return
            drop = args.drop_every and n % args.drop_every == 0
            if drop and length > 0:
                with lock:
                    counters["dropped"] += 1
                return  # connection closed with the request unanswered
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            if upstream is None:
                upstream = socket.create_connection((up_host, up_port))
            upstream.sendall(head + b"\r\n\r\n" + body)
            rhead, rrest = read_head(upstream, b"")
            if rhead is None:
                return
            status = int(rhead.split(b" ")[1])
            if method == b"HEAD" or status in (204, 304):
                rbody = b""
            elif (header(rhead, b"transfer-encoding") or b"").lower() == b"chunked":
                rbody = read_chunked(upstream, rrest)
            else:
                rbody, _ = read_body(upstream, rrest, int(header(rhead, b"content-length") or b"0"))
            if rbody is None:
                return
            if drop:
                with lock:
                    counters["dropped"] += 1
                client.sendall(rhead + b"\r\n\r\n")
                send_throttled(client, rbody[: len(rbody) // 2])
                return
            client.sendall(rhead + b"\r\n\r\n")
            send_throttled(client, rbody)
    except (ConnectionError, OSError):
        return
    finally:
        client.close()
        if upstream:
            upstream.close()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(128)
print(f"PORT={server.getsockname()[1]}", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
