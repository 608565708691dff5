"""bench.py: the benchmark of `make bench` (run by bench/run.sh, as root,
inside a private mount namespace where /run/systemd and /run/log are ours).

Every run starts its own processes on loopback: the load generator
(bench/loadgen.py), the consumer (dcevents or bench/pypeer.py), and the
sink (a private journald started here on a fresh journal, or a private
rsyslogd on its own ports and files; stdout goes to /dev/null).  A run
measures from the load generator's first write (CLOCK_REALTIME) to the
moment the last record reached the sink:

  stdout   dcevents' stderr warning about the final non-JSON message (the
           end marker) has arrived, and /proc/PID/io wchar no longer moves
           (the writer thread has written everything)
  journal  __REALTIME_TIMESTAMP of the marker record (journald's receive
           time for the warning record written after the last event)
  syslog   rsyslogd's reception time (timegenerated, microseconds) of the
           last line: the marker, or for UDP the last line received when
           datagrams were lost

The spool (issue 16): the stdout and journal runs again with [Spool]
Mode=always and Mode=overflow (a mode dcevents -t refuses is not run, its
targets print SKIP), and the replay at start of N_REPLAY events from a
spool written here in spool.c's schema (the load generator's payloads)
into stdout (a pipe that wc -l counts), from the start to the last line.

CPU is user+sys of the consumer process (all threads, wait4 rusage), peak
RSS its VmHWM (and the largest RssAnon seen, sampled every 50 ms).  Every
throughput run is made twice and the faster counts (the peak RSS is the
higher of the two): the machine has 2 cores, and whatever else runs there
shows in a single run.  Latency runs send 1,000 events/s, each carrying its send
time ("sent", ns since the epoch), and compare it with the arrival time in
the sink: the reader's clock for stdout lines (a pipe), journald's
__REALTIME_TIMESTAMP, rsyslog's timegenerated.

Environment: T (scratch directory), top_srcdir, DCEVENTS, BENCH_BIN (the
built C helpers), BENCH_OUT (where results go), BENCH_SCALE (default 1:
multiplies every event count; 0.1 for a quick try), BENCH_DCEVENTS_OPTS
(more dcevents options, e.g. "-o Output.QueueMax=1000"), BENCH_ONLY (for
development: some groups of runs only, e.g. "journal,syslog"; no table;
"spool" prints its targets; "spool-stdout": one run each into stdout
with no spool, Mode=always and Mode=overflow, for a quick comparison).

The metrics rows: stdout over TLS with [Metrics] Listen= set, scraped
every second (GET /metrics, as Prometheus does) and not, alternating;
target: scraped costs at most 1% of the throughput (BENCH_ONLY=metrics
prints its PASS/FAIL line too).
"""
import atexit, datetime, json, os, re, shutil, signal, socket, struct
import subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import loadgen  # noqa: E402

PY = "/usr/bin/python3"
T = os.environ["T"]
SRC = os.environ.get("top_srcdir", os.path.dirname(HERE))
DCEVENTS = os.environ["DCEVENTS"]
BIN = os.environ["BENCH_BIN"]
OUT = os.environ["BENCH_OUT"]
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
PKI = os.path.join(T, "pki")
JOURNALD = "/lib/systemd/systemd-journald"
JOURNAL_DIR = "/run/log/journal"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
RSYSLOGD = "/usr/sbin/rsyslogd"
PARSE_MID = "f8052b8f3c11438a8b8e76367d667c46"
CONTAINER_MID = "2d5b08411d17441eb2311e51539d27d3"
LAT_RATE = 1000
NO_MANAGER = ["env", "-u", "NOTIFY_SOCKET", "-u", "WATCHDOG_USEC", "-u",
              "WATCHDOG_PID", "-u", "LISTEN_FDS", "-u", "LISTEN_PID", "-u",
              "LISTEN_FDNAMES", "setpriv", "--pdeathsig", "KILL"]


def n_(count):
    return max(1000, int(count * SCALE))


N_STDOUT = n_(1_000_000)        # also the RSS-flatness run
N_PLAIN = n_(500_000)
N_CEIL_READ = n_(1_000_000)
N_YAJL = n_(1_000_000)
N_JOURNAL = n_(200_000)
N_SYSLOG = n_(200_000)
RUNS = 3  # runs of each journal and syslog row
# rounds of the spool's rows: 5% (overflow's target) is below what three
# runs resolve here (runs of one build differ by 20%)
SPOOL_RUNS = 5
N_PEER = n_(20_000)
N_REPLAY = n_(1_000_000)
LAT_SECONDS = max(1.0, 4 * min(SCALE, 1))


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def real_ns():
    return time.time_ns()


def wait_until(pred, timeout, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


# ---------------------------------------------------------------- the model

def object_uuid(uri):
    return uri.rstrip("/").rsplit("/", 1)[-1]


def message(ev):
    """dcevents' MESSAGE (README, Records) for a container event."""
    return "%s %s %s: %s (%s)" % (ev["type"], object_uuid(ev["resource_uri"])[:8],
                                  ev["action"], ev["state"], ev["resource_uri"])


def journal_fields(ev, ident):
    """The fields dcevents' journal_format_event() builds, in its order."""
    f = [("MESSAGE", message(ev)), ("PRIORITY", "6"),
         ("SYSLOG_IDENTIFIER", ident), ("SYSLOG_FACILITY", "3"),
         ("MESSAGE_ID", CONTAINER_MID), ("DOCKERCLOUD_TYPE", ev["type"]),
         ("DOCKERCLOUD_ACTION", ev["action"]),
         ("DOCKERCLOUD_STATE", ev["state"]), ("DOCKERCLOUD_UUID", ev["uuid"]),
         ("DOCKERCLOUD_RESOURCE_URI", ev["resource_uri"]),
         ("DOCKERCLOUD_OBJECT_UUID", object_uuid(ev["resource_uri"]))]
    f += [("DOCKERCLOUD_PARENT", p) for p in ev["parents"]]
    f += [("DOCKERCLOUD_DATETIME", ev["datetime"]),
          ("DOCKERCLOUD_NAMESPACE", loadgen.NAMESPACE)]
    return f


def syslog_record(ev, ident):
    """dcevents' RFC 5424 record (syslog_format.c) for a container event."""
    sd = ('type="%s" action="%s" state="%s" uuid="%s" resource_uri="%s"'
          % (ev["type"], ev["action"], ev["state"], ev["uuid"],
             ev["resource_uri"]))
    sd += "".join(' parent="%s"' % p for p in ev["parents"])
    sd += ' datetime="%s" namespace="%s"' % (ev["datetime"], loadgen.NAMESPACE)
    return ("<30>1 2016-03-08T14:02:21.031891Z %s %s %d container "
            "[dockercloud@32473 %s] %s" % (socket.gethostname(), ident,
                                           os.getpid(), sd, message(ev)))


def write_journal_records(path, n, ident):
    with open(path, "wb") as f:
        for i in range(n):
            fields = journal_fields(loadgen.event(i), ident)
            f.write(struct.pack("<I", len(fields)))
            for k, v in fields:
                b = (k + "=" + v).encode()
                f.write(struct.pack("<I", len(b)) + b)


def write_syslog_records(path, n, ident):
    with open(path, "wb") as f:
        for i in range(n):
            b = syslog_record(loadgen.event(i), ident).encode()
            f.write(struct.pack("<I", len(b)) + b)


# ------------------------------------------------------------ the processes

class Proc:
    """A child with its stderr read line by line, each line timestamped."""

    live = []

    def __init__(self, argv, stdout=subprocess.DEVNULL, name="proc", env=None):
        self.name = name
        self.errlog = open(os.path.join(T, name + ".err"), "w")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                  stderr=subprocess.PIPE, env=env)
        self.lines = []         # (real_ns, text)
        self.rusage = None
        self.status = None
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        Proc.live.append(self)

    @staticmethod
    def kill_all():
        """At exit: no child of ours outlives the benchmark."""
        for p in Proc.live:
            if p.status is None and p.p.poll() is None:
                p.p.kill()
                p.p.wait()

    def _read(self):
        for line in self.p.stderr:
            t = real_ns()
            s = line.decode(errors="replace").rstrip("\n")
            self.lines.append((t, s))
            self.errlog.write(s + "\n")
            self.errlog.flush()

    def cpu_now_us(self):
        """User + system CPU so far, all threads (/proc/PID/stat)."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) * 1e6 / os.sysconf("SC_CLK_TCK")

    def seen(self, text):
        for t, s in self.lines:
            if text in s:
                return t
        return None

    def status_field(self, name):
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    if line.startswith(name + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def wchar(self):
        try:
            with open("/proc/%d/io" % self.p.pid) as f:
                for line in f:
                    if line.startswith("wchar:"):
                        return int(line.split()[1])
        except OSError:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Signal, reap with wait4 (rusage of all its threads)."""
        if self.status is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            end = time.monotonic() + timeout
            while True:
                pid, st, ru = os.wait4(self.p.pid, os.WNOHANG)
                if pid:
                    self.status, self.rusage = st, ru
                    self.p.returncode = os.waitstatus_to_exitcode(st)
                    Proc.live.remove(self)
                    break
                if time.monotonic() > end:
                    os.kill(self.p.pid, signal.SIGKILL)
                    end += 5
                time.sleep(0.01)
        self.t.join(2)
        return self.rusage

    def cpu_us(self):
        ru = self.rusage
        return (ru.ru_utime + ru.ru_stime) * 1e6

    def cpu_split(self, n):
        """(user, sys) µs per event, and context switches per event."""
        ru = self.rusage
        return dict(user=ru.ru_utime * 1e6 / n, sys=ru.ru_stime * 1e6 / n,
                    csw=(ru.ru_nvcsw + ru.ru_nivcsw) / n)


