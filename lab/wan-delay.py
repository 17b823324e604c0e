#!/usr/bin/env python3
"""The delay line of the lab's WAN router (the `wan` container; lab/wan.sh sets it up).

Every packet the router forwards between two regions comes in here through a TUN device:
it is held for half the round-trip time between its source and destination regions, then
written back to the TUN, from where the kernel routes it out to its destination. Both
directions of an exchange cross the router, so the exchange takes the full RTT.

A region is a WAN /24, 10.90.N.0/24; the RTTs come from lab/rtt-matrix.txt. Packets of
other addresses, or within one region, pass at once. Waiting packets are kept in a heap by
due time (one delay per pair of regions, so a flow keeps its order); at most MAX_QUEUE
wait, and a packet that finds the queue full is dropped, as a router's full buffer would.

Usage: wan-delay.py TUN_DEVICE RTT_MATRIX_FILE
Standard library only (python3-minimal).
"""

import fcntl
import heapq
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_QUEUE = 10000
# Packets read from the TUN in one go before the due ones are sent.
READ_BATCH = 256
STATS_EVERY = 60.0


def log(msg):
    print("wan: " + msg, flush=True)


def read_matrix(path):
    """{(region a, region b): one-way delay in seconds}, both orders, from the RTT file."""
    delays = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                a, b, rtt = line.split()
                a, b, rtt = int(a), int(b), float(rtt)
            except ValueError:
                sys.exit(f"wan: {path}:{n}: want 'REGION REGION RTT_MS', got {line!r}")
            if rtt < 0:
                sys.exit(f"wan: {path}:{n}: negative RTT")
            delays[(a, b)] = delays[(b, a)] = rtt / 2000.0
    return delays


def open_tun(name):
    """The TUN device `name` (created by lab/wan.sh), non-blocking, raw IP packets."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def region(packet, at):
    """N of a WAN address 10.90.N.x at offset `at` of an IPv4 header, else None."""
    if packet[at] == 10 and packet[at + 1] == 90:
        return packet[at + 2]
    return None


def delay_of(packet, delays):
    """Seconds to hold an IP packet: half the RTT between its source and destination."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return 0.0
    return delays.get((region(packet, 12), region(packet, 16)), 0.0)


class Stats:
    def __init__(self):
        self.delayed = self.passed = self.dropped = self.failed = self.peak = 0

    def line(self):
        return (f"{self.delayed} packets delayed, {self.passed} passed at once, "
                f"{self.dropped} dropped (queue full), {self.failed} not written, "
                f"longest queue {self.peak}")


def send(fd, packet, stats):
    try:
        os.write(fd, packet)
    except OSError:
        stats.failed += 1


def run(fd, delays):
    queue = []  # (due, sequence, packet)
    seq = 0
    stats = Stats()
    next_stats = time.monotonic() + STATS_EVERY
    try:
        while True:
            now = time.monotonic()
            timeout = max(0.0, queue[0][0] - now) if queue else STATS_EVERY
            readable, _, _ = select.select([fd], [], [], timeout)
            if readable:
                for _ in range(READ_BATCH):
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    now = time.monotonic()
                    delay = delay_of(packet, delays)
                    if delay <= 0:
                        stats.passed += 1
                        send(fd, packet, stats)
                    elif len(queue) >= MAX_QUEUE:
                        stats.dropped += 1
                    else:
                        heapq.heappush(queue, (now + delay, seq, packet))
                        seq += 1
                        stats.delayed += 1
                        stats.peak = max(stats.peak, len(queue))
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                send(fd, heapq.heappop(queue)[2], stats)
            if now >= next_stats:
                log(stats.line())
                next_stats = now + STATS_EVERY
    finally:
        log(f"stopping: {stats.line()}, {len(queue)} still queued")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: wan-delay.py TUN_DEVICE RTT_MATRIX_FILE")
    dev, matrix = sys.argv[1], sys.argv[2]
    delays = read_matrix(matrix)
    fd = open_tun(dev)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    pairs = sorted((a, b) for (a, b) in delays if a < b)
    log(f"ready: {dev}, one-way delays " + ", ".join(
        f"10.90.{a}.0/24<->10.90.{b}.0/24 {delays[(a, b)] * 1000:g} ms" for a, b in pairs))
    try:
        run(fd, delays)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
