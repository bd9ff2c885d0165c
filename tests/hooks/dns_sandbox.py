#!/usr/bin/env python3
"""dns_sandbox.py — run a command against a DNS server of our own, hermetically.

usage: unshare -mn dns_sandbox.py NAMESERVER COMMAND [ARGS...]

Meant to run as root in fresh network and mount namespaces (unshare -mn): it
brings lo up, bind-mounts its own /etc/resolv.conf (NAMESERVER, search test,
timeout:1 attempts:1) and /etc/hosts over the system's, answers DNS on
127.0.0.1:53 from the table below (a thread of this process), keeps a silent
socket on 127.0.0.2:53 (a server that never answers) and nothing on 127.0.0.3
(a port that refuses). Then it runs COMMAND and exits with its status; the
command's output is its own.
"""
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading

HOSTS = """\
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
127.0.1.1 host4.test host4
fd00::5 host6.test
127.0.0.20 dual.test dual
::1 dual.test
10.9.9.9 listed.test
"""

# name -> list of (type, value); CNAME values are names.
A, AAAA, CNAME = 1, 28, 5
ZONE = {
    "v4.test": [(A, "10.1.2.3")],
    "v6.test": [(AAAA, "2001:db8::1")],
    "both.test": [(A, "127.0.0.5"), (AAAA, "::1")],
    "multi.test": [(A, "10.0.0.1"), (A, "127.0.0.9"), (A, "192.168.1.1")],
    "multi6.test": [(AAAA, "2001:db8::7"), (AAAA, "::1"), (A, "127.0.0.8")],
    "alias.test": [(CNAME, "real.test")],
    "real.test": [(A, "127.0.0.7"), (AAAA, "::1")],
    "chain.test": [(CNAME, "alias.test")],
    "nodata.test": [],
}
SERVFAIL = {"servfail.test"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, i):
    labels = []
    while msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode())
        i += 1 + n
    return ".".join(labels), i + 1


def rdata(rtype, value):
    if rtype == A:
        return socket.inet_pton(socket.AF_INET, value)
    if rtype == AAAA:
        return socket.inet_pton(socket.AF_INET6, value)
    return encode_name(value)


def answer(query):
    qid, flags = struct.unpack("!HH", query[:4])
    qname, end = read_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[end:end + 4])
    question = query[12:end + 4]
    name = qname.lower()
    records = []
    rcode = 0
    if name in SERVFAIL:
        rcode = 2
    elif name not in ZONE:
        rcode = 3
    else:
        seen = 0
        while name in ZONE and seen < 8:
            seen += 1
            cname = [v for t, v in ZONE[name] if t == CNAME]
            if cname and qtype != CNAME:
                records.append((name, CNAME, cname[0]))
                name = cname[0]
                continue
            records += [(name, t, v) for t, v in ZONE[name] if t == qtype]
            break
    header = struct.pack("!HHHHHH", qid, 0x8080 | (flags & 0x0100) | rcode, 1, len(records), 0, 0)
    body = b""
    for owner, rtype, value in records:
        data = rdata(rtype, value)
        body += encode_name(owner) + struct.pack("!HHIH", rtype, 1, 60, len(data)) + data
    return header + question + body


def serve(sock):
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(query), peer)
        except Exception as e:  # a query we cannot parse gets no answer
            print("dns_sandbox: %r" % e, file=sys.stderr)


def lo_up():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("16sH14s", b"lo", 0, b"")
    flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
    s.close()


def main():
    nameserver, command = sys.argv[1], sys.argv[2:]
    lo_up()
    work = tempfile.mkdtemp(prefix="grove-dns-")
    files = {"resolv.conf": "nameserver %s\nsearch test\noptions timeout:1 attempts:1\n" % nameserver,
             "hosts": HOSTS}
    for name, text in files.items():
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write(text)
        subprocess.run(["mount", "--bind", path, "/etc/" + name], check=True)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.2", 53))
    threading.Thread(target=serve, args=(server,), daemon=True).start()
    sys.stdout.flush()
    try:
        status = subprocess.run(command).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the bind mounts keep the files while they last
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