class RssSampler:
    """VmRSS every 50 ms while a run lasts."""

    def __init__(self, proc):
        self.proc, self.samples, self.stop_ = proc, [], False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_:
            v = self.proc.status_field("VmRSS")
            a = self.proc.status_field("RssAnon")
            if v is not None and a is not None:
                self.samples.append((time.monotonic(), v, a, self.pss()))
            time.sleep(0.05)

    def pss(self):
        """Proportional set size: shared pages divided among their users."""
        try:
            with open("/proc/%d/smaps_rollup" % self.proc.p.pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    @staticmethod
    def peak_anon(samples):
        return max((s[2] for s in samples), default=None)

    @staticmethod
    def peak_pss(samples):
        return max((s[3] for s in samples if s[3] is not None), default=None)

    def end(self):
        self.stop_ = True
        self.t.join()
        return self.samples


class LoadGen:
    def __init__(self, count, tls=True, rate=0, pool=None, end=True,
                 close=False, name="loadgen"):
        self.logf = os.path.join(T, name + ".log")
        port = os.path.join(T, name + ".port")
        for f in (self.logf, port):
            if os.path.exists(f):
                os.unlink(f)
        argv = [PY, os.path.join(HERE, "loadgen.py"), "--portfile", port,
                "--count", str(count), "--log", self.logf]
        if tls:
            argv += ["--cert", os.path.join(PKI, "server.pem"),
                     "--key", os.path.join(PKI, "server.key")]
        if rate:
            argv += ["--rate", str(rate)]
        if pool:
            argv += ["--pool", str(pool)]
        if end:
            argv.append("--end")
        if close:
            argv.append("--close")
        self.proc = Proc(argv, name=name)
        if not wait_until(lambda: os.path.exists(port), 120):
            raise RuntimeError("the load generator did not start")
        with open(port) as f:
            self.port = int(f.read())
        self.url = ("wss" if tls else "ws") + "://localhost:%d/" % self.port

    def events(self):
        try:
            with open(self.logf) as f:
                return [json.loads(l) for l in f if l.strip()]
        except OSError:
            return []

    def first(self):
        for e in self.events():
            if e["ev"] == "first":
                return e["real_ns"]
        return None

    def sent(self):
        for e in self.events():
            if e["ev"] == "sent":
                return e
        return None

    def stop(self):
        self.proc.stop()


def dcevents_argv(url, ident, journal=False, stdout=False, syslog=None,
                  extra=()):
    # BENCH_DCEVENTS_OPTS: more -o options, e.g. "-o Output.QueueMax=1000".
    return [DCEVENTS] + os.environ.get("BENCH_DCEVENTS_OPTS", "").split() + \
        list(extra) + [
            "-c", "/dev/null",
            "-o", "Stream.URL=" + url,
            "-o", "Stream.CAFile=" + os.path.join(PKI, "ca.pem"),
            "-o", "Stream.AllowInsecure=yes",
            "-o", "Stream.Namespace=" + loadgen.NAMESPACE,
            "-o", "Output.Identifier=" + ident,
            "-o", "Output.Journal=" + ("yes" if journal else "no"),
            "-o", "Output.Stdout=" + ("yes" if stdout else "no"),
            "-o", "Output.Syslog=" + (syslog or "no")]


def pypeer_argv(url, sink, ident):
    return [PY, os.path.join(HERE, "pypeer.py"), url,
            os.path.join(PKI, "ca.pem"), sink, ident]


# ----------------------------------------------------------------- journald

class Journald:
    """A private journald on an empty volatile journal."""

    def __init__(self):
        for name in os.listdir(JOURNAL_DIR):
            shutil.rmtree(os.path.join(JOURNAL_DIR, name), ignore_errors=True)
        d = os.path.dirname(JOURNAL_SOCKET)
        for s in ("socket", "stdout", "dev-log", "io.systemd.journal"):
            try:
                os.unlink(os.path.join(d, s))
            except FileNotFoundError:
                pass
        self.proc = Proc(NO_MANAGER + [JOURNALD], name="journald")
        if not wait_until(lambda: all(os.path.exists(os.path.join(d, s)) for s in
                                      ("socket", "stdout", "dev-log",
                                       "io.systemd.journal")), 10):
            raise RuntimeError("journald did not start")

    def json(self, *matches, fields=None):
        subprocess.run(["journalctl", "--sync"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        argv = ["journalctl", "-D", JOURNAL_DIR, "-q", "--no-pager", "-o", "json"]
        if fields:
            argv.append("--output-fields=" + ",".join(fields))
        r = subprocess.run(argv + list(matches), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def marker(self, ident, timeout):
        """__REALTIME_TIMESTAMP (ns) of the end marker record of ident."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = subprocess.run(
                ["journalctl", "-D", JOURNAL_DIR, "-q", "--no-pager", "-o",
                 "json", "--output-fields=MESSAGE", "MESSAGE_ID=" + PARSE_MID,
                 "SYSLOG_IDENTIFIER=" + ident],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            lines = [l for l in r.stdout.splitlines() if l.strip()]
            if lines:
                return int(json.loads(lines[-1])["__REALTIME_TIMESTAMP"]) * 1000
            time.sleep(0.25)
        return None

    def count(self, ident):
        r = subprocess.run(
            "journalctl -D %s -q --no-pager -o cat "
            "--output-fields=DOCKERCLOUD_UUID SYSLOG_IDENTIFIER=%s "
            "MESSAGE_ID=%s | wc -l" % (JOURNAL_DIR, ident, CONTAINER_MID),
            shell=True, stdout=subprocess.PIPE)
        return int(r.stdout)

    def stop(self):
        self.proc.stop()


# ------------------------------------------------------------------ rsyslog

def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Rsyslog:
    """A private rsyslogd: UDP and TCP (octet counting or LF) inputs on
    loopback, one omfile action with the reception time (microseconds)."""

    seq = 0

    def __init__(self):
        Rsyslog.seq += 1
        n = Rsyslog.seq
        self.file = os.path.join(T, "rsyslog-%d.log" % n)
        self.off = self.count = 0
        work = os.path.join(T, "rsyslog-work-%d" % n)
        os.makedirs(work, exist_ok=True)
        self.udp, self.tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
        conf = os.path.join(T, "rsyslog-%d.conf" % n)
        with open(conf, "w") as f:
            f.write(f'''
global(workDirectory="{work}" processInternalMessages="on"
    maxMessageSize="64k" net.enableDNS="off")
template(name="bench" type="string"
    string="%timegenerated:::date-rfc3339% %syslogtag% %msgid% %structured-data% %msg%\\n")
ruleset(name="bench") {{
    action(type="omfile" file="{self.file}" template="bench")
}}
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{self.udp}" ruleset="bench"
    rcvbufSize="8m")
input(type="imtcp" address="127.0.0.1" port="{self.tcp}" ruleset="bench")
action(type="omfile" file="{T}/rsyslog-internal-{n}.log")
''')
        self.proc = Proc(NO_MANAGER + [RSYSLOGD, "-n", "-f", conf, "-i",
                                       os.path.join(T, "rsyslog-%d.pid" % n)],
                         name="rsyslogd-%d" % n)
        if not wait_until(self._listening, 10):
            raise RuntimeError("rsyslogd did not start: see " + self.proc.errlog.name)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.tcp), 1).close()
        except OSError:
            return False
        with open("/proc/net/udp") as f:
            return any(l.split()[1].endswith(":%04X" % self.udp)
                       for l in f.readlines()[1:])

    def lines(self):
        try:
            with open(self.file, "rb") as f:
                return f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def nlines(self):
        """Lines so far, reading only what was added since the last call:
        the run being measured shares the CPU with this poll."""
        try:
            with open(self.file, "rb") as f:
                f.seek(self.off)
                for buf in iter(lambda: f.read(1 << 20), b""):
                    self.off += len(buf)
                    self.count += buf.count(b"\n")
        except FileNotFoundError:
            pass
        return self.count

    def wait(self, want, sent_done, timeout):
        """Until want lines, or no growth for 2 s once the sender is done."""
        end = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < end:
            n = self.nlines()
            if n >= want:
                return n
            if n != last:
                last, since = n, time.monotonic()
            elif sent_done() and time.monotonic() - since > 2:
                return n
            time.sleep(0.1)
        return self.nlines()

    def stop(self):
        self.proc.stop()


def rfc3339_ns(s):
    return int(datetime.datetime.fromisoformat(s).timestamp() * 1e6) * 1000


# --------------------------------------------------------------- the runs

ROWS = []


def row(sink, who, **kw):
    r = dict(sink=sink, who=who, **kw)
    ROWS.append(r)
    rate = r.get("rate")
    log("%-12s %-34s %s" % (sink, who, "%.0f events/s" % rate if rate else
                            ", ".join("%s=%s" % kv for kv in kw.items())))
    return r


def run_reader(tls, floor=False):
    """The load generator's ceiling (wsread), or with floor the same reader
    linked with all of dcevents' libraries (wsfloor): its peak RSS is the
    least any client of this stack can have here."""
    lg = LoadGen(N_CEIL_READ, tls=tls, end=False, close=True, name="lg-read")
    r = subprocess.run([os.path.join(BIN, "wsfloor" if floor else "wsread"),
                        "localhost", str(lg.port),
                        "tls" if tls else "plain", os.path.join(PKI, "ca.pem")],
                       stdout=subprocess.PIPE, text=True, timeout=120)
    out = dict(kv.split("=") for kv in r.stdout.split())
    first = lg.first()
    lg.stop()
    secs = (int(out["end_real_ns"]) - first) / 1e9
    return row("stdout" if tls else "stdout-ws",
               "%s (%s)" % ("floor: reader + dcevents' libraries" if floor else
                            "ceiling: loadgen -> reader", "wss" if tls else "ws"),
               events=N_CEIL_READ, rate=N_CEIL_READ / secs,
               cpu=int(out["cpu_us"]) / N_CEIL_READ, rss=int(out["hwm_kb"]),
               kind="info" if floor else "ceiling")


def run_yajl():
    dump = os.path.join(T, "dump")
    subprocess.run([PY, os.path.join(HERE, "loadgen.py"), "--dump", dump], check=True)
    r = subprocess.run([os.path.join(BIN, "yajlparse"),
                        os.path.join(dump, "events.jsonl"), str(N_YAJL)],
                       stdout=subprocess.PIPE, text=True, check=True)
    res = {}
    for line in r.stdout.splitlines():
        name, *kv = line.split()
        d = dict(x.split("=") for x in kv)
        res[name] = int(d["cpu_ns"]) / 1000 / int(d["events"])
    row("parse", "ceiling: yajl parse (C, in-process)", events=N_YAJL,
        rate=1e6 / res["yajl"], cpu=res["yajl"], kind="ceiling")
    row("parse", "dcevents json.c (C, in-process)", events=N_YAJL,
        rate=1e6 / res["json.c"], cpu=res["json.c"], kind="info")


def consumer(who, url, sink, ident, stdout=subprocess.DEVNULL, syslog=None,
             extra=()):
    if who == "dcevents":
        argv = dcevents_argv(url, ident, journal=sink == "journal",
                             stdout=sink.startswith("stdout"), syslog=syslog,
                             extra=extra)
    else:
        argv = pypeer_argv(url, {"journal": "journal", "stdout": "stdout",
                                 "stdout-ws": "stdout"}.get(sink, syslog), ident)
    return Proc(argv, stdout=stdout, name=ident)


def finish_consumer(c, sampler):
    hwm = c.status_field("VmHWM")
    samples = sampler.end()
    c.stop()
    return hwm, samples


class Scraper:
    """GET /metrics every second (as Prometheus would) while it runs, from
    a process of its own (not a thread of this one, whose timing it would
    disturb); one line a scrape in its log."""

    CODE = ("import sys, time, urllib.request\n"
            "while True:\n"
            "    try:\n"
            "        urllib.request.urlopen(sys.argv[1], timeout=5).read()\n"
            "        print('ok', flush=True)\n"
            "    except OSError:\n"
            "        pass\n"
            "    time.sleep(1)\n")

    def __init__(self, port):
        self.logf = os.path.join(T, "scraper.log")
        self.out = open(self.logf, "w")
        self.p = subprocess.Popen(
            [PY, "-c", self.CODE, "http://127.0.0.1:%d/metrics" % port],
            stdin=subprocess.DEVNULL, stdout=self.out)

    def stop(self):
        self.p.terminate()
        self.p.wait()
        self.out.close()
        with open(self.logf) as f:
            return sum(1 for _ in f)


def run_stdout(who, n, tls=True, metrics=None, spool=None):
    """metrics: None, "on" (Listen= set, not scraped) or "scraped";
    spool: None or a [Spool] Mode."""
    sink = "stdout" if tls else "stdout-ws"
    ident = "%s-%s" % (who, sink) + ("-" + spool if spool else "")
    lg = LoadGen(n, tls=tls, pool=None, name="lg-" + ident)
    extra, port, scraper = tuple(spool_opts(spool, ident)), None, None
    if metrics:
        port = free_port(socket.SOCK_STREAM)
        extra += ("-o", "Metrics.Listen=127.0.0.1:%d" % port)
    c = consumer(who, lg.url, sink, ident, extra=extra)
    if metrics == "scraped":
        scraper = Scraper(port)
    sampler = RssSampler(c)
    marker = "message skipped: invalid JSON: END"
    t_end = wait_until(lambda: c.seen(marker), 900, 0.005)
    if t_end is None:
        raise RuntimeError("%s: no end marker; see %s" % (ident, c.errlog.name))
    # The writer thread may still be writing: until wchar stands still.
    last, t_last = c.wchar(), real_ns()
    while True:
        time.sleep(0.002)
        w = c.wchar()
        if w == last:
            break
        last, t_last = w, real_ns()
    t_end = max(t_end, t_last)
    scrapes = scraper.stop() if scraper else None
    hwm, samples = finish_consumer(c, sampler)
    first = lg.first()
    lg.stop()
    spool_rm(ident)
    if metrics:
        sink = "metrics"
        who = "%s (Listen=, %s)" % (who, "%d scrapes" % scrapes
                                    if scraper else "not scraped")
    r = row(sink, "%s%s (%s)" % (who, " Spool.Mode=" + spool if spool else "",
                                 "wss" if tls else "ws"), events=n,
            rate=n / ((t_end - first) / 1e9), cpu=c.cpu_us() / n, rss=hwm,
            anon=RssSampler.peak_anon(samples),
            pss=RssSampler.peak_pss(samples), kind="spool" if spool else who,
            split=c.cpu_split(n))
    r["rss_samples"] = samples
    return r


def run_metrics():
    """Throughput to stdout with [Metrics] Listen= set, scraped every second
    and not, alternating RUNS times each; the faster of each counts."""
    runs = {"on": [], "scraped": []}
    for _ in range(RUNS):
        for m in ("on", "scraped"):
            runs[m].append(run_stdout("dcevents", N_STDOUT, True, metrics=m))
    on, scraped = best_of(runs["on"]), best_of(runs["scraped"])
    log("%s metrics: scraped every second: %.0f events/s, not scraped: %.0f "
        "(%+.1f%%; target: at most 1%% less); CPU %.2f vs %.2f µs/event" % (
            "PASS" if scraped["rate"] >= 0.99 * on["rate"] else "FAIL",
            scraped["rate"], on["rate"],
            100 * (scraped["rate"] / on["rate"] - 1), scraped["cpu"],
            on["cpu"]))
    return on, scraped


def nfields(rec):
    """How many fields (repeated ones counted) a journal record has, not
    counting journald's own (_*, __*)."""
    return sum(len(v) if isinstance(v, list) else 1
               for k, v in rec.items() if not k.startswith("_"))


def best_of(runs):
    """The fastest of repeated runs (the others leave the table), with the
    highest peak RSS of them all."""
    best = max(runs, key=lambda r: r["rate"])
    for r in runs:
        if r is not best:
            ROWS.remove(r)
    best["runs"] = [round(r["rate"]) for r in runs]
    for k in ("rss", "anon", "pss"):
        if all(r.get(k) for r in runs):
            best[k] = max(r[k] for r in runs)
    return best


def twice(fn, *args):
    return best_of([fn(*args), fn(*args)])


def run_journal(who, n, spool=None, rate=0):
    """rate: the load generator's events/s (0: as fast as dcevents reads)."""
    ident = "%s-journal" % who + ("-" + spool if spool else "") + (
        "-paced" if rate else "")
    jd = Journald()
    sink0 = jd.proc.cpu_now_us()
    try:
        if who == "ceiling":
            recs = os.path.join(T, "journal-records.bin")
            write_journal_records(recs, n, ident)
            r = subprocess.run([os.path.join(BIN, "jsendv"), recs, str(n), ident],
                               stdout=subprocess.PIPE, text=True, check=True)
            out = dict(kv.split("=") for kv in r.stdout.split())
            t_end = jd.marker(ident, 300)
            sink_cpu = (jd.proc.cpu_now_us() - sink0) / n
            got = jd.count(ident)
            fields = jd.json("SYSLOG_IDENTIFIER=" + ident, "MESSAGE_ID=" + CONTAINER_MID,
                             "-n", "1")
            return row("journal", "ceiling: sd_journal_sendv loop (C)", events=n,
                       received=got,
                       rate=got / ((t_end - int(out["start_real_ns"])) / 1e9),
                       cpu=int(out["cpu_us"]) / n, sink_cpu=sink_cpu,
                       kind="ceiling", fields=nfields(fields[0]))
        lg = LoadGen(n, pool=n, rate=rate, name="lg-" + ident)
        c = consumer(who, lg.url, "journal", ident,
                     extra=spool_opts(spool, ident))
        sampler = RssSampler(c)
        # The sink is polled (a journalctl each time) only once the load
        # generator is done: the poll would take CPU from the run.
        wait_until(lg.sent, 900, 0.05)
        t_end = jd.marker(ident, 900)
        sink_cpu = (jd.proc.cpu_now_us() - sink0) / n
        hwm, samples = finish_consumer(c, sampler)
        first = lg.first()
        lg.stop()
        got = jd.count(ident)
        fields = jd.json("SYSLOG_IDENTIFIER=" + ident, "MESSAGE_ID=" + CONTAINER_MID,
                         "-n", "1")
        spool_rm(ident)
        return row("journal", who + (" Spool.Mode=" + spool if spool else "")
                   + (", paced at %.0f events/s" % rate if rate else ""),
                   events=n, received=got,
                   rate=got / ((t_end - first) / 1e9), cpu=c.cpu_us() / n,
                   rss=hwm, anon=RssSampler.peak_anon(samples),
                   pss=RssSampler.peak_pss(samples),
                   kind="spool" if spool else who,
                   split=c.cpu_split(n), sink_cpu=sink_cpu,
                   fields=nfields(fields[0]))
    finally:
        jd.stop()


def syslog_times(lines):
    """(reception ns of the last event or end marker, the event lines) of an
    rsyslog file; the consumer's own records (connected, stopping) aside."""
    events = [l for l in lines if 'type="container"' in l]
    ends = [l for l in lines if 'type="container"' in l or l.endswith(" END")]
    last = max(rfc3339_ns(l.split(" ", 1)[0]) for l in ends) if ends else None
    return last, events


def run_syslog(who, proto, n):
    sink = "syslog-" + proto
    ident = "%s-%s" % (who, sink)
    rs = Rsyslog()
    port = rs.udp if proto == "udp" else rs.tcp
    sink0 = rs.proc.cpu_now_us()
    try:
        if who == "ceiling":
            recs = os.path.join(T, "syslog-records.bin")
            write_syslog_records(recs, n, ident)
            r = subprocess.run([os.path.join(BIN, "sendsyslog"), recs, str(n),
                                proto, str(port)],
                               stdout=subprocess.PIPE, text=True, check=True)
            out = dict(kv.split("=") for kv in r.stdout.split())
            rs.wait(n + 1, lambda: True, 300)
            sink_cpu = (rs.proc.cpu_now_us() - sink0) / n
            t_end, ev = syslog_times(rs.lines())
            return row(sink, "ceiling: send() loop (C)", events=n, received=len(ev),
                       rate=len(ev) / ((t_end - int(out["start_real_ns"])) / 1e9),
                       cpu=int(out["cpu_us"]) / n, sink_cpu=sink_cpu,
                       kind="ceiling")
        lg = LoadGen(n, pool=n, name="lg-" + ident)
        c = consumer(who, lg.url, sink, ident,
                     syslog="%s://127.0.0.1:%d" % (proto, port) if who == "dcevents"
                     else "%s:%d" % (proto, port))
        sampler = RssSampler(c)
        marker = "message skipped: invalid JSON: END"
        wait_until(lg.sent, 900, 0.05)  # as for the journal
        rs.wait(n + 1, lambda: c.seen(marker), 900)
        sink_cpu = (rs.proc.cpu_now_us() - sink0) / n
        hwm, samples = finish_consumer(c, sampler)
        first = lg.first()
        lg.stop()
        t_end, ev = syslog_times(rs.lines())
        return row(sink, who, events=n, received=len(ev),
                   rate=len(ev) / ((t_end - first) / 1e9), cpu=c.cpu_us() / n,
                   rss=hwm, anon=RssSampler.peak_anon(samples),
                   pss=RssSampler.peak_pss(samples), kind=who,
                   split=c.cpu_split(n), sink_cpu=sink_cpu)
    finally:
        rs.stop()


# -------------------------------------------------------------------- spool

SPOOL_MODES = ("always", "overflow")


def spool_path(ident):
    return os.path.join(T, "spool-%s.db" % ident)


def spool_opts(mode, ident):
    """dcevents' options for [Spool] Mode=mode (none for no spool)."""
    if not mode:
        return []
    spool_rm(ident)
    return ["-o", "Spool.Mode=" + mode, "-o", "Spool.Path=" + spool_path(ident)]


def spool_rm(ident):
    for ext in ("", "-wal", "-shm"):
        try:
            os.unlink(spool_path(ident) + ext)
        except FileNotFoundError:
            pass


def spool_available(mode):
    """Whether this dcevents accepts [Spool] Mode=mode (dcevents -t)."""
    return subprocess.run(
        [DCEVENTS, "-c", "/dev/null", "-o", "Spool.Mode=" + mode, "-o",
         "Spool.Path=" + spool_path("t"), "-t"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0


def spool_build(path, n):
    """A spool holding n events nobody has written, as dcevents' spool.c
    stores them (its schema, its pages of 16 KiB for MaxBytes of 64M and
    more; each row the bytes of one websocket message,
    in arrival order; no position stored yet): the load generator's
    payloads, its pool of POOL distinct events cycled as it sends them.
    Returns the JSON bytes it holds."""
    import sqlite3
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(path + ext):
            os.unlink(path + ext)
    pool = [loadgen.payload(i) for i in range(loadgen.POOL)]
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        "PRAGMA page_size=16384; PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " msg BLOB NOT NULL);"
        "CREATE TABLE positions(output TEXT PRIMARY KEY, id INTEGER NOT NULL);"
        "CREATE TABLE seen(id INTEGER PRIMARY KEY, uuid TEXT NOT NULL)")
    total, i = 0, 0
    while i < n:
        k = min(n - i, 100000)
        db.execute("BEGIN")
        db.executemany("INSERT INTO events(msg) VALUES(?)",
                       ((pool[j % len(pool)],) for j in range(i, i + k)))
        db.execute("COMMIT")
        total += sum(len(pool[j % len(pool)]) for j in range(i, i + k))
        i += k
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return total


def run_replay(n):
    """dcevents started on a spool of n unwritten events, stdout into a
    pipe that wc -l counts: from the start to the last line written.  The
    stream's URL refuses connections: only the replay writes."""
    ident = "dcevents-replay"
    path = spool_path(ident)
    t0 = time.monotonic()
    json_bytes = spool_build(path, n)
    size = os.path.getsize(path)
    log("spool of %d events built in %.1f s: %d bytes for %d JSON bytes"
        % (n, time.monotonic() - t0, size, json_bytes))
    rfd, wfd = os.pipe()
    wc = subprocess.Popen(["wc", "-l"], stdin=rfd, stdout=subprocess.PIPE,
                          text=True)
    os.close(rfd)
    # MaxBytes above what it holds (the default, 256M, is less than
    # 1,000,000 of these events).
    argv = dcevents_argv("wss://localhost:1/", ident, stdout=True,
                         extra=["-o", "Spool.Mode=always",
                                "-o", "Spool.Path=" + path,
                                "-o", "Spool.MaxBytes=%d" % (2 * size)])
    start = real_ns()
    c = Proc(argv, stdout=wfd, name=ident)
    os.close(wfd)
    sampler = RssSampler(c)
    done = wait_until(lambda: c.seen("the replay is done"), 300, 0.01)
    last, t_last = c.wchar(), real_ns()
    while done:
        time.sleep(0.002)
        w = c.wchar()
        if w == last:
            break
        last, t_last = w, real_ns()
    hwm, samples = finish_consumer(c, sampler)
    got = int(wc.communicate(timeout=60)[0])
    # On disk once all is written and dcevents stopped: the file and its WAL.
    after = sum(os.path.getsize(path + ext) for ext in ("", "-wal")
                if os.path.exists(path + ext))
    spool_rm(ident)
    return row("spool-replay", "dcevents: replay at start into stdout",
               events=n, received=got,
               rate=got / ((t_last - start) / 1e9) if done else None,
               secs=(t_last - start) / 1e9 if done else None,
               cpu=c.cpu_us() / n, rss=hwm, anon=RssSampler.peak_anon(samples),
               pss=RssSampler.peak_pss(samples), kind="spool",
               file_bytes=size, json_bytes=json_bytes, after_bytes=after)


def rss_flat(samples, field=2):
    """(ok, early, late): the largest of field (2 RssAnon, 1 VmRSS) in the
    second to fifth tenths of the samples against the last tenth (the
    first tenth holds the start).  Mode=always's RssAnon moves by 300-400
    KiB between samples (the records of a batch of 1,024 handed on at once
    wait in the output's queue), more than a tenth's peak can be relied
    on to catch; a leak still ends above the earlier peak."""
    k = max(1, len(samples) // 10)
    early = max(x[field] for x in samples[k:5 * k])
    late = max(x[field] for x in samples[-k:])
    return late - early <= max(256, early // 20), early, late


def spool_runs(base):
    """The spool rows beside base, the no-spool rows ("stdout",
    "journal"); the modes this dcevents refuses are listed, not run.
    Each sink's modes run in turn, SPOOL_RUNS rounds of no spool, always and
    overflow, so that the targets compare runs made at the same time
    (sp[(sink, "no")], the no-spool runs of these rounds): two no-spool
    runs minutes apart differ by more than the 5% overflow may cost."""
    modes = [m for m in SPOOL_MODES if spool_available(m)]
    for m in SPOOL_MODES:
        if m not in modes:
            log("Spool.Mode=%s: refused by dcevents -t, not run" % m)
    sp = {}
    for sink, run in (("stdout", lambda m: run_stdout(
            "dcevents", N_STDOUT, True, spool=m)),
            ("journal", lambda m: run_journal("dcevents", N_JOURNAL, m))):
        runs = {m: [] for m in [None] + modes}
        for _ in range(SPOOL_RUNS):
            for m in runs:
                runs[m].append(run(m))
        for m, rs in runs.items():
            sp[(sink, m or "no")] = best_of(rs)
        sp[(sink, "no")].update(kind="spool", who=sp[(sink, "no")]["who"] +
                                ", no spool, in turn with the spool rows")
    # Healthy outputs: journald keeps up with events sent at 60% of the
    # best rate it took above.  At full speed it does not: the journal
    # queue reaches QueueMax and Mode=overflow spills, as SPEC 11 says
    # it should, while without a spool reading pauses.
    if "overflow" in modes:
        pace = 0.6 * sp[("journal", "no")]["rate"]
        runs = {None: [], "overflow": []}
        for _ in range(RUNS):
            for m in runs:
                runs[m].append(run_journal("dcevents", N_JOURNAL // 2, m,
                                           rate=pace))
        for m, rs in runs.items():
            sp[("journal-paced", m or "no")] = best_of(rs)
        sp[("journal-paced", "no")].update(kind="spool")
    sp["replay"] = run_replay(N_REPLAY)
    return sp


def spool_targets(base, sp, target):
    """The spool's targets (issue 16, item 7), through target(name, ok,
    detail); ok None: SKIP."""
    # the no-spool runs made in turn with the spool's
    base = {s: sp[(s, "no")] if (s, "no") in sp else base[s]
            for s in ("stdout", "journal")}
    base["journal-paced"] = sp.get(("journal-paced", "no"))
    for s, what in (("stdout", ""),
                    ("journal-paced", " (events paced so that journald keeps "
                     "up)")):
        r = sp.get((s, "overflow"))
        name = "%s: Spool.Mode=overflow within 5%% of no spool%s" % (
            s.split("-")[0], what)
        if r is None or base[s] is None:
            target(name, None, "Mode=overflow not available")
        else:
            target(name, r["rate"] >= 0.95 * base[s]["rate"],
                   "%.0f vs %.0f events/s (%.1f%%); CPU %.2f vs %.2f "
                   "µs/event" % (
                       r["rate"], base[s]["rate"],
                       100 * r["rate"] / base[s]["rate"], r["cpu"],
                       base[s]["cpu"]))
    r = sp.get(("journal", "overflow"))
    if r is not None:
        log("journal at full speed (not a target: journald is slower than "
            "the load generator, the queue full, Mode=overflow spills): "
            "overflow %.0f vs no spool %.0f events/s (%.1f%%)" % (
                r["rate"], base["journal"]["rate"],
                100 * r["rate"] / base["journal"]["rate"]))
    r = sp.get(("stdout", "always"))
    name = "stdout: Spool.Mode=always >= 50% of no spool and >= 100,000 events/s"
    if r is None:
        target(name, None, "Mode=always not available")
    else:
        target(name, r["rate"] >= 0.5 * base["stdout"]["rate"] and
               r["rate"] >= 100000, "%.0f vs %.0f events/s (%.0f%%)" % (
                   r["rate"], base["stdout"]["rate"],
                   100 * r["rate"] / base["stdout"]["rate"]))
        samples = r.get("rss_samples")
        if samples:
            ok, early, late = rss_flat(samples)
            target("stdout: Spool.Mode=always RSS flat over %d events" % N_STDOUT,
                   ok, "RssAnon %d KiB at most in tenths 2-5, %d KiB in the last "
                   "(%d samples)" % (early, late, len(samples)))
    r = sp["replay"]
    target("replay of %d spooled events into stdout in <= 10 s" % r["events"],
           r["secs"] is not None and r["secs"] <= 10 and
           r["received"] == r["events"],
           "%s s, %d lines written (peak RssAnon %s KiB)" % (
               "%.1f" % r["secs"] if r["secs"] is not None else "no end",
               r["received"], r.get("anon")))
    target("spool file <= 1.5x the JSON bytes it holds",
           r["file_bytes"] <= 1.5 * r["json_bytes"],
           "%d bytes for %d JSON bytes (%.2fx); once replayed and "
           "stopped, the file and its WAL hold %d bytes" % (
               r["file_bytes"], r["json_bytes"],
               r["file_bytes"] / r["json_bytes"], r["after_bytes"]))


def percentiles(lat_ns):
    lat = sorted(lat_ns)
    if not lat:
        return None

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6
    return dict(n=len(lat), p50=pct(0.50), p99=pct(0.99), max=lat[-1] / 1e6)


def run_latency(who, sink):
    """LAT_RATE events/s for LAT_SECONDS: send time to the record in the sink."""
    n = int(LAT_RATE * LAT_SECONDS)
    ident = "lat-%s-%s" % (who, sink)
    lat, jd, rs = [], None, None
    if sink == "journal":
        jd = Journald()
    elif sink.startswith("syslog"):
        rs = Rsyslog()
    try:
        lg = LoadGen(n, rate=LAT_RATE, name="lg-" + ident)
        if sink == "stdout":
            rfd, wfd = os.pipe()
            c = consumer(who, lg.url, sink, ident, stdout=wfd)
            os.close(wfd)
            arrivals = []

            def reader():
                buf = b""
                while True:
                    data = os.read(rfd, 1 << 16)
                    t = real_ns()
                    if not data:
                        return
                    buf += data
                    *done, buf = buf.split(b"\n")
                    arrivals.extend((t, l) for l in done)
            rt = threading.Thread(target=reader, daemon=True)
            rt.start()
            wait_until(lambda: len(arrivals) >= n, LAT_SECONDS + 60, 0.05)
            c.stop()
            rt.join(5)
            os.close(rfd)
            for t, l in arrivals:
                ev = json.loads(l)
                if "sent" in ev:
                    lat.append(t - ev["sent"])
        elif sink == "journal":
            c = consumer(who, lg.url, sink, ident)
            jd.marker(ident, LAT_SECONDS + 60)
            c.stop()
            for r in jd.json("SYSLOG_IDENTIFIER=" + ident, "MESSAGE_ID=" + CONTAINER_MID,
                             fields=["DOCKERCLOUD_SENT"]):
                if "DOCKERCLOUD_SENT" in r:
                    lat.append(int(r["__REALTIME_TIMESTAMP"]) * 1000 -
                               int(r["DOCKERCLOUD_SENT"]))
        else:
            proto = sink.split("-")[1]
            port = rs.udp if proto == "udp" else rs.tcp
            c = consumer(who, lg.url, sink, ident,
                         syslog="%s://127.0.0.1:%d" % (proto, port) if who == "dcevents"
                         else "%s:%d" % (proto, port))
            rs.wait(n + 1, lambda: c.seen("invalid JSON: END"), LAT_SECONDS + 60)
            c.stop()
            for l in rs.lines():
                m = re.search(r'sent="(\d+)"', l)
                if m:
                    lat.append(rfc3339_ns(l.split(" ", 1)[0]) - int(m.group(1)))
        lg.stop()
    finally:
        if jd:
            jd.stop()
        if rs:
            rs.stop()
    with open(os.path.join(OUT, "latency-%s-%s.json" % (who, sink)), "w") as f:
        json.dump(lat, f)
    p = percentiles(lat)
    log("latency %-10s %-8s %s" % (sink, who, p))
    return p


# ------------------------------------------------------------------ report

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pk = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", "libevent-2.1-7",
         "libwslay1", "libssl3", "libyajl2", "libsystemd0", "systemd", "rsyslog",
         "python3", "python3-websocket", "python3-systemd"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    mem = "?"
    with open("/proc/meminfo") as f:
        mem = "%d MiB" % (int(f.readline().split()[1]) // 1024)
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=os.uname().release,
                memory=mem, packages=pk.strip().splitlines(),
                loadavg=open("/proc/loadavg").read().split()[:3])


def fmt_rate(v):
    return "%.0f" % v if v is not None else "-"


def verdict(ok):
    return "SKIP" if ok is None else "PASS" if ok else "FAIL"


def run_spool_only():
    """BENCH_ONLY=spool: the no-spool rows it compares with, the spool's
    rows, and its targets."""
    base = {}  # spool_runs() runs the no-spool rows in turn with its own
    sp = spool_runs(base)

    def target(name, ok, detail):
        print("%s  %s: %s" % (verdict(ok), name, detail), flush=True)
    spool_targets(base, sp, target)


def main():
    os.makedirs(OUT, exist_ok=True)
    t0 = time.monotonic()
    m = machine()
    log("machine: %s, %d cores, kernel %s, load average %s at start" % (
        m["cpu"], m["cores"], m["kernel"], " ".join(m["loadavg"])))

    only = os.environ.get("BENCH_ONLY")
    if only:
        # Development: some groups only, rows logged, no table or targets.
        groups = {
            "reader": lambda: (run_reader(True), run_reader(False)),
            "floor": lambda: run_reader(True, floor=True),
            "yajl": run_yajl,
            "stdout": lambda: run_stdout("dcevents", N_STDOUT, tls=True),
            "stdout-ws": lambda: run_stdout("dcevents", N_PLAIN, tls=False),
            "peer-stdout": lambda: run_stdout("pypeer", N_PEER, tls=True),
            "metrics": run_metrics,
            "journal": lambda: [run_journal(w, N_PEER if w == "pypeer" else
                                            N_JOURNAL)
                                for w in ("ceiling", "dcevents", "pypeer")],
            "dce-journal": lambda: run_journal("dcevents", N_JOURNAL),
            "syslog": lambda: [run_syslog(w, p, N_PEER if w == "pypeer" else
                                          N_SYSLOG)
                               for p in ("udp", "tcp")
                               for w in ("ceiling", "dcevents", "pypeer")],
            "syslog-tcp": lambda: [run_syslog(w, "tcp", N_SYSLOG)
                                   for w in ("ceiling", "dcevents")],
            "latency": lambda: [run_latency(w, s) for w in ("dcevents", "pypeer")
                                for s in ("stdout", "journal", "syslog-udp",
                                          "syslog-tcp")],
            "latency-stdout": lambda: [run_latency(w, "stdout")
                                       for w in ("dcevents", "pypeer")],
            "spool": run_spool_only,
            "spool-replay": lambda: run_replay(N_REPLAY),
            "spool-stdout": lambda: [run_stdout("dcevents", N_STDOUT, True,
                                                spool=m)
                                     for m in (None, "always", "overflow")],
        }
        for g in only.split(","):
            groups[g]()
        for r in ROWS:
            r.pop("rss_samples", None)
            print(json.dumps(r))
        return 0

    # Every throughput run is made twice, those into journald and rsyslog
    # RUNS times (ceiling, dcevents and peer alternating), and the faster
    # counts: the machine has 2 cores, and anything else running there
    # shows; the sinks' own speed moves most.
    ceil = {}
    ceil["stdout"] = twice(run_reader, True)
    ceil["stdout-ws"] = twice(run_reader, False)
    floors = [run_reader(True, floor=True) for _ in range(2)]
    floor = min(floors, key=lambda r: r["rss"])
    floors.remove(floor)
    ROWS.remove(floors[0])
    run_yajl()
    dce, peer = {}, {}
    dce["stdout"] = twice(run_stdout, "dcevents", N_STDOUT, True)
    dce["stdout-ws"] = twice(run_stdout, "dcevents", N_PLAIN, False)
    peer["stdout"] = twice(run_stdout, "pypeer", N_PEER, True)
    met_on, met_scraped = run_metrics()
    runs = {"ceiling": [], "dcevents": [], "pypeer": []}
    for _ in range(RUNS):
        runs["ceiling"].append(run_journal("ceiling", N_JOURNAL))
        runs["dcevents"].append(run_journal("dcevents", N_JOURNAL))
        runs["pypeer"].append(run_journal("pypeer", N_PEER))
    ceil["journal"], dce["journal"], peer["journal"] = (
        best_of(runs[w]) for w in ("ceiling", "dcevents", "pypeer"))
    for proto in ("udp", "tcp"):
        s = "syslog-" + proto
        runs = {"ceiling": [], "dcevents": [], "pypeer": []}
        for _ in range(RUNS):
            runs["ceiling"].append(run_syslog("ceiling", proto, N_SYSLOG))
            runs["dcevents"].append(run_syslog("dcevents", proto, N_SYSLOG))
            runs["pypeer"].append(run_syslog("pypeer", proto, N_PEER))
        ceil[s], dce[s], peer[s] = (best_of(runs[w]) for w in
                                    ("ceiling", "dcevents", "pypeer"))
    # The spool's rows (issue 16) beside the no-spool ones.
    spool = spool_runs(dce)
    lat = {}
    for who in ("dcevents", "pypeer"):
        for s in ("stdout", "journal", "syslog-udp", "syslog-tcp"):
            lat[(who, s)] = run_latency(who, s)
    for who, d in (("dcevents", dce), ("pypeer", peer)):
        for s, r in d.items():
            if (who, s) in lat and lat[(who, s)]:
                r.update(lat=lat[(who, s)])
    # ratios
    for s, r in dce.items():
        if s in peer:
            r["x_peer"] = r["rate"] / peer[s]["rate"]
        if s in ceil:
            r["of_ceiling"] = r["rate"] / ceil[s]["rate"]
    for s, r in peer.items():
        if s in ceil:
            r["of_ceiling"] = r["rate"] / ceil[s]["rate"]

    # the table
    order = ["stdout", "stdout-ws", "metrics", "journal", "syslog-udp",
             "syslog-tcp", "parse", "spool-replay"]
    lines = []
    hdr = ("| sink | consumer | events | events/s | CPU µs/event | peak RSS KiB "
           "| of which anon | p50 ms | p99 ms | max ms | × Python peer "
           "| of ceiling |")
    lines.append(hdr)
    lines.append("|" + "---|" * 12)
    kinds = ["ceiling", "dcevents", "spool", "pypeer", "info"]
    for s in order:
        for r in sorted(ROWS, key=lambda r: kinds.index(r["kind"])):
            if r["sink"] != s:
                continue
            lt = r.get("lat") or {}
            ev = "%d" % r["events"]
            if "received" in r and r["received"] != r["events"]:
                ev += " (%d arrived)" % r["received"]
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, r["who"], ev, fmt_rate(r["rate"]),
                "%.2f" % r["cpu"] if r.get("cpu") is not None else "-",
                "%d" % r["rss"] if r.get("rss") else "-",
                "%d" % r["anon"] if r.get("anon") else "-",
                "%.2f" % lt["p50"] if lt else "-",
                "%.2f" % lt["p99"] if lt else "-",
                "%.2f" % lt["max"] if lt else "-",
                "%.1f×" % r["x_peer"] if "x_peer" in r else "-",
                "%.0f%%" % (100 * r["of_ceiling"]) if "of_ceiling" in r else "-"))
    table = "\n".join(lines)

    # targets
    results = []

    def target(name, ok, detail):
        results.append((name, ok, detail))

    for s in ("stdout", "journal", "syslog-udp", "syslog-tcp"):
        d, p, c = dce[s], peer[s], ceil[s]
        if c["rate"] >= 20 * p["rate"]:
            target("%s: >= 20x the Python peer" % s, d["rate"] >= 20 * p["rate"],
                   "%.1fx (%.0f vs %.0f events/s)" % (d["x_peer"], d["rate"], p["rate"]))
        else:
            target("%s: ceiling (%.0f/s) < 20x peer (%.0f/s): >= 85%% of the ceiling"
                   % (s, c["rate"], p["rate"]), d["of_ceiling"] >= 0.85,
                   "%.0f%% of the ceiling" % (100 * d["of_ceiling"]))
    target("journal: >= 85% of the sd_journal_sendv ceiling",
           dce["journal"]["of_ceiling"] >= 0.85,
           "%.0f%% (%.0f of %.0f events/s)" % (100 * dce["journal"]["of_ceiling"],
                                                dce["journal"]["rate"],
                                                ceil["journal"]["rate"]))
    target("metrics: scraped every second costs <= 1% of throughput",
           met_scraped["rate"] >= 0.99 * met_on["rate"],
           "%.0f events/s scraped, %.0f not (%+.1f%%)" % (
               met_scraped["rate"], met_on["rate"],
               100 * (met_scraped["rate"] / met_on["rate"] - 1)))
    target("stdout over TLS: >= 150,000 events/s", dce["stdout"]["rate"] >= 150000,
           "%.0f events/s" % dce["stdout"]["rate"])
    for s in ("stdout", "journal", "syslog-udp", "syslog-tcp"):
        lt = lat.get(("dcevents", s))
        target("%s: p99 latency <= 2 ms at 1,000 events/s" % s,
               bool(lt) and lt["p99"] <= 2.0,
               "p99 %.2f ms (p50 %.2f, max %.2f, %d events)" % (
                   lt["p99"], lt["p50"], lt["max"], lt["n"]) if lt else "no data")
    for s, r in dce.items():
        # The floor is a TLS client's; stdout-ws reads plain TCP.
        over = ("; %+d KiB over the floor" % (r["rss"] - floor["rss"])
                if s != "stdout-ws" else "")
        target("%s: peak RSS <= 8 MiB" % s, r["rss"] <= 8192,
               "VmHWM %d KiB (anonymous at most %s KiB, PSS at most %s KiB%s)"
               % (r["rss"], r.get("anon"), r.get("pss"), over))
    spool_targets(dce, spool, target)
    samples = dce["stdout"]["rss_samples"]
    if samples:
        # The second tenth against the last (the first holds the start).
        k = max(1, len(samples) // 10)
        early = max(x[1] for x in samples[k:2 * k])
        late = max(x[1] for x in samples[-k:])
        target("stdout: RSS flat over %d events" % N_STDOUT,
               late - early <= max(256, early // 20),
               "VmRSS %d KiB in the second tenth, %d KiB in the last "
               "(%d samples)" % (early, late, len(samples)))

    notes = ["journal records: dcevents %d fields, the ceiling %d, the Python "
             "peer %d (journald's own not counted)" % (
                 dce["journal"]["fields"], ceil["journal"]["fields"],
                 peer["journal"]["fields"])]
    notes.append("the floor: a reader that does the TLS handshake and the "
                 "upgrade, then only reads 16 KiB at a time, linked with every "
                 "library dcevents loads, peaks at %d KiB (the lower of two "
                 "runs); no client of this stack can peak lower here"
                 % floor["rss"])
    notes.append("all runs (events/s; the fastest counts): " + "; ".join(
        "%s %s %s" % (r["sink"], r["who"].rsplit(" (", 1)[0] if r["who"].startswith(
            ("dcevents", "pypeer")) else "ceiling", "/".join(map(str, r["runs"])))
        for r in ROWS if "runs" in r))
    for s_, r in dce.items():
        sp = r.get("split")
        if sp:
            notes.append("dcevents %s: user %.2f + sys %.2f µs/event, %.3f "
                         "context switches/event" % (s_, sp["user"], sp["sys"],
                                                     sp["csw"]))
    notes.append("the sink's own CPU (journald, rsyslogd) per event, "
                 "µs, in the run that counts: " + "; ".join(
                     "%s %s %.2f" % (r["sink"], r["who"].split(" ")[0].rstrip(":"),
                                     r["sink_cpu"])
                     for r in ROWS if r.get("sink_cpu") is not None))
    out = [table, ""] + notes + [""]
    for name, ok, detail in results:
        out.append("%s  %s: %s" % (verdict(ok), name, detail))
    elapsed = time.monotonic() - t0
    out.append("")
    out.append("(%s, %d cores, kernel %s; load average at start %s; %.0f s)" % (
        m["cpu"], m["cores"], m["kernel"], " ".join(m["loadavg"]), elapsed))
    print("\n".join(out))

    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    for r in ROWS:
        r.pop("rss_samples", None)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(dict(machine=m, rows=ROWS, elapsed=elapsed,
                       targets=[dict(name=a, ok=b, detail=c) for a, b, c in results],
                       rss_samples=samples), f, indent=1)
    with open(os.path.join(OUT, "throughput.dat"), "w") as f:
        f.write("# sink dcevents pypeer ceiling (events/s)\n")
        for s in ("stdout", "journal", "syslog-udp", "syslog-tcp"):
            f.write('"%s" %.0f %.0f %.0f\n' % (s, dce[s]["rate"], peer[s]["rate"],
                                               ceil[s]["rate"]))
    return 0


if __name__ == "__main__":
    atexit.register(Proc.kill_all)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
