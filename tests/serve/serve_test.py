"""`m3vit serve` over real HTTP on loopback (run by tests/serve/serve.sh; docs/SERVE.md "Tests").

The oracle is the command line: every picture and every logits file the server sends must be byte-equal
to what `m3vit run --out / --save-logits` writes for the same input and task, every error message the
one `m3vit run` prints for the same bad input (with the file's name replaced by "request body"), and
the expert usage the routing `m3vit trace` records (the libtorch model) for the same image.

Usage: serve_test.py M3VIT_BINARY WORK_DIR SOURCE_DIR   (WORK_DIR holds model.safetensors)
The standard library, numpy, and matplotlib to read the screenshot (all Debian packages).
"""
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import matplotlib.image
import numpy as np

M3VIT, WORK, SRC = sys.argv[1:4]
MODEL = os.path.join(WORK, "model.safetensors")
SAMPLE = os.path.join(SRC, "assets", "sample.png")          # the model's size (96x96)
SAMPLE_512 = os.path.join(SRC, "assets", "sample_512.png")  # another size: needs resize=1
THREADS = "1"  # the CLI and the server's engines alike, so that their arithmetic is the same
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL", what, flush=True)


def log(*a):
    print(*a, flush=True)


# ---- the oracle: the command line ------------------------------------------------------------------

def path_in(name):
    return os.path.join(WORK, name)


