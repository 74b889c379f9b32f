"""The Python module `m3vit` (python/, docs/PYTHON.md) against independent oracles.

The oracles come from the `m3vit` command line, run once per pytest run on one export (tiny_synthetic,
seed 5): `m3vit run --save-logits` for the logits (bit for bit: the module must hand the input to
the runtime unchanged), `m3vit trace` (the libtorch model) for the routing, `m3vit --version` for the
version; the prediction maps are checked against numpy formulas over the logits.

Run by ctest (python_module), which sets PYTHONPATH to the built module, M3VIT_CLI to the command
line and M3VIT_SOURCE_DIR. By hand:
    PYTHONPATH=build/python M3VIT_CLI=build/m3vit /usr/bin/python3 -m pytest -q tests/python
"""
import json
import os
import struct
import subprocess
import sys
import threading
import types

import matplotlib.image
import numpy as np
import pytest
import torch

import m3vit

SOURCE_DIR = os.environ.get("M3VIT_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SAMPLE = os.path.join(SOURCE_DIR, "assets", "sample.png")  # 96x96, the model's size
SAMPLE_512 = os.path.join(SOURCE_DIR, "assets", "sample_512.png")
CONFIG = os.path.join(SOURCE_DIR, "configs", "tiny_synthetic.yaml")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "python", "plot_tasks.py")
# The command line and the module run on the same number of threads, so the oracle is bit for bit
# whatever the machine's core count.
THREADS = 2


def cli(*args):
    """Runs the m3vit command line; its output appears in the failure when it fails."""
    exe = os.environ.get("M3VIT_CLI")
    if not exe:
        pytest.fail("set M3VIT_CLI to the m3vit command line (ctest does)")
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"m3vit {' '.join(map(str, args))} failed:\n{r.stdout}{r.stderr}"
    return r.stdout


def read_png_rgb8(path):
    """A PNG as uint8 [H, W, 3]. matplotlib gives floats in [0, 1]: the 8-bit values / 255, so
    rounding gets them back exactly (the logits test checks that against the command line's decoder)."""
    img = matplotlib.image.imread(path)
    assert img.dtype == np.float32 and img.shape[2] in (3, 4), (img.dtype, img.shape)
    return np.ascontiguousarray((img[..., :3] * 255).round().astype(np.uint8))


