"""M³ViT reference model in PyTorch: the parity oracle for the C++ model (model/multitask_model.h).

Written from the behaviour of the authors' code (docs/AUTHORS_CODE.md and the files it cites), not from the
C++ sources: a plain dict of tensors keyed by the authors' state-dict names, and free functions
that compose a few elementwise torch ops. Where the C++ model uses a library kernel, this file does
the arithmetic another way, so an agreement is a real check:
  - LayerNorm, BatchNorm, GELU (erf form), softmax and bilinear resizing are written out by hand;
  - the MoE layer is evaluated DENSELY (every expert on every token, then combined with the sparse
    [tokens, E] gate matrix), where the C++ model groups tokens per expert;
  - everything runs in float64 by default, so the reference carries no fp32 rounding of its own.
Only convolutions (conv2d, conv_transpose2d) and matmuls are torch library calls.

Authors' code, for orientation (VITA-Group/M3ViT): backbone models/vision_transformer_moe.py:350-566,
MoE layer models/custom_moe_layer.py:66-314, router models/gate_funs/noisy_gate_vmoe.py:178-286,
PUP head models/vit_up_head.py:149-224, TAM and the multi-task forward models/models.py:9-263.
"""

import math

import torch

# ----------------------------------------------------------------------------------------------
# Configuration (JSON written by config_to_json, core/config_json.cpp)
# ----------------------------------------------------------------------------------------------

GATES = ("multi", "task_cond", "shared")
BN_EPS = 1e-5  # mmcv SyncBN default (vit_up_head.py:126-129)
CV_EPS = 1e-10  # cv² denominator epsilon (noisy_gate_vmoe.py cv_squared)


class Config:
    """The fields of ModelConfig the forward pass needs, read from its JSON form."""

    def __init__(self, j):
        self.img_h, self.img_w = (int(v) for v in j["img_size"])
        self.patch = int(j["patch_size"])
        self.in_chans = int(j.get("in_chans", 3))
        self.d = int(j["embed_dim"])
        self.depth = int(j["depth"])
        self.heads = int(j["num_heads"])
        self.mlp_hidden = int(self.d * float(j["mlp_ratio"]))
        self.qkv_bias = bool(j.get("qkv_bias", True))
        self.ln_eps = float(j.get("ln_eps", 1e-6))
        self.moe_blocks = [int(i) for i in j["moe_blocks"]]
        self.E = int(j["moe_experts"])
        self.k = int(j["moe_top_k"])
        self.moe_hidden = int(self.d * float(j["moe_mlp_ratio"]))
        self.gate = j["gate"]
        self.task_emb_dim = int(j.get("task_emb_dim", 64))
        self.noise_std = float(j.get("noise_std", 0.0))
        self.head_ch = int(j.get("head_channels", 256))
        self.tam = bool(j.get("tam", False))
        self.tam_levels = [bool(v) for v in j.get("tam_levels", [True, True, False])]
        self.tasks = [t["name"] for t in j["tasks"]]
        self.out_ch = {t["name"]: int(t["out_channels"]) for t in j["tasks"]}
        if self.gate not in GATES:
            raise ValueError(f"config: unknown gate '{self.gate}' (known: {', '.join(GATES)})")
        if self.img_h % self.patch or self.img_w % self.patch:
            raise ValueError(f"config: image {self.img_h}x{self.img_w} not divisible by patch {self.patch}")
        if self.d % self.heads:
            raise ValueError(f"config: embed_dim {self.d} not divisible by num_heads {self.heads}")
        if not 1 <= self.k <= self.E:
            raise ValueError(f"config: top-k {self.k} outside 1..{self.E}")

    @property
    def gh(self):
        return self.img_h // self.patch

    @property
    def gw(self):
        return self.img_w // self.patch

    @property
    def T(self):
        return len(self.tasks)

    def has_task_embedding(self):
        """task_cond with D_t > 0; with D_t <= 0 the authors build no embedding and the router sees
        only the token (vision_transformer_moe.py:420-423, quirk Q26)."""
        return self.gate == "task_cond" and self.task_emb_dim > 0 and bool(self.moe_blocks)

    def active_tam_levels(self):
        return [L for L in range(3) if self.tam and self.tam_levels[L]]


# ----------------------------------------------------------------------------------------------
# Parameter table: every key of the authors' state dict with its shape (multitask_model.h)
# ----------------------------------------------------------------------------------------------

