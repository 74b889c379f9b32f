#!/usr/bin/python3
"""Self-checks of the parity oracle (m3vit_ref.py, safetensors_np.py, run_oracle.py).

The oracle is what the C++ model is judged against, so each of its hand-written pieces is checked
here against a second computation: torch's own kernels (LayerNorm, BatchNorm, GELU, interpolate,
MultiheadAttention), a per-token loop in numpy over the chosen experts (the MoE), and numbers
worked out by hand (the router, cv²). Run: /usr/bin/python3 tests/oracle/self_test.py
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
import m3vit_ref as ref  # noqa: E402
import safetensors_np as st  # noqa: E402

D64 = torch.float64


def tiny_config(gate="multi", tasks=(("semseg", 21), ("sal", 1)), tam=False, img=(64, 96)):
    return {
        "name": "tiny", "img_size": list(img), "patch_size": 16, "in_chans": 3, "embed_dim": 24,
        "depth": 2, "num_heads": 4, "mlp_ratio": 2.0, "qkv_bias": True, "ln_eps": 1e-6,
        "moe_blocks": [1], "moe_experts": 4, "moe_top_k": 2, "moe_mlp_ratio": 1.0, "gate": gate,
        "task_emb_dim": 8, "noise_std": 0.0, "authors_noisy_load": False, "aux_weight": 0.01,
        "head_channels": 8, "tam": tam, "tam_levels": [True, True, False],
        "tasks": [{"name": n, "out_channels": c} for n, c in tasks],
    }


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def random_params(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    P = {}
    for k, shape in ref.param_shapes(cfg).items():
        if k.endswith("num_batches_tracked"):
            P[k] = torch.zeros(shape, dtype=torch.int64)
        elif k.endswith("running_var"):
            P[k] = 0.5 + torch.rand(shape, generator=g, dtype=D64)
        else:
            P[k] = 0.3 * torch.randn(shape, generator=g, dtype=D64)
    return P


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_every_dtype(self):
        arrs = {
            "f64": np.arange(6, dtype=np.float64).reshape(2, 3) / 7,
            "f32": np.linspace(-1, 1, 5, dtype=np.float32),
            "f16": np.array([1.5, -2.25], dtype=np.float16),
            "i64": np.array([[1, -2], [3, 2**40]], dtype=np.int64),
            "i32": np.array([7], dtype=np.int32),
            "u8": np.array([0, 255], dtype=np.uint8),
            "b": np.array([True, False]),
            "scalar": np.array(3.0, dtype=np.float32),
        }
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "a.safetensors")
            st.save(p, arrs, {"k": "v"})
            got, meta = st.load(p)
            self.assertEqual(meta, {"k": "v"})
            self.assertEqual(list(got), list(arrs))
            for k, a in arrs.items():
                self.assertEqual(got[k].dtype, a.dtype, k)
                self.assertEqual(got[k].shape, a.shape, k)
                np.testing.assert_array_equal(got[k], a, k)
            # header: 8-byte length, JSON padded so the data starts 8-byte aligned
            raw = read_bytes(p)
            n = int.from_bytes(raw[:8], "little")
            self.assertEqual(n % 8, 0)
            self.assertEqual(json.loads(raw[8:8 + n])["f32"]["dtype"], "F32")

    def test_bf16_widened(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "b.safetensors")
            # bf16 of 1.0 is 0x3f80, of -2.0 is 0xc000
            hdr = json.dumps({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
            with open(p, "wb") as f:
                f.write(len(hdr).to_bytes(8, "little") + hdr + np.array([0x3F80, 0xC000], "<u2").tobytes())
            got, _ = st.load(p)
            np.testing.assert_array_equal(got["x"], np.array([1.0, -2.0], np.float32))

    def test_corrupt_files_named(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "c.safetensors")
            st.save(p, {"w": np.zeros((2, 2), np.float32)})
            raw = read_bytes(p)
            write_bytes(p, raw[:-4])  # truncated data
            with self.assertRaisesRegex(st.SafeTensorsError, "'w'"):
                st.load(p)
            write_bytes(p, b"\x05\x00")
            with self.assertRaisesRegex(st.SafeTensorsError, "shorter"):
                st.load(p)


class ElementwiseTest(unittest.TestCase):
    def test_gelu_is_erf_form(self):
        x = torch.linspace(-6, 6, 101, dtype=D64)
        torch.testing.assert_close(ref.gelu(x), F.gelu(x), rtol=0, atol=1e-14)
        # and not the tanh approximation (they differ by ~1e-4 near |x| = 2)
        self.assertGreater((ref.gelu(x) - F.gelu(x, approximate="tanh")).abs().max().item(), 1e-5)

    def test_layer_norm(self):
        x = torch.randn(3, 5, 24, dtype=D64)
        w, b = torch.randn(24, dtype=D64), torch.randn(24, dtype=D64)
        torch.testing.assert_close(ref.layer_norm(x, w, b, 1e-6), F.layer_norm(x, (24,), w, b, 1e-6),
                                   rtol=0, atol=1e-12)

    def test_batch_norm_train_and_eval(self):
        x = torch.randn(2, 6, 3, 5, dtype=D64)
        P = {"bn.weight": torch.randn(6, dtype=D64), "bn.bias": torch.randn(6, dtype=D64),
             "bn.running_mean": torch.randn(6, dtype=D64), "bn.running_var": torch.rand(6, dtype=D64) + 0.5}
        for training in (False, True):
            rm, rv = P["bn.running_mean"].clone(), P["bn.running_var"].clone()
            want = F.batch_norm(x, rm, rv, P["bn.weight"], P["bn.bias"], training, 0.1, ref.BN_EPS)
            torch.testing.assert_close(ref.batch_norm(x, P, "bn", training), want, rtol=0, atol=1e-12)

    def test_softmax_sigmoid(self):
        x = torch.randn(7, 9, dtype=D64) * 30
        torch.testing.assert_close(ref.softmax(x), torch.softmax(x, -1), rtol=0, atol=1e-15)
        torch.testing.assert_close(ref.sigmoid(x), torch.sigmoid(x), rtol=0, atol=1e-15)

    def test_bilinear_matches_interpolate(self):
        x = torch.randn(2, 3, 3, 5, dtype=D64)
        for h, w in ((6, 10), (48, 80), (7, 4), (3, 5), (2, 2), (11, 13)):
            want = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
            torch.testing.assert_close(ref.resize_bilinear(x, h, w), want, rtol=0, atol=1e-12, msg=f"{h}x{w}")

    def test_cv_squared_by_hand(self):
        # v = [1,2,3,4]: mean 2.5, unbiased var 5/3, cv² = (5/3)/6.25 = 0.2666...
        v = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D64)
        self.assertAlmostEqual(ref.cv_squared(v).item(), (5 / 3) / (6.25 + 1e-10), places=14)
        self.assertEqual(ref.cv_squared(torch.tensor([3.0], dtype=D64)).item(), 0.0)
        self.assertAlmostEqual(ref.cv_squared(torch.zeros(4, dtype=D64)).item(), 0.0)


class AttentionTest(unittest.TestCase):
    def test_matches_multihead_attention(self):
        # nn.MultiheadAttention packs in_proj as [q; k; v] rows, each split into heads of hd rows:
        # the same [3, heads, hd] layout the authors' qkv Linear uses, and the same hd^-0.5 scale.
        d, heads = 24, 4
        mha = torch.nn.MultiheadAttention(d, heads, batch_first=True).double()
        P = {"a.qkv.weight": mha.in_proj_weight.detach(), "a.qkv.bias": mha.in_proj_bias.detach(),
             "a.proj.weight": mha.out_proj.weight.detach(), "a.proj.bias": mha.out_proj.bias.detach()}
        with torch.no_grad():
            torch.nn.init.normal_(P["a.qkv.bias"])
            x = torch.randn(2, 7, d, dtype=D64)
            want, _ = mha(x, x, x, need_weights=False)
        torch.testing.assert_close(ref.attention(x, P, "a.", heads), want, rtol=0, atol=1e-12)


class RouterTest(unittest.TestCase):
    def test_hand_example(self):
        # Two tokens, d_gate = 2, E = 4, k = 2. Logits = x·W:
        #   token 0: x = [1, 0] -> [0, ln2, ln4, 0]   -> p ∝ [1, 2, 4, 1] / 8
        #   token 1: x = [0, 1] -> [ln3, 0, 0, ln6]   -> p ∝ [3, 1, 1, 6] / 11
        W = torch.tensor([[0.0, math.log(2), math.log(4), 0.0], [math.log(3), 0.0, 0.0, math.log(6)]], dtype=D64)
        x = torch.eye(2, dtype=D64)
        r = ref.route(x, W, 2, training=True, noise_std=0.0)
        self.assertEqual(r["idx"].tolist(), [[2, 1], [3, 0]])
        torch.testing.assert_close(r["w"], torch.tensor([[4 / 8, 2 / 8], [6 / 11, 3 / 11]], dtype=D64))
        # not renormalised: kept mass < 1
        self.assertLess(r["w"].sum(1).max().item(), 0.95)
        G = torch.tensor([[0, 2 / 8, 4 / 8, 0], [3 / 11, 0, 0, 6 / 11]], dtype=D64)
        torch.testing.assert_close(r["G"], G)
        imp = G.sum(0).numpy()
        load = np.array([1.0, 1.0, 1.0, 1.0])  # every expert picked by exactly one token
        want = imp.var(ddof=1) / (imp.mean() ** 2 + 1e-10) + load.var(ddof=1) / (load.mean() ** 2 + 1e-10)
        self.assertAlmostEqual(r["aux"].item(), want, places=12)
        self.assertNotIn("aux", ref.route(x, W, 2, training=False, noise_std=0.0))

    def test_ties_go_to_lower_index(self):
        p = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.4, 0.1, 0.4]], dtype=D64)
        idx, w = ref.topk_desc(p, 3)
        self.assertEqual(idx.tolist(), [[0, 1, 2], [1, 3, 0]])

    def test_noise_refused_in_training(self):
        with self.assertRaises(NotImplementedError):
            ref.route(torch.ones(1, 2, dtype=D64), torch.ones(2, 3, dtype=D64), 1, True, 1.0)


class MoeTest(unittest.TestCase):
    def test_dense_equals_sparse_loop(self):
        # Oracle: all experts on all tokens, combined with the dense gate matrix.
        # Check: per token, loop over its k chosen experts only, in numpy.
        n, d, hid, E, k = 11, 6, 5, 4, 3
        g = torch.Generator().manual_seed(3)
        P = {"mlp.experts.htoh4.weight": torch.randn(E, hid, d, generator=g, dtype=D64),
             "mlp.experts.htoh4.bias": torch.randn(E, hid, generator=g, dtype=D64),
             "mlp.experts.h4toh.weight": torch.randn(E, d, hid, generator=g, dtype=D64),
             "mlp.experts.h4toh.bias": torch.randn(E, d, generator=g, dtype=D64)}
        x = torch.randn(n, d, generator=g, dtype=D64)
        W = torch.randn(d, E, generator=g, dtype=D64)

        class C:
            pass
        cfg = C()
        cfg.k, cfg.noise_std = k, 0.0
        out, r = ref.moe_layer(x, x, P, "", W, cfg, training=False)

        xn, Wn = x.numpy(), W.numpy()
        W1, b1 = P["mlp.experts.htoh4.weight"].numpy(), P["mlp.experts.htoh4.bias"].numpy()
        W2, b2 = P["mlp.experts.h4toh.weight"].numpy(), P["mlp.experts.h4toh.bias"].numpy()
        erf = np.vectorize(math.erf)
        want = np.zeros((n, d))
        for t in range(n):
            logit = xn[t] @ Wn
            p = np.exp(logit - logit.max())
            p /= p.sum()
            chosen = np.argsort(-p, kind="stable")[:k]
            self.assertEqual(list(chosen), r["idx"][t].tolist())
            for e in chosen:
                h = W1[e] @ xn[t] + b1[e]
                h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
                want[t] += p[e] * (W2[e] @ h + b2[e])
        np.testing.assert_allclose(out.numpy(), want, rtol=0, atol=1e-12)


class ModelTest(unittest.TestCase):
    def test_param_shapes_per_gate(self):
        for gate in ref.GATES:
            cfg = ref.Config(tiny_config(gate))
            s = ref.param_shapes(cfg)
            gates = [k for k in s if ".mlp.gate" in k]
            if gate == "multi":
                self.assertEqual(gates, ["backbone.blocks.1.mlp.gate.0.w_gate", "backbone.blocks.1.mlp.gate.1.w_gate"])
            else:
                self.assertEqual(gates, ["backbone.blocks.1.mlp.gate.w_gate"])
            self.assertEqual(s["backbone.blocks.1.mlp.gate" + (".0" if gate == "multi" else "") + ".w_gate"],
                             [24 + (8 if gate == "task_cond" else 0), 4])
            self.assertEqual(any("gate_task_represent" in k for k in s), gate == "task_cond")
            self.assertEqual(s["backbone.pos_embed"], [1, 1 + 4 * 6, 24])

    def test_head_matches_torch_modules(self):
        cfg = ref.Config(tiny_config())
        P = random_params(cfg)
        tok = torch.randn(2, 25, 24, dtype=D64)
        for training in (False, True):
            got, feats = ref.pup_head(tok, P, cfg, "semseg", training)
            p = "decoders.semseg."
            x = F.layer_norm(tok[:, 1:], (24,), P[p + "norm.weight"], P[p + "norm.bias"], 1e-6)
            x = x.transpose(1, 2).reshape(2, 24, 4, 6)
            for j in range(4):
                x = F.conv2d(x, P[p + f"conv_{j}.weight"], P[p + f"conv_{j}.bias"], padding=1)
                b = p + f"syncbn_fc_{j}."
                x = F.relu(F.batch_norm(x, P[b + "running_mean"].clone(), P[b + "running_var"].clone(),
                                        P[b + "weight"], P[b + "bias"], training, 0.1, 1e-5))
                if j >= 1:
                    torch.testing.assert_close(feats[j - 1], x, rtol=0, atol=1e-10)
                if j < 3:
                    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.conv2d(x, P[p + "conv_4.weight"], P[p + "conv_4.bias"])
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            self.assertEqual(list(got.shape), [2, 21, 64, 96])
            torch.testing.assert_close(got, x, rtol=0, atol=1e-10)

    def test_forward_all_equals_forward_task_in_eval(self):
        for gate in ref.GATES:
            cfg = ref.Config(tiny_config(gate, tam=True))
            P = random_params(cfg, seed=1)
            img = torch.randn(2, 3, 64, 96, dtype=D64)
            outs, aux = ref.forward_all(img, P, cfg, training=False)
            self.assertEqual(sorted(outs), ["sal", "semseg"])  # no TAM outputs in eval
            self.assertEqual(aux.item(), 0.0)
            for t, task in enumerate(cfg.tasks):
                torch.testing.assert_close(outs[task], ref.forward_task(img, P, cfg, t), rtol=0, atol=0)

    def test_routing_depends_on_task_except_shared(self):
        for gate in ref.GATES:
            cfg = ref.Config(tiny_config(gate))
            P = random_params(cfg, seed=2)
            img = torch.randn(1, 3, 64, 96, dtype=D64)
            tr = [ref.new_trace(), ref.new_trace()]
            for t in range(2):
                ref.forward_task(img, P, cfg, t, trace=tr[t])
            same = torch.equal(tr[0]["logits"][0], tr[1]["logits"][0])
            self.assertEqual(same, gate == "shared", gate)
            self.assertEqual(list(tr[0]["idx"][0].shape), [25, 2])

    def test_train_mode_tam_and_aux(self):
        cfg = ref.Config(tiny_config("multi", tam=True))
        P = random_params(cfg, seed=4)
        img = torch.randn(2, 3, 64, 96, dtype=D64)
        outs, aux = ref.forward_all(img, P, cfg, training=True)
        self.assertEqual(sorted(outs), sorted(["semseg", "sal", "tam_level0_semseg", "tam_level0_sal",
                                               "tam_level1_semseg", "tam_level1_sal"]))
        self.assertEqual(list(outs["tam_level1_semseg"].shape), [2, 21, 64, 96])
        # aux = Σ over the 2 task passes × 1 MoE layer of cv²(imp)+cv²(load), recomputed here
        want = 0.0
        for t in range(2):
            tr = ref.new_trace()
            ref.backbone(img, P, cfg, t, True, tr)
            G = torch.zeros_like(tr["probs"][0]).scatter(1, tr["idx"][0], tr["w"][0])
            imp, load = G.sum(0).numpy(), (G > 0).sum(0).double().numpy()
            want += imp.var(ddof=1) / imp.mean() ** 2 + load.var(ddof=1) / load.mean() ** 2
        self.assertAlmostEqual(aux.item(), want, places=10)

    def test_tam_needs_sizes_divisible_by_4(self):
        cfg = ref.Config(tiny_config("multi", tam=True, img=(48, 80)))
        P = random_params(cfg)
        with self.assertRaisesRegex(ValueError, "divisible by 4"):
            ref.forward_all(torch.randn(1, 3, 48, 80, dtype=D64), P, cfg, training=True)


class CliTest(unittest.TestCase):
    def _write(self, d, cfg_json, P, images):
        w = os.path.join(d, "w.safetensors")
        x = os.path.join(d, "x.safetensors")
        st.save(w, {k: v.numpy().astype(np.float32) if v.is_floating_point() else v.numpy() for k, v in P.items()},
                {"format": "m3vit-export-v1", "m3vit_config": json.dumps(cfg_json)})
        st.save(x, {"images": images.astype(np.float32)})
        return w, x

    def _run(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "run_oracle.py"), *args],
                              capture_output=True, text=True)

    def test_outputs_and_bad_input(self):
        cj = tiny_config("task_cond", tam=True)
        cfg = ref.Config(cj)
        P = random_params(cfg)
        with tempfile.TemporaryDirectory() as d:
            w, x = self._write(d, cj, P, np.random.default_rng(0).standard_normal((2, 3, 64, 96)))
            o = os.path.join(d, "o.safetensors")
            r = self._run("--weights", w, "--input", x, "--out", o, "--mode", "train", "--task-trace")
            self.assertEqual(r.returncode, 0, r.stderr)
            got, meta = st.load(o)
            self.assertEqual(meta["mode"], "train")
            for name in ("out.semseg", "out.tam_level1_sal", "task.sal", "aux_loss", "trace.sal.block1",
                         "trace.semseg.router_logits0", "trace.semseg.topk_idx0", "trace.sal.topk_w0",
                         "trace.sal.head_in"):
                self.assertIn(name, got)
            self.assertEqual(got["trace.semseg.topk_idx0"].dtype, np.int64)
            self.assertEqual(got["trace.semseg.topk_idx0"].shape, (50, 2))
            self.assertGreater(got["aux_loss"][0], 0.0)

            # a missing key and a wrong shape are each named
            del P["decoders.sal.conv_4.bias"]
            w, x = self._write(d, cj, P, np.zeros((1, 3, 64, 96)))
            r = self._run("--weights", w, "--input", x, "--out", o)
            self.assertEqual(r.returncode, 2)
            self.assertIn("decoders.sal.conv_4.bias", r.stderr)
            P["decoders.sal.conv_4.bias"] = torch.zeros(2, dtype=D64)
            w, x = self._write(d, cj, P, np.zeros((1, 3, 64, 96)))
            r = self._run("--weights", w, "--input", x, "--out", o)
            self.assertEqual(r.returncode, 2)
            self.assertIn("'decoders.sal.conv_4.bias' expected shape [1], got [2]", r.stderr)
            P["decoders.sal.conv_4.bias"] = torch.zeros(1, dtype=D64)
            w, x = self._write(d, cj, P, np.zeros((1, 3, 48, 96)))
            r = self._run("--weights", w, "--input", x, "--out", o)
            self.assertEqual(r.returncode, 2)
            self.assertIn("'images' expected [B, 3, 64, 96]", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