def write(name, data):
    with open(path_in(name), "wb") as f:
        f.write(data)
    return path_in(name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def cli_run(task, input_path, resize=False):
    """(png bytes, npy bytes) that `m3vit run` writes for the input and task."""
    stem = f"cli_{os.path.basename(input_path)}_{task}{'_r' if resize else ''}"
    is_npy = input_path.endswith(".npy")
    cmd = [M3VIT, "run", "--model", MODEL, "--task", task, "--input-npy" if is_npy else "--image", input_path,
           "--threads", THREADS, "--out", path_in(stem + ".png"), "--save-logits", path_in(stem + ".npy")]
    if resize:
        cmd.append("--resize")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return read(path_in(stem + ".png")), read(path_in(stem + ".npy"))


def cli_error(args):
    """The one-line message `m3vit run ARGS` prints for a bad input (exit code 2)."""
    p = subprocess.run([M3VIT, "run", "--model", MODEL, "--threads", THREADS] + args, capture_output=True, text=True)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("m3vit: error: "), line
    return line[len("m3vit: error: "):]


def trace_counts(task, image):
    """Tokens per expert per MoE layer for one image, from `m3vit trace` (the libtorch model)."""
    d = path_in("trace_" + task)
    os.makedirs(d, exist_ok=True)
    shutil.copy(image, d)
    out = path_in(f"trace_{task}.safetensors")
    subprocess.run([M3VIT, "trace", "--config", os.path.join(SRC, "configs", "tiny_synthetic.yaml"), "--weights", MODEL,
                    "--task", task, "--images", d, "--out", out, "--threads", THREADS], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw = read(out)  # safetensors: u64 header length, JSON header, data
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    t = head["topk_idx"]
    a, b = t["data_offsets"]
    idx = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.int32).reshape(t["shape"])  # [images, layers, tokens, k]
    experts = json.loads(head["__metadata__"]["m3vit_config"])["moe_experts"]
    return [np.bincount(layer.ravel(), minlength=experts).tolist() for layer in idx[0]]


# ---- the server ------------------------------------------------------------------------------------

class Server:
    def __init__(self, *extra, model=MODEL):
        self.proc = subprocess.Popen([M3VIT, "serve", "--model", model, "--port", "0", "--threads", THREADS] + list(extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "serving  M (name, WxH) on http://HOST:PORT/ ..."
        m = re.search(r"http://([\d.]+):(\d+)/", line)
        assert m, "no address in the server's first line: %r %s" % (line, self.proc.stderr.read())
        self.host, self.port = m.group(1), int(m.group(2))
        self.made = Counter()  # (path, status) of every answer received, for /metrics

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=120)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        headers = dict(r.getheaders())
        c.close()
        self.made[(path.split("?")[0], r.status)] += 1
        return r.status, headers, data

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200
        return body.decode()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        out = self.proc.stdout.read()
        return rc, out


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else 0.0


def error_of(body):
    return json.loads(body)["error"]


def as_body(cli_message, path):
    """The CLI's message for a file, as the server says it for the same bytes in a request body."""
    return cli_message.replace(path, "request body").replace("pass --resize to scale it",
                                                               "add resize=1 to the URL to scale it")


# ---- inputs and their expected answers -------------------------------------------------------------

rng = np.random.default_rng(7)
x = rng.standard_normal((1, 3, 96, 96)).astype(np.float32)
buf = io.BytesIO()
np.save(buf, x)
NPY = write("noise.npy", buf.getvalue())
buf = io.BytesIO()
np.save(buf, x[0].astype(np.float64))  # [3, H, W] float64: the CLI takes it too
NPY64 = write("noise64.npy", buf.getvalue())

TASKS = ["semseg", "depth", "normals", "sal"]
INPUTS = [(SAMPLE, False), (SAMPLE_512, True), (NPY, False), (NPY64, False)]
log("oracle: m3vit run on", len(INPUTS), "inputs x", len(TASKS), "tasks")
expected = {}  # (input, task) -> (png, npy)
for inp, resize in INPUTS:
    for task in TASKS:
        expected[(inp, task)] = cli_run(task, inp, resize)


def predict_path(task, fmt, resize=False, extra=""):
    return f"/v1/predict?task={task}&format={fmt}" + ("&resize=1" if resize else "") + extra


# ---- 1. every endpoint, every bad input ------------------------------------------------------------

def test_endpoints():
    s = Server("--workers", "1", "--queue", "4", "--max-body", "300K")
    try:
        st, h, body = s.request("GET", "/healthz")
        check(st == 200 and body.strip() == b"ok", "GET /healthz")

        st, h, body = s.request("GET", "/v1/model")
        info = json.loads(body)
        raw = read(MODEL)  # the export's own metadata: the config the server must report
        n = struct.unpack("<Q", raw[:8])[0]
        cfg = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["m3vit_config"])
        check(st == 200 and info["config"] == cfg, "GET /v1/model: config equals the export's metadata")
        check([t["name"] for t in info["tasks"]] == [t["name"] for t in cfg["tasks"]], "GET /v1/model: tasks")
        check(info["input"] == {"channels": 3, "height": cfg["img_size"][0], "width": cfg["img_size"][1]},
              "GET /v1/model: input size")
        for t in info["tasks"]:
            if t["name"] in TASKS:
                c = np.load(io.BytesIO(expected[(SAMPLE, t["name"])][1])).shape[1]
                check(t["channels"] == c, f"GET /v1/model: channels of {t['name']}")

        st, h, body = s.request("GET", "/")
        page = body.decode()
        check(st == 200 and h.get("Content-Type", "").startswith("text/html"), "GET /: HTML")
        check(not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "@import" not in page,
              "GET /: no external asset")
        st, h, body = s.request("GET", "/sample.png")
        check(st == 200 and body == read(SAMPLE), "GET /sample.png is assets/sample.png")

        # Every format, against the CLI.
        for inp, resize in INPUTS:
            data = read(inp)
            for task in TASKS:
                png, npy = expected[(inp, task)]
                st, h, body = s.request("POST", predict_path(task, "png", resize), data)
                check(st == 200 and body == png, f"png {os.path.basename(inp)} {task} equals m3vit run --out")
                st, h, body = s.request("POST", predict_path(task, "npy", resize), data)
                check(st == 200 and body == npy, f"npy {os.path.basename(inp)} {task} equals --save-logits")
        # A body labelled as a form (curl's default for --data-binary) is still the image.
        st, h, body = s.request("POST", predict_path("semseg", "png", True), read(SAMPLE_512),
                                {"Content-Type": "application/x-www-form-urlencoded"})
        check(st == 200 and body == expected[(SAMPLE_512, "semseg")][0], "a 26 KB body sent as a form is the image")
        # JSON: shape, times, expert usage (against m3vit trace), the picture.
        for task in ["semseg", "depth"]:
            st, h, body = s.request("POST", predict_path(task, "json", extra="&picture=1"), read(SAMPLE))
            j = json.loads(body)
            c = np.load(io.BytesIO(expected[(SAMPLE, task)][1])).shape
            check(st == 200 and j["shape"] == list(c), f"json {task}: shape {j.get('shape')} vs {c}")
            t = j["timing_ms"]
            check(all(k in t for k in ["embed", "attention", "mlp", "moe", "head", "total", "queue"]) and t["total"] > 0
                  and t["total"] >= t["embed"] + t["attention"] + t["head"] - 1e-6, f"json {task}: timing {t}")
            check([l["block"] for l in j["moe_layers"]] == cfg["moe_blocks"], f"json {task}: MoE blocks")
            want = trace_counts(task, SAMPLE)
            got = [l["tokens_per_expert"] for l in j["moe_layers"]]
            check(got == want, f"json {task}: expert usage {got} equals m3vit trace {want}")
            check(base64.b64decode(j["picture_png_base64"]) == expected[(SAMPLE, task)][0], f"json {task}: picture")
            st, h, body = s.request("POST", predict_path(task, "json"), read(SAMPLE))
            check("picture_png_base64" not in json.loads(body), "json without picture=1 has no picture")

        # Bad input: the CLI's message for the same bytes, and the right status.
        junk = write("junk.png", b"this is not an image at all")
        small = rng.standard_normal((3, 32, 32)).astype(np.float32)
        b = io.BytesIO(); np.save(b, small); small_npy = write("small.npy", b.getvalue())
        b = io.BytesIO(); np.save(b, np.zeros((1, 3, 96, 96), np.int32)); int_npy = write("int.npy", b.getvalue())
        nan = x.copy(); nan[0, 1, 2, 3] = np.nan
        b = io.BytesIO(); np.save(b, nan); nan_npy = write("nan.npy", b.getvalue())
        cases = [
            ("unreadable image", junk, "semseg", False, 400, ["--task", "semseg", "--image", junk]),
            ("image of another size", SAMPLE_512, "semseg", False, 400, ["--task", "semseg", "--image", SAMPLE_512]),
            (".npy of the wrong shape", small_npy, "depth", False, 400, ["--task", "depth", "--input-npy", small_npy]),
            (".npy of int32", int_npy, "depth", False, 400, ["--task", "depth", "--input-npy", int_npy]),
            (".npy with NaN", nan_npy, "depth", False, 400, ["--task", "depth", "--input-npy", nan_npy]),
            ("unknown task", SAMPLE, "segmentation", False, 404, ["--task", "segmentation", "--image", SAMPLE]),
        ]
        for what, path, task, resize, want_status, cli_args in cases:
            st, h, body = s.request("POST", predict_path(task, "png", resize), read(path))
            want = as_body(cli_error(cli_args), path)
            check(st == want_status and error_of(body) == want,
                  f"{what}: {st} {body!r}, want {want_status} {want!r}")
        for what, path, want_status, word in [
            ("unknown format", predict_path("semseg", "gif"), 400, "format"),
            ("bad resize value", predict_path("semseg", "png", extra="&resize=yes"), 400, "resize"),
            ("no task", "/v1/predict?format=png", 400, "task"),
        ]:
            st, h, body = s.request("POST", path, read(SAMPLE))
            check(st == want_status and word in error_of(body), f"{what}: {st} {body!r}")
        st, h, body = s.request("POST", predict_path("semseg", "png"), b"")
        check(st == 400 and "empty" in error_of(body), f"empty body: {st} {body!r}")
        st, h, body = s.request("POST", predict_path("semseg", "png"), b"\0" * (400 << 10))
        check(st == 413 and "--max-body" in error_of(body), f"body over --max-body: {st} {body!r}")
        st, h, body = s.request("GET", "/no/such/page")
        check(st == 404 and "no such endpoint" in error_of(body), f"unknown path: {st} {body!r}")
        st, h, body = s.request("GET", "/healthz")
        check(st == 200, "still up after every bad input")

        # /metrics: every answer counted under its route and status.
        text = s.metrics()
        for (path, status), n in sorted(s.made.items()):
            if path == "/metrics":
                continue  # a scrape is counted once it has been answered, after the text was made
            label = path if path in ["/", "/sample.png", "/healthz", "/metrics", "/v1/model", "/v1/predict"] else "other"
            got = metric(text, "m3vit_http_requests_total", f'{{path="{label}",code="{status}"}}')
            check(got == n, f"/metrics: {label} {status} counted {got}, made {n}")
        predicted = sum(n for (p, st), n in s.made.items() if p == "/v1/predict" and st != 413)
        check(metric(text, "m3vit_predict_latency_seconds_count") == predicted, "/metrics: latency histogram count")
        check(metric(text, "m3vit_predict_latency_seconds_bucket", '{le="+Inf"}') == predicted, "/metrics: +Inf bucket")
        check(metric(text, "m3vit_queue_length") == 0 and metric(text, "m3vit_queue_capacity") == 4, "/metrics: queue")
    finally:
        rc, out = s.stop()
    check(rc == 0, f"exit code after SIGTERM: {rc}")


# ---- 2. concurrent clients -------------------------------------------------------------------------

def test_concurrency(workers):
    s = Server("--workers", str(workers), "--queue", "2")
    jobs = [(INPUTS[(c + r) % len(INPUTS)], TASKS[(c * 3 + r) % len(TASKS)], ["png", "npy"][r % 2])
            for c in range(8) for r in range(20)]

    def client(c):
        answers = []
        conn = http.client.HTTPConnection(s.host, s.port, timeout=120)  # one keep-alive connection per client
        for r in range(20):
            (inp, resize), task, fmt = jobs[c * 20 + r]
            conn.request("POST", predict_path(task, fmt, resize), body=read(inp))
            resp = conn.getresponse()
            answers.append((inp, task, fmt, resp.status, resp.getheader("Retry-After"), resp.read()))
        conn.close()
        return answers

    with ThreadPoolExecutor(8) as ex:
        answers = [a for chunk in ex.map(client, range(8)) for a in chunk]
    statuses = Counter(a[3] for a in answers)
    log(f"concurrency, {workers} worker(s), queue 2: {dict(statuses)}")
    check(len(answers) == 160, f"every request answered ({len(answers)} of 160)")
    check(set(statuses) <= {200, 503}, f"only 200 and 503: {statuses}")
    check(statuses[200] > 0, "some requests ran")
    for inp, task, fmt, st, retry, body in answers:
        if st == 200:
            want = expected[(inp, task)][0 if fmt == "png" else 1]
            check(body == want, f"concurrent {fmt} {os.path.basename(inp)} {task} equals m3vit run")
        else:
            check(retry is not None and int(retry) > 0 and "retry" in error_of(body), f"503 with Retry-After: {body!r}")
    text = s.metrics()
    for code in [200, 503]:
        got = metric(text, "m3vit_http_requests_total", f'{{path="/v1/predict",code="{code}"}}')
        check(got == statuses[code], f"/metrics: {code} counted {got}, answered {statuses[code]}")
    check(metric(text, "m3vit_predict_latency_seconds_count") == 160, "/metrics: 160 latencies")
    check(metric(text, "m3vit_requests_in_flight") == 0 and metric(text, "m3vit_queue_length") == 0,
          "/metrics: nothing left in flight")
    rc, _ = s.stop()
    check(rc == 0, f"exit code after SIGTERM: {rc}")


# ---- 3. SIGTERM with requests in flight, SIGINT ----------------------------------------------------

def raw_request_start(s, path, body):
    """A request whose headers and first half of the body are sent: the server is reading it."""
    sock = socket.create_connection((s.host, s.port), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: {s.host}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    sock.sendall(head.encode() + body[:len(body) // 2])
    return sock


def raw_request_finish(sock, body):
    sock.sendall(body[len(body) // 2:])
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, payload


def test_sigterm():
    s = Server("--workers", "1", "--queue", "8")
    data = read(SAMPLE)
    tasks = ["semseg", "depth", "normals", "sal"]
    socks = [raw_request_start(s, predict_path(t, "npy"), data) for t in tasks]
    time.sleep(0.5)  # accepted, and their threads are reading the bodies
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    try:
        socket.create_connection((s.host, s.port), timeout=5).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "after SIGTERM no new connection is accepted")
    # The rest of the bodies: all four queue for the one worker while the server is stopping.
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda p: raw_request_finish(*p), zip(socks, [data] * 4)))
    for t, (st, payload) in zip(tasks, results):
        check(st == 200 and payload == expected[(SAMPLE, t)][1], f"in flight at SIGTERM: {t} answered {st}, equal to the CLI")
    rc = s.proc.wait(timeout=60)
    check(rc == 0, f"exit code after SIGTERM with requests in flight: {rc}")

    s = Server()
    st, _, _ = s.request("GET", "/healthz")
    rc, out = s.stop(signal.SIGINT)
    check(st == 200 and rc == 0 and "stopped" in out, f"SIGINT: exit code {rc}")


# ---- 4. the page in headless Chromium --------------------------------------------------------------

def chromium(args, url):
    # --virtual-time-budget lets the page's own timers and fetches run on virtual time and dumps the DOM
    # once the budget is spent or nothing is left pending; the page's fetches to the server hold virtual
    # time back until they are answered, so the predictions are in the DOM when it is dumped.
    cmd = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--user-data-dir=" + path_in("chromium-profile"), "--virtual-time-budget=30000"] + args + [url]
    return subprocess.run(cmd, capture_output=True, timeout=240, cwd=WORK)


def test_page():
    if not os.path.exists("/usr/bin/chromium"):
        check(False, "/usr/bin/chromium is missing (scripts/install-deps.sh installs it)")
        return
    s = Server("--workers", "1", "--queue", "4")
    try:
        url = f"http://{s.host}:{s.port}/?sample=1&tasks=semseg,depth&run=1"
        p = chromium(["--dump-dom"], url)
        dom = p.stdout.decode(errors="replace")
        imgs = re.findall(r'<img[^>]*class="prediction"[^>]*>', dom)
        tasks = sorted(re.search(r'data-task="([^"]+)"', i).group(1) for i in imgs)
        check(tasks == ["depth", "semseg"], f"page: one prediction <img> per chosen task, got {tasks}"
              + ("" if tasks else ": " + dom[-2000:] + p.stderr.decode(errors="replace")[-2000:]))
        check('data-state="done"' in dom, "page: the runs finished")
        check(dom.count("<rect") == 2 * 3 * 8, "page: a heat map of 3 MoE layers x 8 experts per task")
        for i in imgs:
            t = re.search(r'data-task="([^"]+)"', i).group(1)
            b64 = re.search(r'src="data:image/png;base64,([^"]+)"', i).group(1)
            check(base64.b64decode(b64) == expected[(SAMPLE, t)][0], f"page: the {t} picture equals m3vit run --out")
        shot = path_in("page.png")
        p = chromium(["--screenshot=" + shot, "--window-size=1000,700", "--hide-scrollbars"], url)
        check(os.path.exists(shot), "page: screenshot written " + p.stderr.decode(errors="replace")[-1000:])
        if os.path.exists(shot):
            px = matplotlib.image.imread(shot)[:, :, :3].astype(np.float64) * 255
            log(f"page screenshot {px.shape[1]}x{px.shape[0]}, pixel std {px.std():.1f}")
            check(px.std() > 10, f"page: screenshot not blank (std {px.std():.1f})")
            # The prediction pictures bring colours the page's greys do not have.
            saturated = (px.max(axis=2) - px.min(axis=2) > 60).mean()
            check(saturated > 0.01, f"page: coloured pictures in the screenshot ({saturated:.3f} of the pixels)")
            if os.environ.get("M3VIT_SERVE_KEEP"):  # a folder to keep the screenshot in, for a look
                shutil.copy(shot, os.path.join(os.environ["M3VIT_SERVE_KEEP"], "page.png"))
    finally:
        rc, _ = s.stop()
    check(rc == 0, "exit code after the page test")


def test_int8():
    """--precision int8 serves the calibrated file as `m3vit run --precision int8` runs it; a server asked for
    int8 on an fp32 export refuses to start, naming the file (on a CPU without VNNI: naming VNNI)."""
    with open("/proc/cpuinfo") as f:
        vnni = " avx512_vnni" in f.read()
    p = subprocess.run([M3VIT, "serve", "--model", MODEL, "--port", "0", "--precision", "int8"], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 2 and ("m3vit calibrate" in p.stderr if vnni else "VNNI" in p.stderr),
          f"serve --precision int8 on an fp32 export is refused: {p.stderr.strip()}")
    if not vnni:
        return
    q8 = path_in("int8.safetensors")
    subprocess.run([M3VIT, "calibrate", "--model", MODEL, "--synthetic", "2", "--threads", THREADS, "--out", q8],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    npy = path_in("cli_int8_semseg.npy")
    subprocess.run([M3VIT, "run", "--model", q8, "--precision", "int8", "--task", "semseg", "--image", SAMPLE,
                    "--threads", THREADS, "--save-logits", npy], check=True, stdout=subprocess.DEVNULL)
    s = Server("--precision", "int8", model=q8)
    try:
        st, h, body = s.request("POST", predict_path("semseg", "npy"), read(SAMPLE))
        check(st == 200 and body == read(npy), "int8: npy equals m3vit run --precision int8 --save-logits")
        st, h, body = s.request("POST", predict_path("semseg", "npy"), b"not an image")
        check(st == 400, f"int8: a bad body is answered 400 (got {st})")
    finally:
        rc, _ = s.stop()
    check(rc == 0, "exit code of the int8 server")


for name, fn in [("endpoints and bad input", test_endpoints), ("int8", test_int8), ("concurrency, 1 worker", lambda: test_concurrency(1)),
                 ("concurrency, 2 workers", lambda: test_concurrency(2)), ("SIGTERM", test_sigterm),
                 ("page in Chromium", test_page)]:
    t0 = time.time()
    log(f"--- {name}")
    try:
        fn()
    except Exception as e:  # a broken test is a failure, and the others still run
        import traceback
        traceback.print_exc()
        check(False, f"{name}: {e!r}")
    log(f"--- {name}: {time.time() - t0:.1f} s")

if failures:
    log(f"{len(failures)} failure(s)")
    sys.exit(1)
log("all serve checks passed")