def _bn_keys(prefix, c, out):
    out[prefix + ".weight"] = [c]
    out[prefix + ".bias"] = [c]
    out[prefix + ".running_mean"] = [c]
    out[prefix + ".running_var"] = [c]
    out[prefix + ".num_batches_tracked"] = []


def _conv_keys(prefix, cout, cin, ks, out):
    out[prefix + ".weight"] = [cout, cin, ks, ks]
    out[prefix + ".bias"] = [cout]


def param_shapes(cfg):
    """{name: shape} of every parameter and buffer, in a fixed order."""
    d, E, hid = cfg.d, cfg.E, cfg.moe_hidden
    s = {}
    s["backbone.cls_token"] = [1, 1, d]
    s["backbone.pos_embed"] = [1, 1 + cfg.gh * cfg.gw, d]
    _conv_keys("backbone.patch_embed.proj", d, cfg.in_chans, cfg.patch, s)
    if cfg.has_task_embedding():
        De = cfg.task_emb_dim
        s["backbone.gate_task_represent.fc1.weight"] = [De, cfg.T]
        s["backbone.gate_task_represent.fc1.bias"] = [De]
        s["backbone.gate_task_represent.fc2.weight"] = [De, De]
        s["backbone.gate_task_represent.fc2.bias"] = [De]
        s["backbone.gate_task_represent.norm.weight"] = [De]
        s["backbone.gate_task_represent.norm.bias"] = [De]
    for i in range(cfg.depth):
        p = f"backbone.blocks.{i}."
        s[p + "norm1.weight"] = [d]
        s[p + "norm1.bias"] = [d]
        s[p + "attn.qkv.weight"] = [3 * d, d]
        if cfg.qkv_bias:
            s[p + "attn.qkv.bias"] = [3 * d]
        s[p + "attn.proj.weight"] = [d, d]
        s[p + "attn.proj.bias"] = [d]
        s[p + "norm2.weight"] = [d]
        s[p + "norm2.bias"] = [d]
        if i in cfg.moe_blocks:
            s[p + "mlp.experts.htoh4.weight"] = [E, hid, d]
            s[p + "mlp.experts.htoh4.bias"] = [E, hid]
            s[p + "mlp.experts.h4toh.weight"] = [E, d, hid]
            s[p + "mlp.experts.h4toh.bias"] = [E, d]
            if cfg.gate == "multi":
                for t in range(cfg.T):
                    s[p + f"mlp.gate.{t}.w_gate"] = [d, E]
            elif cfg.gate == "task_cond":
                s[p + "mlp.gate.w_gate"] = [d + (cfg.task_emb_dim if cfg.has_task_embedding() else 0), E]
            else:
                s[p + "mlp.gate.w_gate"] = [d, E]
        else:
            s[p + "mlp.fc1.weight"] = [cfg.mlp_hidden, d]
            s[p + "mlp.fc1.bias"] = [cfg.mlp_hidden]
            s[p + "mlp.fc2.weight"] = [d, cfg.mlp_hidden]
            s[p + "mlp.fc2.bias"] = [d]
    C = cfg.head_ch
    for task in cfg.tasks:
        p = f"decoders.{task}."
        s[p + "norm.weight"] = [d]
        s[p + "norm.bias"] = [d]
        _conv_keys(p + "conv_0", C, d, 3, s)
        for j in (1, 2, 3):
            _conv_keys(p + f"conv_{j}", C, C, 3, s)
        _conv_keys(p + "conv_4", cfg.out_ch[task], C, 1, s)
        for j in range(4):
            _bn_keys(p + f"syncbn_fc_{j}", C, s)
    TC = cfg.T * C
    for L in cfg.active_tam_levels():
        p = f"tam_model{L}."
        _conv_keys(p + "layers0.0", C, TC, 3, s)
        _bn_keys(p + "layers0.1", C, s)
        _conv_keys(p + "layers1.0", C, C, 3, s)
        _bn_keys(p + "layers1.1", C, s)
        _conv_keys(p + "layers2.0", C, TC, 3, s)
        _bn_keys(p + "layers2.1", C, s)
        for name in ("encoder0", "encoder1", "decoder0", "decoder1"):
            # ConvTranspose2d stores [in, out, kh, kw]; in == out here, so the shape reads the same.
            _conv_keys(p + name + ".0", C, C, 3, s)
            _bn_keys(p + name + ".1", C, s)
        for task in cfg.tasks:
            _conv_keys(p + f"layers3.{task}.0", C, TC, 3, s)
            _bn_keys(p + f"layers3.{task}.1", C, s)
            _conv_keys(p + f"layers4.{task}.0", cfg.out_ch[task], C, 1, s)
    return s


