"""kafka.py: the Kafka rows of `make bench` (run by bench/kafka.sh).

Into librdkafka's mock cluster (tests/peers/kafkamock, 3 brokers on
loopback), the same events twice over:

  ceiling   bench/kafkaprod: a bare rd_kafka_producev loop, dcevents'
            producer settings, the same keys, headers and values (the
            load generator's pool of events, each value the JSON line
            Stdout= would write), from the first produce to the last
            delivery report
  dcevents  the load generator (bench/loadgen.py, wss://) -> dcevents
            with [Kafka] as its only output, from the load generator's
            first write to the moment the topic's partitions hold every
            message (their high watermarks, polled every 5 ms)

CPU is user+sys per event of the producing process (all threads: for
dcevents also the websocket, TLS and JSON work), peak RSS its VmHWM.  Each
run is made twice and the faster counts.  Target: dcevents >= 85% of the
ceiling's events/s.  Prints the table and one PASS/FAIL line; exit 1 on
FAIL.

Environment: T, top_srcdir, DCEVENTS, BENCH_BIN (kafkaprod), KAFKAMOCK,
BENCH_SCALE (default 1: 200,000 events a run).
"""
import json, os, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
T = os.environ["T"]
DCEVENTS = os.environ["DCEVENTS"]
PROD = os.path.join(os.environ["BENCH_BIN"], "kafkaprod")
MOCK = os.environ["KAFKAMOCK"]
N = max(1000, int(200_000 * float(os.environ.get("BENCH_SCALE", "1"))))
PKI = os.path.join(T, "pki")
NAMESPACE = "bench"             # loadgen.NAMESPACE


def log(*a):
    print("bench-kafka:", *a, file=sys.stderr, flush=True)


def wait_file(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.02)
    return False


def records():
    """The pool's events as kafkaprod's records (key, headers, value)."""
    d = os.path.join(T, "pool")
    subprocess.run([PY, os.path.join(HERE, "loadgen.py"), "--dump", d],
                   check=True)
    out = os.path.join(T, "records.tsv")
    with open(os.path.join(d, "events.jsonl")) as f, open(out, "w") as o:
        for line in f:
            ev = json.loads(line)
            key = ev.get("resource_uri", "").rstrip("/").rsplit("/", 1)[-1]
            value = json.dumps(dict(ev, namespace=NAMESPACE),
                               separators=(",", ":"), ensure_ascii=False)
            o.write("\t".join([key, ev.get("type", ""), ev.get("action", ""),
                               ev.get("state", ""), NAMESPACE, value]) + "\n")
    return out


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        x = f.read().rsplit(")", 1)[1].split()
    cpu = (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/status" % pid) as f:
        hwm = [int(l.split()[1]) for l in f if l.startswith("VmHWM:")][0]
    return cpu, hwm


def run_ceiling(brokers, recs, i):
    r = subprocess.run([PROD, brokers, "ceil-%d" % i, recs, str(N)],
                       stdout=subprocess.PIPE, check=True)
    j = json.loads(r.stdout)
    return {"rate": N / j["seconds"], "cpu": j["cpu_us"], "rss": j["rss_kb"]}


def run_dcevents(brokers, i):
    topic = "dce-%d" % i
    port = os.path.join(T, "lg%d.port" % i)
    lglog = os.path.join(T, "lg%d.log" % i)
    lg = subprocess.Popen([PY, os.path.join(HERE, "loadgen.py"), "--portfile",
                           port, "--count", str(N), "--log", lglog, "--cert",
                           os.path.join(PKI, "server.pem"), "--key",
                           os.path.join(PKI, "server.key")])
    try:
        if not wait_file(port, 120):
            raise RuntimeError("the load generator did not start")
        url = "wss://localhost:%s/" % open(port).read().strip()
        err = open(os.path.join(T, "dce%d.err" % i), "w")
        dc = subprocess.Popen([DCEVENTS, "-c", "/dev/null",
                               "-o", "Stream.URL=" + url,
                               "-o", "Stream.CAFile=" + os.path.join(PKI, "ca.pem"),
                               "-o", "Stream.Namespace=" + NAMESPACE,
                               "-o", "Output.Journal=no", "-o", "Output.Stdout=no",
                               "-o", "Kafka.Brokers=" + brokers,
                               "-o", "Kafka.Topic=" + topic],
                              stdout=subprocess.DEVNULL, stderr=err)
        try:
            w = subprocess.run([PROD, "-w", brokers, topic, str(N), "600"],
                               stdout=subprocess.PIPE, check=True)
            t_end = int(float(w.stdout))
            cpu, hwm = proc_cpu_rss(dc.pid)
        finally:
            dc.terminate()
            dc.wait()
        first = [json.loads(l) for l in open(lglog) if '"first"' in l][0]
        return {"rate": N / ((t_end - first["real_ns"]) / 1e9),
                "cpu": cpu * 1e6 / N, "rss": hwm}
    finally:
        lg.terminate()
        lg.wait()


def main():
    mock = subprocess.Popen([MOCK, "bench.events"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    brokers = mock.stdout.readline().decode().strip()
    try:
        recs = records()
        runs = {"ceiling": [], "dcevents": []}
        for i in range(2):
            log("run %d: ceiling" % (i + 1))
            runs["ceiling"].append(run_ceiling(brokers, recs, i))
            log("run %d: dcevents" % (i + 1))
            runs["dcevents"].append(run_dcevents(brokers, i))
    finally:
        mock.stdin.close()
        mock.wait()
    best = {k: max(v, key=lambda r: r["rate"]) for k, v in runs.items()}
    print("| sink | who | events | events/s | CPU us/event | peak RSS | "
          "of ceiling |")
    print("|---|---|---|---|---|---|---|")
    for who, name in (("ceiling", "ceiling: rd_kafka_producev loop (C)"),
                      ("dcevents", "dcevents (wss -> Kafka)")):
        r = best[who]
        print("| kafka (mock, 3 brokers) | %s | %d | %.0f | %.1f | %.1f MiB | %.0f%% |"
              % (name, N, r["rate"], r["cpu"], r["rss"] / 1024,
                 100 * r["rate"] / best["ceiling"]["rate"]))
    share = best["dcevents"]["rate"] / best["ceiling"]["rate"]
    ok = share >= 0.85
    print("%s  kafka: >= 85%% of the rd_kafka_producev ceiling: %.0f%% "
          "(%.0f of %.0f events/s)" % ("PASS" if ok else "FAIL", 100 * share,
                                       best["dcevents"]["rate"],
                                       best["ceiling"]["rate"]))
    return 0 if ok else 1


sys.exit(main())