def read_safetensors(path):
    """(header, {name: array}) of a .safetensors file: a little-endian u64 header length, the JSON
    header, then the tensors' bytes (written here so the test needs no safetensors package)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    dtypes = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] not in dtypes:
            continue
        begin, end = t["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return header, tensors


def assert_bitwise_equal(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if got.tobytes() != want.tobytes():
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        pytest.fail(f"{np.count_nonzero(diff)} of {diff.size} values differ, the largest by {diff.max()}")


@pytest.fixture(scope="session")
def oracle(tmp_path_factory):
    """One export and what the command line computes from it, made once for the whole pytest run."""
    d = tmp_path_factory.mktemp("oracle")
    model = d / "model.safetensors"
    cli("export", "--config", CONFIG, "--seed", 5, "--out", model)
    # A normalised input that is no picture: values a uint8 image cannot make.
    x = np.random.default_rng(7).normal(size=(3, 96, 96)).astype(np.float32)
    np.save(d / "x.npy", x)

    def run(name, task, *input_args):
        cli("run", "--model", model, "--task", task, "--threads", THREADS, *input_args,
            "--save-logits", d / f"{name}.npy")
        return np.load(d / f"{name}.npy")[0]  # the file is [1, C, H, W]

    logits = {
        "image_semseg": run("image_semseg", "semseg", "--image", SAMPLE),
        "image_normals": run("image_normals", "normals", "--image", SAMPLE),
        "tensor_semseg": run("tensor_semseg", "semseg", "--input-npy", d / "x.npy"),
        "tensor_depth": run("tensor_depth", "depth", "--input-npy", d / "x.npy"),
        "resized_semseg": run("resized_semseg", "semseg", "--image", SAMPLE_512, "--resize"),
    }
    if "bf16" in m3vit.features:
        logits["bf16_semseg"] = run("bf16_semseg", "semseg", "--image", SAMPLE, "--precision", "bf16")
    int8_model = d / "int8.safetensors"
    if "int8" in m3vit.features:
        cli("calibrate", "--model", model, "--synthetic", 2, "--threads", THREADS, "--out", int8_model)
        cli("run", "--model", int8_model, "--task", "semseg", "--threads", THREADS, "--image", SAMPLE,
            "--precision", "int8", "--save-logits", d / "int8_semseg.npy")
        logits["int8_semseg"] = np.load(d / "int8_semseg.npy")[0]
    (d / "images").mkdir()
    (d / "images" / "sample.png").write_bytes(open(SAMPLE, "rb").read())
    cli("trace", "--config", CONFIG, "--weights", model, "--task", "semseg", "--images", d / "images",
        "--out", d / "trace.safetensors")
    return types.SimpleNamespace(dir=d, model=str(model), int8_model=str(int8_model), x=x, logits=logits,
                                 routing=read_safetensors(d / "trace.safetensors")[1]["topk_idx"][0])


@pytest.fixture(scope="session")
def rt(oracle):
    return m3vit.Runtime(oracle.model, threads=THREADS)


# --- the module and the model ------------------------------------------------------------------

def test_version_and_features_are_the_command_lines_and_the_cpus():
    assert cli("--version").splitlines()[0] == f"m3vit {m3vit.__version__}"
    assert isinstance(m3vit.features, tuple) and "fp32" in m3vit.features
    with open("/proc/cpuinfo") as f:
        flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    assert ("bf16" in m3vit.features) == ("avx512_bf16" in flags)
    assert ("int8" in m3vit.features) == ("avx512_vnni" in flags)


def test_model_attributes_are_the_exports(oracle, rt):
    header, _ = read_safetensors(oracle.model)
    config = json.loads(header["__metadata__"]["m3vit_config"])
    assert rt.config == config
    assert rt.tasks == [t["name"] for t in config["tasks"]] == \
        ["semseg", "human_parts", "sal", "normals", "edge", "depth"]  # configs/tiny_synthetic.yaml
    assert rt.input_size == tuple(config["img_size"]) == (96, 96)
    rt.config["name"] = "changed"  # a copy: the Runtime's own is untouched
    assert rt.config["name"] == "tiny_synthetic"
    assert repr(rt).startswith(f"<m3vit.Runtime '{oracle.model}' 96x96")


# --- logits against `m3vit run --save-logits` --------------------------------------------------

@pytest.mark.parametrize("task", ["semseg", "normals"])
def test_image_logits_equal_the_command_line(oracle, rt, task):
    img = read_png_rgb8(SAMPLE)
    assert img.shape == (96, 96, 3)
    assert_bitwise_equal(rt.run(img, task), oracle.logits[f"image_{task}"])


def test_resized_image_logits_equal_the_command_line(oracle, rt):
    img = read_png_rgb8(SAMPLE_512)
    assert_bitwise_equal(rt.run(img, "semseg", resize=True), oracle.logits["resized_semseg"])


# Every form a normalised tensor may take: each is the same numbers, so each gives the same logits.
TENSOR_FORMS = {
    "float32": lambda x: x,
    "batch of one": lambda x: x[None],
    "read-only": lambda x: np.frombuffer(x.tobytes(), np.float32).reshape(x.shape),
    "float64": lambda x: x.astype(np.float64),
    "strided view": lambda x: np.repeat(x, 2, axis=2)[:, :, ::2],
    "Fortran order": np.asfortranarray,
    "big-endian": lambda x: x.astype(">f4"),
    "torch from_numpy": lambda x: torch.from_numpy(x).numpy(),
    "torch [1,3,H,W]": lambda x: torch.from_numpy(x.copy()).unsqueeze(0).numpy(),
    "torch tensor": lambda x: torch.tensor(x),  # no .numpy(): numpy.asarray takes it
}


@pytest.mark.parametrize("form", TENSOR_FORMS)
def test_tensor_logits_equal_the_command_line(oracle, rt, form):
    x = TENSOR_FORMS[form](oracle.x)
    if form == "strided view":
        assert not x.flags.c_contiguous
    assert_bitwise_equal(rt.run(x, "semseg"), oracle.logits["tensor_semseg"])
    assert_bitwise_equal(rt.run(x, "depth"), oracle.logits["tensor_depth"])


def test_float16_is_converted(rt, oracle):
    # float16 cannot hold the oracle's input; its values widened to float32 are the reference.
    x16 = oracle.x.astype(np.float16)
    assert_bitwise_equal(rt.run(x16, "semseg"), rt.run(x16.astype(np.float32), "semseg"))


def test_task_by_index_equals_task_by_name(oracle, rt):
    want = oracle.logits["tensor_semseg"]
    assert_bitwise_equal(rt.run(oracle.x, 0), want)
    assert_bitwise_equal(rt.run(oracle.x, np.int64(0)), want)
    assert rt.run(oracle.x, 3).shape == (3, 96, 96)  # normals


def test_options_reach_the_runtime(oracle, rt):
    img = read_png_rgb8(SAMPLE)
    rt.run(img, "semseg")
    assert rt.last_timings()["stream_loads"] == 0
    streamed = m3vit.Runtime(oracle.model, experts="stream", layers="stream", threads=THREADS,
                             memory_budget=16 << 20)
    assert_bitwise_equal(streamed.run(img, "semseg"), oracle.logits["image_semseg"])
    t = streamed.last_timings()
    assert t["stream_loads"] > 0 and t["stream_bytes_read"] > 0
    with pytest.raises(ValueError, match="memory budget 1000 bytes"):
        m3vit.Runtime(oracle.model, experts="stream", memory_budget=1000)
    if "bf16" in m3vit.features:
        bf16 = m3vit.Runtime(oracle.model, precision="bf16", threads=THREADS)
        assert_bitwise_equal(bf16.run(img, "semseg"), oracle.logits["bf16_semseg"])
    else:
        with pytest.raises(ValueError, match="bf16"):
            m3vit.Runtime(oracle.model, precision="bf16")
    if "int8" in m3vit.features:
        # The calibrated file (m3vit calibrate) as the command line runs it; a precision that does not
        # match the file is refused, naming it.
        int8 = m3vit.Runtime(oracle.int8_model, precision="int8", threads=THREADS)
        assert_bitwise_equal(int8.run(img, "semseg"), oracle.logits["int8_semseg"])
        with pytest.raises(ValueError, match="int8.safetensors is an int8 file"):
            m3vit.Runtime(oracle.int8_model)
        with pytest.raises(ValueError, match="m3vit calibrate"):
            m3vit.Runtime(oracle.model, precision="int8")
    else:
        with pytest.raises(ValueError, match="VNNI"):
            m3vit.Runtime(oracle.model, precision="int8")


# --- predictions, routing, timings -------------------------------------------------------------

def test_predictions_follow_from_the_logits(oracle, rt):
    img = read_png_rgb8(SAMPLE)
    for task in rt.tasks:
        logits = rt.run(img, task)
        prediction = rt.predict(img, task)
        if task in ("semseg", "human_parts"):
            assert prediction.dtype == np.int64 and prediction.shape == (96, 96)
            np.testing.assert_array_equal(prediction, np.argmax(logits, axis=0))
        elif task == "normals":
            assert prediction.dtype == np.float32 and prediction.shape == (3, 96, 96)
            np.testing.assert_allclose(np.linalg.norm(prediction.astype(np.float64), axis=0), 1, atol=1e-6)
            # the direction of the logits, made unit length
            direction = logits / np.linalg.norm(logits.astype(np.float64), axis=0)
            np.testing.assert_allclose(prediction, direction, atol=1e-6)
        elif task in ("sal", "edge"):
            assert prediction.dtype == np.float32 and prediction.shape == (96, 96)
            np.testing.assert_allclose(prediction, 1 / (1 + np.exp(-logits[0].astype(np.float64))), atol=1e-6, rtol=0)
        else:  # depth, in metres: the logit itself
            assert task == "depth"
            assert_bitwise_equal(prediction, logits[0])


def test_routing_equals_the_libtorch_models(oracle, rt):
    fresh = m3vit.Runtime(oracle.model, threads=THREADS)
    with pytest.raises(ValueError, match="no run"):
        fresh.last_routing()
    fresh.run(read_png_rgb8(SAMPLE), "semseg")
    routing = fresh.last_routing()
    c = fresh.config
    grid_h, grid_w = (s // c["patch_size"] for s in c["img_size"])
    assert routing.dtype == np.int32
    assert routing.shape == (len(c["moe_blocks"]), 1 + grid_h * grid_w, c["moe_top_k"])
    assert routing.min() >= 0 and routing.max() < c["moe_experts"]
    assert all(len(set(ids)) == len(ids) for ids in routing.reshape(-1, c["moe_top_k"]).tolist())
    np.testing.assert_array_equal(routing, oracle.routing)  # `m3vit trace`: the libtorch model


def test_timings_of_the_last_run(rt):
    rt.run(read_png_rgb8(SAMPLE), "sal")
    t = rt.last_timings()
    assert set(t) == {"embed_ms", "attention_ms", "mlp_ms", "moe_ms", "head_ms", "total_ms", "experts_computed",
                      "stream_loads", "stream_bytes_read", "stream_wait_ms"}
    stages = t["embed_ms"] + t["attention_ms"] + t["mlp_ms"] + t["moe_ms"] + t["head_ms"]
    assert 0 < stages <= t["total_ms"] * 1.001 + 0.01
    c = rt.config
    assert 0 < t["experts_computed"] <= len(c["moe_blocks"]) * c["moe_experts"]


# --- errors ------------------------------------------------------------------------------------

def test_missing_file_is_file_not_found(tmp_path):
    path = tmp_path / "no_such_model.safetensors"
    with pytest.raises(FileNotFoundError, match="no_such_model.safetensors"):
        m3vit.Runtime(path)
    with pytest.raises(OSError, match="directory") as e:  # there but unreadable: an OSError, not "not found"
        m3vit.Runtime(tmp_path)
    assert not isinstance(e.value, FileNotFoundError)


def test_truncated_file_is_value_error(oracle, tmp_path):
    data = open(oracle.model, "rb").read()
    for size in (4, len(data) // 2):
        path = tmp_path / f"truncated_{size}.safetensors"
        path.write_bytes(data[:size])
        with pytest.raises(ValueError, match=f"truncated_{size}.safetensors"):
            m3vit.Runtime(path)


@pytest.mark.parametrize("kwargs, message", [
    ({"experts": "ram"}, "experts='ram'"),
    ({"layers": "disk"}, "layers='disk'"),
    ({"precision": "fp16"}, "precision='fp16'"),
    ({"threads": 0}, "threads=0"),
    ({"memory_budget": -1}, "memory_budget=-1"),
])
def test_bad_options_are_value_errors(oracle, kwargs, message):
    with pytest.raises(ValueError, match=message):
        m3vit.Runtime(oracle.model, **kwargs)


def test_options_of_the_wrong_type_are_type_errors(oracle):
    with pytest.raises(TypeError, match="threads"):
        m3vit.Runtime(oracle.model, threads=1.5)
    with pytest.raises(TypeError):
        m3vit.Runtime(oracle.model, "stream")  # the options are keyword-only


def bad_inputs(x):
    """(input, task, keyword arguments, exception, message) for each wrong call."""
    img = read_png_rgb8(SAMPLE)
    nan = x.copy()
    nan[1, 2, 3] = np.nan
    return [
        (x, "segm", {}, ValueError, "unknown task 'segm'"),
        (x, 6, {}, ValueError, "task=6 is out of range"),
        (x, -1, {}, ValueError, "task=-1 is out of range"),
        (x, 1.0, {}, TypeError, "task must be"),
        (x, True, {}, TypeError, "task must be"),
        (img[:64, :80], "semseg", {}, ValueError, "80x64 but model tiny_synthetic takes 96x96"),
        (img[:, :, 0], "semseg", {}, ValueError, r"x has shape \(96, 96\); a uint8 image must be"),
        (np.zeros((96, 96, 4), np.uint8), "semseg", {}, ValueError, "a uint8 image must be"),
        (x.astype(np.int32), "semseg", {}, ValueError, "x has dtype int32"),
        (x.astype(bool), "semseg", {}, ValueError, "x has dtype bool"),
        (x.transpose(1, 2, 0), "semseg", {}, ValueError, r"x has shape \(96, 96, 3\); a float tensor must be"),
        (x[None, None], "semseg", {}, ValueError, "a float tensor must be"),
        (x[:, :48], "semseg", {}, ValueError, "a float tensor must be"),
        (x, "semseg", {"resize": True}, ValueError, "resize=True scales a uint8 image"),
        (nan, "semseg", {}, ValueError, "NaN"),
        ("picture.png", "semseg", {}, ValueError, "x has dtype <U11"),
        (None, "semseg", {}, ValueError, "x has dtype object"),
    ]


def test_every_bad_run_raises_and_leaves_the_runtime_usable(oracle, rt):
    for x, task, kwargs, error, message in bad_inputs(oracle.x):
        for call in (rt.run, rt.predict):
            with pytest.raises(error, match=message):
                call(x, task, **kwargs)
    assert_bitwise_equal(rt.run(oracle.x, "semseg"), oracle.logits["tensor_semseg"])


def test_error_messages_are_one_line(oracle, rt):
    with pytest.raises(ValueError) as e:
        rt.run(oracle.x, "segm")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError) as e:
        rt.run(np.zeros((64, 80, 3), np.uint8), "semseg")
    assert "\n" not in str(e.value)


# --- threads -----------------------------------------------------------------------------------

def test_two_runtimes_in_two_threads_equal_serial_runs(oracle):
    img = read_png_rgb8(SAMPLE)
    inputs = [img, oracle.x]  # one thread runs the picture, the other the tensor
    runtimes = [m3vit.Runtime(oracle.model, threads=1) for _ in inputs]
    serial = [{task: r.run(x, task) for task in r.tasks} for r, x in zip(runtimes, inputs)]
    results = [{} for _ in inputs]
    errors = []

    def work(i):
        try:
            for _ in range(3):
                for task in runtimes[i].tasks:
                    results[i].setdefault(task, []).append(runtimes[i].run(inputs[i], task))
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(len(inputs)):
        for task, runs in results[i].items():
            assert len(runs) == 3
            for logits in runs:
                assert_bitwise_equal(logits, serial[i][task])


def test_run_releases_the_gil(oracle):
    """While a thread is inside Runtime.run, another thread runs Python code.

    With a switch interval of 1000 s the interpreter never takes the GIL away from a running thread,
    so the main thread gets it back from the worker only when the worker gives it up itself: inside
    run (if the module releases it there) or when the worker ends. `start()` returns once the main
    thread has the GIL again; the worker is then still alive only if run released it. (It runs
    several times so that the main thread, even if the OS is slow to wake it, meets one of the runs.)
    """
    rt = m3vit.Runtime(oracle.model, threads=1)
    x = oracle.x  # a float32 tensor: the run is the only call into the library
    rt.run(x, "semseg")  # the first run sets up the runtime's kernels

    def work():
        for _ in range(5):
            rt.run(x, "semseg")

    worker = threading.Thread(target=work)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        worker.start()
        alive_while_running = worker.is_alive()
    finally:
        sys.setswitchinterval(interval)
        worker.join()
    assert alive_while_running, "the worker held the GIL for all of its runs"


# --- the example ----------------------------------------------------------------------------------

def test_plot_example_writes_a_picture(oracle, tmp_path):
    out = tmp_path / "tasks.png"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, EXAMPLE, oracle.model, SAMPLE, out, "--threads", "1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"wrote {out}" in r.stdout
    picture = matplotlib.image.imread(out)[..., :3]  # RGB in [0, 1]
    assert picture.shape[1] > 3 * picture.shape[0]  # the input and six panels side by side
    # Not blank: a good share of the figure is not the white background, in many colours.
    assert np.mean(picture.min(axis=2) < 0.9) > 0.2
    assert len(np.unique((picture * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 100
