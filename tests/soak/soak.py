#!/usr/bin/env python3
"""Soak test: faults under load against the release binary, on loopback only.

usage: soak.py --bin target/release/roundhouse [--minutes 10] [--malformed DIR]

Starts `roundhouse serve` with two regions (r1 on 127.0.1.x, r2 on 127.0.2.x), each with a
balancer listener in front of three `roundhouse backend` instances, a GSLB pool of the two
balancers (www.soak.test) and a DNS round-robin pool of the six instances (rr.soak.test),
both with ordered steering r1 -> r2. For the given time it runs, all at bounded rates:

  load    DNS queries for valid names (own UDP/TCP client, and dnsperf when installed);
          HTTP GET through the r2 balancer
  faults  SIGKILL of one instance and its restart; region r1 down (all its instances) and up;
          zone file rewrites, valid and broken; configuration rewrites, valid and broken,
          applied by SIGHUP, POST /v1/reload or the file watcher; the malformed query
          corpus (send.py) when its directory is given

and checks: the server never stops answering; no query for a valid name gets SERVFAIL,
another error or a timeout; no answer carries an endpoint that had been down longer than
the health-check bound; broken edits never replace good data (their marker values are
never served, and the last good values stay); GET through the balancer sees no error;
the server's RSS stays flat. Prints the figures and exits 1 on any violation.
Uses the Python standard library only.
"""
import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsclient import addrs_of, ask, txt_of  # noqa: E402
from soakfiles import BROKEN_CONFIGS, BROKEN_ZONES, CONFIG, ZONE_HEAD  # noqa: E402

# Health checks: probes every 1 s (+ up to 10 % jitter), 500 ms timeout, out after 2 failures.
INTERVAL, TIMEOUT, UNHEALTHY = 1.0, 0.5, 2
# Time from a kill until no answer may carry the address: detection (two failed probes,
# each after up to 1.1 s, the last one taking up to its timeout) plus SOAK_BOUND_SLACK
# (default 1.5 s, for a loaded 2-core machine). A balancer endpoint is out one detection
# later than its last target.
DETECT = UNHEALTHY * INTERVAL * 1.1 + TIMEOUT
SLACK = float(os.environ.get("SOAK_BOUND_SLACK", "1.5"))
BOUND_INSTANCE = DETECT + SLACK
BOUND_BALANCER = 2 * DETECT + SLACK
DNS_QPS, HTTP_RPS, DNSPERF_QPS = 200, 40, 500
RSS_GROWTH_LIMIT_KB = 24 * 1024
TOKEN = "soak-token"
# Loopback only: never through a proxy from the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

