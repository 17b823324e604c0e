"""A minimal DNS client for the soak test: one query with EDNS over UDP or TCP, the
answer section parsed (standard library only)."""
import random
import socket
import struct


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(qid, name, qtype):
    return (struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + encode_name(name)
            + struct.pack("!HH", qtype, 1) + b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0))


def skip_name(m, p):
    while True:
        n = m[p]
        if n == 0:
            return p + 1
        if n & 0xC0 == 0xC0:
            return p + 2
        p += 1 + n


def parse_reply(m):
    """(id, rcode, [(type, ttl, rdata)]) of the answer section."""
    qid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    p = 12
    for _ in range(qd):
        p = skip_name(m, p) + 4
    answers = []
    for _ in range(an):
        p = skip_name(m, p)
        t, _c, ttl, rdlen = struct.unpack("!HHIH", m[p:p + 10])
        answers.append((t, ttl, m[p + 10:p + 10 + rdlen]))
        p += 10 + rdlen
    return qid, flags & 0xF, answers


def ask(port, name, qtype, tcp=False, timeout=2.0):
    """(rcode, answers) or None on timeout / no reply."""
    qid = random.randrange(65536)
    q = build_query(qid, name, qtype)
    try:
        if tcp:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.sendall(struct.pack("!H", len(q)) + q)
                buf = b""
                while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                    chunk = s.recv(65535)
                    if not chunk:
                        return None
                    buf += chunk
                m = buf[2:]
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(q, ("127.0.0.1", port))
                while True:
                    m, _ = s.recvfrom(65535)
                    if m[:2] == q[:2]:
                        break
    except OSError:
        return None
    rid, rcode, answers = parse_reply(m)
    return rcode, answers


def txt_of(answers):
    for t, _ttl, rd in answers:
        if t == 16:
            return rd[1:1 + rd[0]].decode()
    return None


def addrs_of(answers):
    return [socket.inet_ntoa(rd) for t, _ttl, rd in answers if t == 1]