def check_params(cfg, tensors, source="weights"):
    """Strict binding: every expected key present with its exact shape, and no unknown key."""
    want = param_shapes(cfg)
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    if missing or extra:
        raise KeyError(f"{source}: missing keys {missing[:10]} ({len(missing)}), "
                       f"unexpected keys {extra[:10]} ({len(extra)})")
    for k, shape in want.items():
        got = list(tensors[k].shape)
        if got != shape:
            raise ValueError(f"{source}: tensor '{k}' expected shape {shape}, got {got}")


# ----------------------------------------------------------------------------------------------
# Elementwise building blocks, written out by hand
# ----------------------------------------------------------------------------------------------

def gelu(x):
    """Exact GELU, 0.5·x·(1 + erf(x/√2)) (nn.GELU default, vision_transformer_moe.py:156-172)."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps):
    """Over the last axis, biased variance."""
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def softmax(x, dim=-1):
    e = torch.exp(x - x.max(dim=dim, keepdim=True).values)
    return e / e.sum(dim=dim, keepdim=True)


def sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def linear(x, w, b=None):
    y = x @ w.t()
    return y if b is None else y + b


def batch_norm(x, P, prefix, training):
    """[B,C,H,W]. Training: batch mean and biased batch variance over (B,H,W); eval: running stats.
    Running statistics are not updated: the oracle is stateless, every call sees the loaded ones."""
    w, b = P[prefix + ".weight"], P[prefix + ".bias"]
    if training:
        mu = x.mean(dim=(0, 2, 3))
        var = ((x - mu[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
    else:
        mu, var = P[prefix + ".running_mean"], P[prefix + ".running_var"]
    inv = 1.0 / torch.sqrt(var + BN_EPS)
    return (x - mu[None, :, None, None]) * (inv * w)[None, :, None, None] + b[None, :, None, None]


def conv(x, P, prefix, stride=1, padding=None):
    w = P[prefix + ".weight"]
    pad = w.shape[-1] // 2 if padding is None else padding
    return torch.nn.functional.conv2d(x, w, P[prefix + ".bias"], stride=stride, padding=pad)


def _resize_matrix(n_in, n_out, dtype):
    """[n_out, n_in] bilinear weights with align_corners=False (half-pixel centres):
    source coordinate (i + 0.5)·n_in/n_out − 0.5, clamped below at 0, neighbours clamped at n_in−1."""
    A = torch.zeros(n_out, n_in, dtype=dtype)
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        A[i, i0] += 1.0 - lam
        A[i, i1] += lam
    return A


def resize_bilinear(x, h, w):
    """[B,C,H,W] -> [B,C,h,w], bilinear, align_corners=False, no antialiasing (F.interpolate's rule)."""
    Ah = _resize_matrix(x.shape[-2], h, x.dtype)
    Aw = _resize_matrix(x.shape[-1], w, x.dtype)
    return torch.einsum("ih,bchw,jw->bcij", Ah, x, Aw)


def up2(x):
    return resize_bilinear(x, 2 * x.shape[-2], 2 * x.shape[-1])


def cv_squared(v):
    """Var(v)/(Mean(v)² + 1e-10), unbiased variance (divide by E−1); 0 for a single expert."""
    n = v.numel()
    if n == 1:
        return torch.zeros((), dtype=v.dtype)
    mean = v.sum() / n
    var = ((v - mean) ** 2).sum() / (n - 1)
    return var / (mean * mean + CV_EPS)


# ----------------------------------------------------------------------------------------------
# Router and MoE layer (custom_moe_layer.py:66-314, noisy_gate_vmoe.py:178-286)
# ----------------------------------------------------------------------------------------------

def topk_desc(p, k):
    """Top-k of each row by descending value; ties broken towards the lower expert index.
    Returns (idx int64 [n,k], values [n,k])."""
    # argsort is stable, so equal probabilities keep ascending expert order.
    order = torch.from_numpy((-p).detach().cpu().numpy().argsort(axis=1, kind="stable")[:, :k].copy())
    return order, torch.gather(p, 1, order)


def route(x_gate, w_gate, k, training, noise_std):
    """x_gate [n, d_gate], w_gate [d_gate, E] (input-major, no bias).
    p = softmax over all E; keep the top-k probabilities WITHOUT renormalising
    (noisy_gate_vmoe.py:258-268). Returns dict with logits, probs, idx, w, the dense gate matrix G
    [n, E] and, in training, the aux loss cv²(importance) + cv²(load)."""
    if training and noise_std > 0:
        raise NotImplementedError("the oracle is deterministic: training-time router noise "
                                  "(noise_std > 0) is not modelled")
    logits = x_gate @ w_gate
    probs = softmax(logits, dim=-1)
    idx, w = topk_desc(probs, k)
    G = torch.zeros_like(probs).scatter(1, idx, w)
    r = {"logits": logits, "probs": probs, "idx": idx, "w": w, "G": G}
    if training:
        importance = G.sum(dim=0)  # Σ_tokens kept probability, per expert
        load = (G > 0).to(G.dtype).sum(dim=0)  # hard count: noise off (noisy_gate_vmoe.py:72-80)
        r["aux"] = cv_squared(importance) + cv_squared(load)
    return r


def experts_dense(x, P, prefix):
    """Every expert on every token: x [n, d] -> Y [n, E, d].
    Expert e: W2_e·GELU(W1_e·x + b1_e) + b2_e with W1 [E,hid,d], W2 [E,d,hid] (stacked, [E,out,in])."""
    W1, b1 = P[prefix + "htoh4.weight"], P[prefix + "htoh4.bias"]
    W2, b2 = P[prefix + "h4toh.weight"], P[prefix + "h4toh.bias"]
    H = gelu(torch.einsum("nd,ehd->neh", x, W1) + b1[None])  # [n, E, hid]
    return torch.einsum("neh,edh->ned", H, W2) + b2[None]  # [n, E, d]


def moe_layer(x, x_gate, P, prefix, w_gate, cfg, training):
    """x [n, d] (LN2 output, cls rows included), x_gate [n, d_gate] -> (out [n, d], routing dict).
    out = Σ_e G[:, e]·expert_e(x), with G zero outside the top-k: the same Σ_j p_j·y_{idx_j}(x) as
    the authors' grouped dispatch, computed without any dispatch."""
    r = route(x_gate, w_gate, cfg.k, training, cfg.noise_std)
    Y = experts_dense(x, P, prefix + "mlp.experts.")
    return torch.einsum("ne,ned->nd", r["G"], Y), r


# ----------------------------------------------------------------------------------------------
# Backbone (vision_transformer_moe.py:350-566)
# ----------------------------------------------------------------------------------------------

def attention(x, P, prefix, heads):
    """x [B, N, d]. qkv output index = s·d + h·hd + j, s ∈ {q,k,v} (layout [3, heads, hd])."""
    B, N, d = x.shape
    hd = d // heads
    qkv = linear(x, P[prefix + "qkv.weight"], P.get(prefix + "qkv.bias"))  # [B, N, 3d]
    qkv = qkv.reshape(B, N, 3, heads, hd)
    q = qkv[:, :, 0].permute(0, 2, 1, 3)  # [B, heads, N, hd]
    k = qkv[:, :, 1].permute(0, 2, 1, 3)
    v = qkv[:, :, 2].permute(0, 2, 1, 3)
    a = softmax((q @ k.transpose(-1, -2)) * (hd ** -0.5), dim=-1)  # [B, heads, N, N]
    o = (a @ v).permute(0, 2, 1, 3).reshape(B, N, d)  # heads concatenated
    return linear(o, P[prefix + "proj.weight"], P[prefix + "proj.bias"])


def task_embedding(P, cfg, task):
    """task_cond only: LN(fc2(GELU(fc1(onehot_T)))) [D_t] (vision_transformer_moe.py:174-192, 547-550)."""
    p = "backbone.gate_task_represent."
    onehot = torch.zeros(cfg.T, dtype=P[p + "fc1.weight"].dtype)
    onehot[task] = 1.0
    h = gelu(linear(onehot, P[p + "fc1.weight"], P[p + "fc1.bias"]))
    h = linear(h, P[p + "fc2.weight"], P[p + "fc2.bias"])
    # eps fixed at 1e-6 by the authors' new_Mlp (vision_transformer_moe.py:175), whatever ln_eps is
    return layer_norm(h, P[p + "norm.weight"], P[p + "norm.bias"], 1e-6)


def router_weight(P, cfg, block, task):
    p = f"backbone.blocks.{block}.mlp.gate."
    return P[p + f"{task}.w_gate"] if cfg.gate == "multi" else P[p + "w_gate"]


def backbone(images, P, cfg, task, training, trace=None):
    """images [B, 3, H, W] -> last block output [B, N, d], N = 1 + h·w.
    `task` picks the routers (multi) or the task embedding (task_cond); ignored by the shared gate.
    Returns (x, aux) where aux is the sum of this pass's router losses (0 in eval).
    `trace` (a dict of lists) receives block outputs and per-MoE-layer routing."""
    B = images.shape[0]
    d = cfg.d
    x = conv(images, P, "backbone.patch_embed.proj", stride=cfg.patch, padding=0)  # [B, d, h, w]
    x = x.flatten(2).transpose(1, 2)  # [B, h·w, d], row-major grid
    x = torch.cat([P["backbone.cls_token"].expand(B, 1, d), x], dim=1) + P["backbone.pos_embed"]
    emb = task_embedding(P, cfg, task) if cfg.has_task_embedding() else None
    aux = torch.zeros((), dtype=x.dtype)
    for i in range(cfg.depth):
        p = f"backbone.blocks.{i}."
        h = layer_norm(x, P[p + "norm1.weight"], P[p + "norm1.bias"], cfg.ln_eps)
        x = x + attention(h, P, p + "attn.", cfg.heads)
        y = layer_norm(x, P[p + "norm2.weight"], P[p + "norm2.bias"], cfg.ln_eps)  # [B, N, d]
        if i in cfg.moe_blocks:
            flat = y.reshape(-1, d)  # [B·N, d], cls token routed like any patch token
            gate_in = flat if emb is None else torch.cat([flat, emb[None].expand(flat.shape[0], -1)], dim=1)
            out, r = moe_layer(flat, gate_in, P, p, router_weight(P, cfg, i, task), cfg, training)
            x = x + out.reshape(y.shape)
            if training:
                aux = aux + r["aux"]
            if trace is not None:
                for key in ("logits", "probs", "idx", "w"):
                    trace[key].append(r[key])
        else:
            h = gelu(linear(y, P[p + "mlp.fc1.weight"], P[p + "mlp.fc1.bias"]))
            x = x + linear(h, P[p + "mlp.fc2.weight"], P[p + "mlp.fc2.bias"])
        if trace is not None:
            trace["block"].append(x)
    return x, aux


# ----------------------------------------------------------------------------------------------
# PUP head (vit_up_head.py:149-224) and TAM (models/models.py:9-101)
# ----------------------------------------------------------------------------------------------

def pup_head(tokens, P, cfg, task, training, trace=None):
    """tokens [B, N, d] -> (out [B, C_t, H, W], [f0, f1, f2]) where f_L are the TAM feature levels
    (after conv_1/2/3 + BN + ReLU). The cls token is always dropped (the authors' N mod 48 test,
    vit_up_head.py:153, is true for every grid the project supports)."""
    p = f"decoders.{task}."
    B, N, d = tokens.shape
    x = layer_norm(tokens[:, 1:], P[p + "norm.weight"], P[p + "norm.bias"], cfg.ln_eps)
    x = x.transpose(1, 2).reshape(B, d, cfg.gh, cfg.gw)  # [B, d, h, w]
    if trace is not None:
        trace["head_in"] = x
    feats = []
    x = torch.relu(batch_norm(conv(x, P, p + "conv_0"), P, p + "syncbn_fc_0", training))
    x = up2(x)  # [B, C, 2h, 2w]
    for j in (1, 2, 3):
        x = torch.relu(batch_norm(conv(x, P, p + f"conv_{j}"), P, p + f"syncbn_fc_{j}", training))
        feats.append(x)  # level j-1: [B, C, 2^j h, 2^j w]
        if j < 3:
            x = up2(x)
    x = up2(conv(x, P, p + "conv_4", padding=0))  # [B, C_t, 16h, 16w]
    # MultiTaskModel resizes to the input size (models.py:209, 248): identity when patch = 16.
    return resize_bilinear(x, cfg.img_h, cfg.img_w), feats


def _tam_mix(F, Bm):
    """Weighted concat of the T task features by the gate Bm (models.py:64-71), T in 2..5."""
    T = len(F)
    if T == 2:
        parts = [F[0] * Bm, F[1] * (1 - Bm)]
    elif T == 3:
        parts = [F[0] * Bm, F[1] * (1 - Bm) / 2, F[2] * (1 - Bm) / 2]
    elif T == 4:
        parts = [F[0] * Bm / 2, F[1] * Bm / 2, F[2] * (1 - Bm) / 2, F[3] * (1 - Bm) / 2]
    elif T == 5:
        parts = [F[0] * Bm / 2, F[1] * Bm / 2, F[2] * (1 - Bm) / 3, F[3] * (1 - Bm) / 3, F[4] * (1 - Bm) / 3]
    else:
        raise ValueError(f"TAM is defined for 2..5 tasks only (models.py:64-71), config has {T}")
    return torch.cat(parts, dim=1)


def tam(feats, P, cfg, level, training):
    """feats: per task [B, C, h', w'] (h', w' divisible by 4) -> {task: [B, C_t, H, W]}."""
    p = f"tam_model{level}."

    def cbn(x, name, stride=1):
        return batch_norm(conv(x, P, p + name + ".0", stride=stride), P, p + name + ".1", training)

    def tbn(x, name):  # ConvTranspose 3×3, stride 2, pad 1, output_padding 1: doubles h', w'
        y = torch.nn.functional.conv_transpose2d(x, P[p + name + ".0.weight"], P[p + name + ".0.bias"],
                                                 stride=2, padding=1, output_padding=1)
        return batch_norm(y, P, p + name + ".1", training)

    F = [feats[t] for t in cfg.tasks]
    h, w = F[0].shape[-2:]
    if h % 4 or w % 4:
        # Two stride-2 convs then two ×2 transposed convs give back h', w' only when 4 divides them.
        raise ValueError(f"TAM level {level}: feature map {h}x{w} is not divisible by 4")
    X = torch.relu(cbn(torch.cat(F, dim=1), "layers0"))
    Bm = sigmoid(cbn(X, "layers1"))
    Fb = torch.relu(cbn(_tam_mix(F, Bm), "layers2"))
    Fb = torch.relu(cbn(Fb, "encoder0", stride=2))
    Fb = torch.relu(cbn(Fb, "encoder1", stride=2))
    Fb = torch.relu(tbn(Fb, "decoder0"))
    M = sigmoid(tbn(Fb, "decoder1"))
    Ftam = torch.cat([f * (1 + M) for f in F], dim=1)
    out = {}
    for task in cfg.tasks:
        y = torch.relu(cbn(Ftam, f"layers3.{task}"))
        y = conv(y, P, p + f"layers4.{task}.0", padding=0)
        out[task] = resize_bilinear(y, cfg.img_h, cfg.img_w)
    return out


# ----------------------------------------------------------------------------------------------
# The model's public entry points (model/multitask_model.h)
# ----------------------------------------------------------------------------------------------

def new_trace():
    return {"block": [], "logits": [], "probs": [], "idx": [], "w": []}


def forward_task(images, P, cfg, task, training=False, trace=None):
    """One backbone pass with task t's routing, then head t only: [B, C_t, H, W]."""
    x, _ = backbone(images, P, cfg, task, training, trace)
    out, _ = pup_head(x, P, cfg, cfg.tasks[task], training, trace)
    return out


def forward_all(images, P, cfg, training=False):
    """The authors' MultiTaskModel.forward (models.py:225-263): a backbone pass per task (multi,
    task_cond) or one shared pass (shared gate); every head; TAM outputs "tam_level{L}_{task}" in
    training. Returns (outputs dict, aux) with aux = Σ over every router call of cv²(imp)+cv²(load)."""
    outs = {}
    aux = torch.zeros((), dtype=images.dtype)
    levels = cfg.active_tam_levels() if training else []
    deep = {L: {} for L in levels}
    shared = None
    for t, task in enumerate(cfg.tasks):
        if cfg.gate == "shared":
            if shared is None:
                shared, aux = backbone(images, P, cfg, 0, training)
            x = shared
        else:
            x, a = backbone(images, P, cfg, t, training)
            aux = aux + a
        outs[task], feats = pup_head(x, P, cfg, task, training)
        for L in levels:
            deep[L][task] = feats[L]
    for L in levels:
        for task, y in tam(deep[L], P, cfg, L, training).items():
            outs[f"tam_level{L}_{task}"] = y
    return outs, aux