R1 = ["127.0.1.11", "127.0.1.12", "127.0.1.13"]
R2 = ["127.0.2.11", "127.0.2.12", "127.0.2.13"]
LB = {"r1": "127.0.1.1", "r2": "127.0.2.1"}
REGION = {a: "r1" for a in R1} | {a: "r2" for a in R2}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port(addrs, udp=False):
    """A port free on every address in `addrs` (TCP, and UDP when asked)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for a in addrs:
            kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
            for k in kinds:
                t = socket.socket(socket.AF_INET, k)
                try:
                    t.bind((a, port))
                except OSError:
                    ok = False
                finally:
                    t.close()
        if ok:
            return port
    raise SystemExit("no free port")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------- the soak

class Soak:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.work = tempfile.mkdtemp(prefix="roundhouse-soak-")
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.violations = []
        self.figures = {k: 0 for k in [
            "dns_queries", "dns_udp", "dns_tcp", "dns_timeouts", "dns_servfail", "dns_bad_rcode",
            "dns_stale_endpoint", "dns_broken_data", "dns_wrong_ttl", "http_requests",
            "http_errors", "kills", "restarts", "region_down", "zone_valid", "zone_broken",
            "config_valid", "config_broken", "malformed_runs", "malformed_passed",
            "malformed_failed"]}
        self.down_since = {}          # address -> monotonic time it went down
        self.backends = {}            # address -> Popen
        self.region_down = False
        # Zone data: the generation last written validly, markers of broken edits.
        self.good_gens = {"gen-1"}
        self.broken_markers = set()
        # www TTLs the configuration may currently give; TTLs only broken files had.
        self.ttls = {10}
        self.broken_ttls = set()
        self.server = None

    def violation(self, what):
        with self.lock:
            self.violations.append(f"{time.strftime('%H:%M:%S')} {what}")
            n = len(self.violations)
        if n <= 50:
            log(f"VIOLATION: {what}")

    def count(self, key, n=1):
        with self.lock:
            self.figures[key] += n

    # ---------------------------------------------------------------- setup
    def setup(self):
        self.dns = free_port(["127.0.0.1"], udp=True)
        self.admin = free_port(["127.0.0.1"])
        self.lbp = free_port(list(LB.values()))
        self.bp = free_port(R1 + R2)
        os.makedirs(f"{self.work}/zones")
        self.gen = 1
        self.write_zone_valid()
        # The malformed corpus asks about example.com.
        with open(f"{self.work}/zones/example.com.zone", "w") as f:
            f.write('$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\n'
                    '@ A 192.0.2.1\n@ TXT "corpus"\nns1 A 192.0.2.53\n')
        self.ttl = 10
        self.write_config(self.ttl)
        for a in R1 + R2:
            self.start_backend(a)
        self.server_log = open(f"{self.work}/server.log", "w")
        self.server = subprocess.Popen(
            [self.bin, "serve", "--config", f"{self.work}/soak.toml"],
            stdout=self.server_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = ask(self.dns, "soak.test.", 6, timeout=0.5)
            if r and r[0] == 0:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("server did not start; see " + self.work + "/server.log")
        # Every instance and both balancers ready.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rr = ask(self.dns, "rr.soak.test.", 1)
            www = ask(self.dns, "www.soak.test.", 1)
            if rr and www and set(addrs_of(rr[1])) == set(R1) and addrs_of(www[1]) == [LB["r1"]]:
                break
            time.sleep(0.5)
        else:
            raise SystemExit("pools did not become ready")
        log(f"server pid {self.server.pid}: dns 127.0.0.1:{self.dns}, admin :{self.admin}, "
            f"balancers {LB['r1']}:{self.lbp} {LB['r2']}:{self.lbp}, instances port {self.bp}; "
            f"work dir {self.work}")

    def write_atomic(self, path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def write_zone_valid(self):
        text = ZONE_HEAD.format(serial=1000 + self.gen) + f'gen TXT "gen-{self.gen}"\n'
        self.write_atomic(f"{self.work}/zones/soak.test.zone", text)

    def write_config(self, ttl, extra=""):
        targets = lambda xs: ", ".join(f'{{ address = "{a}:{self.bp}" }}' for a in xs)
        text = CONFIG.format(
            dns=self.dns, admin=self.admin, token=TOKEN, bp=self.bp, lbp=self.lbp,
            lb1=LB["r1"], lb2=LB["r2"], ttl=ttl, extra=extra,
            rr_endpoints="\n".join(f'  {{ address = "{a}", region = "{REGION[a]}" }},'
                                   for a in R1 + R2),
            r1_targets=targets(R1), r2_targets=targets(R2))
        self.write_atomic(f"{self.work}/soak.toml", text)

    def start_backend(self, addr):
        for _ in range(50):
            p = subprocess.Popen(
                [self.bin, "backend", "--listen", f"{addr}:{self.bp}", "--region",
                 REGION[addr], "--id", addr],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                try:
                    socket.create_connection((addr, self.bp), timeout=0.2).close()
                    self.backends[addr] = p
                    return
                except OSError:
                    if p.poll() is not None:
                        break
                    time.sleep(0.05)
            p.kill()
            p.wait()
            time.sleep(0.2)
        raise SystemExit(f"backend {addr} does not start")

    # ---------------------------------------------------------------- load
    def dns_load(self):
        names = [("www.soak.test.", 1), ("rr.soak.test.", 1), ("ns1.soak.test.", 1),
                 ("gen.soak.test.", 16), ("soak.test.", 6), ("soak.test.", 15),
                 ("example.com.", 1)]
        i = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += 1.0 / DNS_QPS
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name, qtype = names[i % len(names)]
            tcp = i % 10 == 9
            i += 1
            sent = time.monotonic()
            r = ask(self.dns, name, qtype, tcp=tcp)
            self.count("dns_queries")
            self.count("dns_tcp" if tcp else "dns_udp")
            if r is None:
                self.count("dns_timeouts")
                self.violation(f"no answer within 2 s: {name} type {qtype} over "
                               f"{'TCP' if tcp else 'UDP'}")
                continue
            rcode, answers = r
            if rcode == 2:
                self.count("dns_servfail")
                self.violation(f"SERVFAIL for {name} type {qtype}")
                continue
            if rcode != 0 or not answers:
                self.count("dns_bad_rcode")
                self.violation(f"rcode {rcode} with {len(answers)} answers for {name} {qtype}")
                continue
            self.check_answer(name, answers, sent)

    def check_answer(self, name, answers, sent):
        with self.lock:
            down = dict(self.down_since)
            good, broken = set(self.good_gens), set(self.broken_markers)
            ttls, broken_ttls = set(self.ttls), set(self.broken_ttls)
        if name in ("www.soak.test.", "rr.soak.test."):
            bound = BOUND_BALANCER if name.startswith("www") else BOUND_INSTANCE
            allowed = set(LB.values()) if name.startswith("www") else set(R1 + R2)
            for a in addrs_of(answers):
                if a not in allowed:
                    self.violation(f"{name} answered unknown address {a}")
                since = down.get(a)
                if since is not None and sent - since > bound:
                    self.count("dns_stale_endpoint")
                    self.violation(f"{name} answered {a}, down for {sent - since:.1f} s "
                                   f"(bound {bound:.1f} s)")
        if name == "www.soak.test.":
            ttl = answers[0][1]
            if ttl in broken_ttls or ttl not in ttls:
                self.count("dns_wrong_ttl")
                self.violation(f"www TTL {ttl}, configuration allows {sorted(ttls)}")
        if name == "gen.soak.test.":
            g = txt_of(answers)
            if g in broken or g not in good:
                self.count("dns_broken_data")
                self.violation(f"gen.soak.test TXT {g!r}: not from a valid edit "
                               f"(valid now: {sorted(good)})")

    def http_load(self):
        url = f"http://{LB['r2']}:{self.lbp}/"
        next_at = time.monotonic()
        while not self.stop.is_set():
            next_at += 1.0 / HTTP_RPS
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.count("http_requests")
            try:
                with HTTP.open(url, timeout=5) as resp:
                    resp.read()
                    if resp.status != 200:
                        raise OSError(f"status {resp.status}")
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.count("http_errors")
                self.violation(f"GET {url}: {e}")

    def dnsperf(self, seconds):
        if not shutil.which("dnsperf"):
            log("dnsperf not installed: only the built-in DNS client runs")
            return
        qfile = f"{self.work}/dnsperf.txt"
        with open(qfile, "w") as f:
            f.write("www.soak.test A\nrr.soak.test A\nns1.soak.test A\ngen.soak.test TXT\n"
                    "soak.test SOA\nsoak.test MX\n")
        out = subprocess.run(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(self.dns), "-d", qfile, "-l",
             str(int(seconds)), "-Q", str(DNSPERF_QPS), "-c", "2", "-t", "2"],
            capture_output=True, text=True).stdout
        self.dnsperf_out = out
        sent = lost = 0
        codes = {}
        for line in out.splitlines():
            w = line.split()
            if line.strip().startswith("Queries sent:"):
                sent = int(w[2])
            elif line.strip().startswith("Queries lost:"):
                lost = int(w[2])
            elif line.strip().startswith("Response codes:"):
                for part in line.split(":", 1)[1].split(","):
                    k, v = part.split()[:2]
                    codes[k] = int(v)
        self.dnsperf_figures = (sent, lost, codes)
        if sent == 0:
            self.violation("dnsperf sent nothing:\n" + out)
        if lost:
            self.violation(f"dnsperf: {lost} of {sent} queries lost")
        bad = {k: v for k, v in codes.items() if k != "NOERROR"}
        if bad:
            self.violation(f"dnsperf response codes other than NOERROR: {bad}")

    def rss_sampler(self):
        while not self.stop.wait(5):
            try:
                kb = rss_kb(self.server.pid)
            except OSError:
                continue
            with self.lock:
                self.rss_max = max(self.rss_max, kb)

    # ---------------------------------------------------------------- faults
    def sleep(self, seconds):
        return self.stop.wait(seconds)

    def kill(self, addr):
        p = self.backends.pop(addr)
        p.kill()
        p.wait()
        with self.lock:
            self.down_since[addr] = time.monotonic()
            for region, lb in LB.items():
                members = [a for a in REGION if REGION[a] == region]
                if all(a in self.down_since for a in members):
                    self.down_since.setdefault(lb, max(self.down_since[a] for a in members))
        self.count("kills")

    def restart(self, addr):
        self.start_backend(addr)
        with self.lock:
            self.down_since.pop(addr, None)
            self.down_since.pop(LB[REGION[addr]], None)
        self.count("restarts")

    def instance_faults(self):
        """One instance killed and restarted 8 s later, every 12 s; region r1 down for 25 s
        every 90 s (no single kills in r1 meanwhile). r2 always keeps two instances."""
        t0 = time.monotonic()
        next_region = t0 + 45
        while not self.stop.is_set():
            if time.monotonic() >= next_region:
                log("fault: region r1 down")
                for a in R1:
                    if a in self.backends:
                        self.kill(a)
                self.count("region_down")
                self.region_down = True
                if self.sleep(25):
                    break
                log("fault: region r1 up")
                for a in R1:
                    self.restart(a)
                self.region_down = False
                next_region = time.monotonic() + 90
                if self.sleep(6):
                    break
                continue
            candidates = R2 + ([] if self.region_down else R1)
            addr = random.choice([a for a in candidates if a in self.backends])
            self.kill(addr)
            if self.sleep(8):
                self.restart(addr)
                break
            self.restart(addr)
            if self.sleep(4):
                break
        for a in R1 + R2:
            if a not in self.backends:
                self.restart(a)

    def current_gen(self):
        r = ask(self.dns, "gen.soak.test.", 16)
        return txt_of(r[1]) if r and r[0] == 0 else None

    def zone_faults(self):
        """Every 7 s: a valid edit (new generation, must be served within 5 s) or a broken
        one (its marker must never be served; the last good generation stays)."""
        k = 0
        while not self.sleep(7):
            k += 1
            if k % 2:
                self.gen += 1
                new = f"gen-{self.gen}"
                with self.lock:
                    self.good_gens.add(new)
                self.write_zone_valid()
                self.count("zone_valid")
                deadline = time.monotonic() + 5
                while self.current_gen() != new and time.monotonic() < deadline:
                    time.sleep(0.1)
                if self.current_gen() != new:
                    self.violation(f"valid zone edit {new} not served within 5 s")
                with self.lock:
                    self.good_gens = {new}
            else:
                marker = f"broken-{k}"
                with self.lock:
                    self.broken_markers.add(marker)
                text = random.choice(BROKEN_ZONES).format(serial=5000 + k, gen=marker)
                self.write_atomic(f"{self.work}/zones/soak.test.zone", text)
                self.count("zone_broken")
                time.sleep(2)
                g = self.current_gen()
                if g != f"gen-{self.gen}":
                    self.violation(f"after a broken zone edit gen.soak.test is {g!r}, "
                                   f"expected gen-{self.gen}")

    def reload(self, how):
        """Applies the configuration file: SIGHUP, POST /v1/reload (returns its status) or
        the file watcher (nothing to do)."""
        if how == "sighup":
            self.server.send_signal(signal.SIGHUP)
            return None
        if how == "admin":
            req = urllib.request.Request(f"http://127.0.0.1:{self.admin}/v1/reload",
                                         method="POST",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
            try:
                with HTTP.open(req, timeout=10) as resp:
                    return resp.status
            except urllib.error.HTTPError as e:
                return e.code
        return None

    def www_ttl(self):
        r = ask(self.dns, "www.soak.test.", 1)
        return r[1][0][1] if r and r[0] == 0 and r[1] else None

    def config_faults(self):
        """Every 10 s: a broken configuration (its www TTL must never be served; admin reload
        answers 422), then 5 s later a valid one with a new www TTL (served within 5 s)."""
        hows = ["admin", "sighup", "watch"]
        k = 0
        while not self.sleep(10):
            how = hows[k % 3]
            k += 1
            bad_ttl = 900 + k
            with self.lock:
                self.broken_ttls.add(bad_ttl)
            broken = random.choice(BROKEN_CONFIGS)
            self.write_config(bad_ttl, extra=broken)
            self.count("config_broken")
            status = self.reload(how)
            if how == "admin" and status != 422:
                self.violation(f"POST /v1/reload of a broken configuration answered {status}")
            if self.sleep(5):
                break
            new_ttl = 10 + k % 20
            with self.lock:
                self.ttls.add(new_ttl)
            self.write_config(new_ttl)
            self.count("config_valid")
            status = self.reload(how)
            if how == "admin" and status != 200:
                self.violation(f"POST /v1/reload of a valid configuration answered {status}")
            deadline = time.monotonic() + 5
            while self.www_ttl() != new_ttl and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.www_ttl() != new_ttl:
                self.violation(f"valid configuration (www TTL {new_ttl}, via {how}) "
                               "not in force within 5 s")
            with self.lock:
                self.ttls = {new_ttl}
            self.ttl = new_ttl

    def malformed(self):
        send = os.path.join(self.args.malformed or "", "send.py")
        if not self.args.malformed or not os.path.exists(send):
            log("malformed corpus: not given or absent, not sent")
            return
        if subprocess.run([sys.executable, "-c", "import dns.message"],
                          capture_output=True).returncode != 0:
            log("malformed corpus: dnspython missing, not sent")
            return
        while not self.sleep(10):
            out = subprocess.run([sys.executable, send, f"127.0.0.1:{self.dns}",
                                  "--live-name", "example.com."],
                                 capture_output=True, text=True).stdout
            last = out.strip().splitlines()[-1] if out.strip() else ""
            self.count("malformed_runs")
            try:
                passed, failed = int(last.split()[0]), int(last.split()[2])
            except (IndexError, ValueError):
                self.violation(f"malformed corpus run printed {last!r}")
                continue
            self.count("malformed_passed", passed)
            self.count("malformed_failed", failed)
            if failed:
                bad = [l for l in out.splitlines() if " NO " in l or "DEAD" in l]
                self.violation(f"malformed corpus: {failed} failed: " + "; ".join(bad[:5]))
            log(f"malformed corpus: {passed} passed, {failed} failed")
            if self.sleep(50):
                break

    # ---------------------------------------------------------------- run
    def run(self):
        seconds = self.args.minutes * 60
        self.setup()
        time.sleep(5)
        self.rss_start = rss_kb(self.server.pid)
        self.rss_max = self.rss_start
        self.dnsperf_figures = None
        threads = [threading.Thread(target=f, daemon=True) for f in [
            self.dns_load, self.http_load, self.rss_sampler, self.instance_faults,
            self.zone_faults, self.config_faults, self.malformed]]
        threads.append(threading.Thread(target=self.dnsperf, args=(seconds,), daemon=True))
        started = time.monotonic()
        for t in threads:
            t.start()
        log(f"soak running for {seconds} s")
        while time.monotonic() - started < seconds:
            time.sleep(1)
            if self.server.poll() is not None:
                self.violation(f"server exited with {self.server.returncode}")
                break
        self.stop.set()
        for t in threads:
            t.join(timeout=120)
        elapsed = time.monotonic() - started
        # Settled: the last good data and configuration are served.
        if self.server.poll() is None:
            if self.current_gen() != f"gen-{self.gen}":
                self.violation(f"at the end gen.soak.test is {self.current_gen()!r}")
            self.rss_end = rss_kb(self.server.pid)
        else:
            self.rss_end = 0
        growth = self.rss_end - self.rss_start
        if growth > RSS_GROWTH_LIMIT_KB:
            self.violation(f"RSS grew by {growth} kB (limit {RSS_GROWTH_LIMIT_KB} kB)")
        self.report(elapsed)

    def report(self, elapsed):
        f = self.figures
        print()
        print(f"soak: {elapsed:.0f} s, server RSS start {self.rss_start} kB, end "
              f"{self.rss_end} kB, max {self.rss_max} kB (growth limit "
              f"{RSS_GROWTH_LIMIT_KB} kB)")
        print(f"dns: {f['dns_queries']} queries ({f['dns_udp']} UDP, {f['dns_tcp']} TCP, "
              f"{f['dns_queries'] / elapsed:.0f}/s): {f['dns_timeouts']} timeouts, "
              f"{f['dns_servfail']} SERVFAIL, {f['dns_bad_rcode']} other errors, "
              f"{f['dns_stale_endpoint']} answers with an endpoint down beyond the bound "
              f"({BOUND_INSTANCE:.1f} s instance, {BOUND_BALANCER:.1f} s balancer), "
              f"{f['dns_broken_data']} broken zone data, {f['dns_wrong_ttl']} wrong TTLs")
        if self.dnsperf_figures:
            sent, lost, codes = self.dnsperf_figures
            print(f"dnsperf: {sent} queries ({sent / elapsed:.0f}/s), {lost} lost, "
                  f"codes {codes}")
        print(f"http: {f['http_requests']} GET through the r2 balancer, "
              f"{f['http_errors']} errors")
        faults = (f["kills"] + f["region_down"] + f["zone_valid"] + f["zone_broken"]
                  + f["config_valid"] + f["config_broken"] + f["malformed_runs"])
        print(f"faults: {faults} = {f['kills']} instance kills ({f['region_down']} region-down "
              f"events among them take 3 each), {f['zone_valid']} valid + {f['zone_broken']} "
              f"broken zone edits, {f['config_valid']} valid + {f['config_broken']} broken "
              f"configuration edits, {f['malformed_runs']} malformed corpus runs "
              f"({f['malformed_passed']} passed, {f['malformed_failed']} failed)")
        print(f"violations: {len(self.violations)}")
        for v in self.violations[:50]:
            print(f"  {v}")

    def cleanup(self):
        for p in list(self.backends.values()):
            p.kill()
            p.wait()
        if self.server and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if self.violations or self.args.keep:
            log(f"kept {self.work} (server.log)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="the roundhouse binary (release build)")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--malformed", help="directory of the malformed corpus and its send.py")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    soak = Soak(args)
    signal.signal(signal.SIGTERM, lambda *_: soak.stop.set())
    try:
        soak.run()
    finally:
        soak.cleanup()
    return 1 if soak.violations else 0


if __name__ == "__main__":
    sys.exit(main())
