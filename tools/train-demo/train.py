#!/usr/bin/python3
"""Trains the demo model: a tiny BLIP-2 (ViT, Q-Former, projection, LLaMA) on
the synthetic scenes of tools/scenes, and saves it as a Hugging Face
checkpoint folder that `blip2chat convert` turns into the demo model.

The modules are written here in plain PyTorch with exactly the semantics
of transformers' Blip2ForConditionalGeneration (transformers is not
needed): the parameter names are the checkpoint's, so the state dict is
saved as it is. Objectives: captioning (soft tokens + BOS -> caption) and
VQA in BLIP-2's template ("Question: {q} Answer:" -> answer), as multi-turn
conversations in the exact text blip2chat's chat builds, with the loss on
the answer tokens only.

Dev-time tool (not needed at run time or in `make test`): Debian's
python3-torch and python3-sentencepiece; PIL and numpy come with them.
Debian's torch calls the system BLAS, by default the reference one (~2
GFLOP/s): with libopenblas0-pthread installed, this script re-runs itself
with OpenBLAS first on the library path (30x faster), without changing the
system's BLAS alternative.

    nice /usr/bin/python3 tools/train-demo/train.py --work /tmp/demo-train

writes WORK/train (the training scenes, made with `go run ./tools/scenes`),
WORK/hf (the checkpoint), WORK/log.txt, WORK/summary.json, and with
--eval-out the PyTorch answers on the held-out scenes (testdata/scenes).
"""
import argparse
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import time

OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
if os.path.isdir(OPENBLAS) and OPENBLAS not in os.environ.get("LD_LIBRARY_PATH", ""):
    # One BLAS thread: torch's own threads and OpenBLAS's would compete.
    env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS + ":" + os.environ.get("LD_LIBRARY_PATH", ""),
               OPENBLAS_NUM_THREADS="1")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

# Shapes of the model. The 224-pixel scenes are resized to 192 (PIL
# bicubic, as BlipImageProcessor does) and cut in 3x3 patches of 64: one
# patch per grid cell of the scenes, 10 ViT tokens with CLS. BLIP-2's 257
# tokens (patch 14) would cost several times the training time on two
# shared cores, and a shape is 38 pixels across at least.
VISION = dict(hidden_size=128, num_attention_heads=2, num_hidden_layers=4, intermediate_size=512,
              patch_size=64, image_size=192, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True)
QFORMER = dict(hidden_size=128, num_attention_heads=2, num_hidden_layers=4, intermediate_size=256,
               cross_attention_frequency=2, hidden_act="gelu", layer_norm_eps=1e-12)
NUM_QUERY = 9  # one per grid cell (see Probes)
TEXT = dict(hidden_size=128, intermediate_size=352, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=512)
VOCAB_TARGET = 512

BOS, EOS = 1, 2
MAX_NEW = 32  # answer length limit: evaluation and generation_config.json
TYPES = ["colour", "shape", "shapes", "count", "position", "yesno"]

# The prompt formats of engine/chat's BLIP2Template: a turn, an earlier
# turn, the separator; the caption prompt is empty (soft tokens + BOS).
TURN = "Question: {q} Answer:"
HISTORY = "Question: {q} Answer: {a}."
SEP = " "


# ---------------------------------------------------------------- modules
class VisionAttention(nn.Module):
    """Blip2Attention: fused qkv without bias plus q_bias and v_bias (the k
    bias is zero), scaled dot product, output projection."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(d))
        self.v_bias = nn.Parameter(torch.zeros(d))
        self.projection = nn.Linear(d, d)

    def forward(self, x):
        B, N, D = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-1, -2)) * (D // self.heads) ** -0.5
        out = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, N, D)
        return self.projection(out)


class VisionMLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.fc1 = nn.Linear(d, inter)
        self.fc2 = nn.Linear(inter, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    """Blip2EncoderLayer: pre-LN attention and MLP blocks."""

    def __init__(self, c):
        super().__init__()
        d, eps = c["hidden_size"], c["layer_norm_eps"]
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = VisionAttention(d, c["num_attention_heads"])
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = VisionMLP(d, c["intermediate_size"])

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        n = (c["image_size"] // p) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.patch_embedding = nn.Conv2d(3, d, kernel_size=p, stride=p)
        self.position_embedding = nn.Parameter(torch.randn(1, n, d) * 0.02)

    def forward(self, px):
        x = self.patch_embedding(px).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], 1) + self.position_embedding


class Encoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class VisionModel(nn.Module):
    """Blip2VisionModel: embeddings, encoder, post_layernorm."""

    def __init__(self, c):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.encoder = Encoder([VisionLayer(c) for _ in range(c["num_hidden_layers"])])
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, px):
        x = self.embeddings(px)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, d, heads, kv_dim):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(kv_dim, d)
        self.value = nn.Linear(kv_dim, d)

    def forward(self, x, kv):
        B, T, D = x.shape
        N, hd = kv.shape[1], D // self.heads
        q = self.query(x).reshape(B, T, self.heads, hd).transpose(1, 2)
        k = self.key(kv).reshape(B, N, self.heads, hd).transpose(1, 2)
        v = self.value(kv).reshape(B, N, self.heads, hd).transpose(1, 2)
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(hd)).softmax(-1)
        self.probs = att  # [B, heads, T, N], for the training-only attention loss
        return (att @ v).transpose(1, 2).reshape(B, T, D)


class BertOutput(nn.Module):
    """dense, then LayerNorm of (dense output + the block's input)."""

    def __init__(self, d_in, d, eps):
        super().__init__()
        self.dense = nn.Linear(d_in, d)
        self.LayerNorm = nn.LayerNorm(d, eps=eps)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, d, heads, kv_dim, eps):
        super().__init__()
        self.attention = BertSelfAttention(d, heads, kv_dim)
        self.output = BertOutput(d, d, eps)

    def forward(self, x, kv):
        return self.output(self.attention(x, kv), x)


class Intermediate(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.dense = nn.Linear(d, inter)

    def forward(self, x):
        return F.gelu(self.dense(x))


class QFormerLayer(nn.Module):
    """Blip2QFormerLayer on the query rows: post-LN self-attention,
    cross-attention to the image (every cross_attention_frequency layers),
    feed-forward (intermediate_query, output_query)."""

    def __init__(self, c, idx, vision_dim):
        super().__init__()
        d, eps, heads = c["hidden_size"], c["layer_norm_eps"], c["num_attention_heads"]
        self.attention = BertAttention(d, heads, d, eps)
        self.has_cross = idx % c["cross_attention_frequency"] == 0
        if self.has_cross:
            self.crossattention = BertAttention(d, heads, vision_dim, eps)
        self.intermediate_query = Intermediate(d, c["intermediate_size"])
        self.output_query = BertOutput(c["intermediate_size"], d, eps)

    def forward(self, x, image):
        x = self.attention(x, x)
        if self.has_cross:
            x = self.crossattention(x, image)
        return self.output_query(self.intermediate_query(x), x)


class QFormerEncoder(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layer = nn.ModuleList(layers)


class QFormer(nn.Module):
    """Blip2QFormerModel with query embeddings only: layernorm on the query
    tokens, then the layers."""

    def __init__(self, c, vision_dim):
        super().__init__()
        self.layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.encoder = QFormerEncoder([QFormerLayer(c, i, vision_dim) for i in range(c["num_hidden_layers"])])

    def forward(self, query, image):
        x = self.layernorm(query)
        for layer in self.encoder.layer:
            x = layer(x, image)
        return x


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.heads, self.kv_heads = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = d // self.heads
        self.q_proj = nn.Linear(d, self.heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(self.heads * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).reshape(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).reshape(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).reshape(B, T, self.kv_heads, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        out = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = LlamaAttention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = LlamaMLP(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, c["hidden_size"])
        self.layers = nn.ModuleList([LlamaLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.c = c
        self.model = LlamaModel(c, vocab)
        self.lm_head = nn.Linear(c["hidden_size"], vocab, bias=False)

    def forward(self, emb):
        """Logits at every position of the input embeddings, positions from 0."""
        B, T, _ = emb.shape
        hd = self.c["hidden_size"] // self.c["num_attention_heads"]
        inv = 1.0 / (self.c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        fr = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        full = torch.cat([fr, fr], -1)
        cos, sin = full.cos()[None, None], full.sin()[None, None]
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = emb
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


class Blip2(nn.Module):
    """Blip2ForConditionalGeneration's modules under its parameter names."""

    def __init__(self, vocab):
        super().__init__()
        self.vision_model = VisionModel(VISION)
        self.query_tokens = nn.Parameter(torch.randn(1, NUM_QUERY, QFORMER["hidden_size"]) * 0.02)
        self.qformer = QFormer(QFORMER, VISION["hidden_size"])
        self.language_projection = nn.Linear(QFORMER["hidden_size"], TEXT["hidden_size"])
        self.language_model = LlamaForCausalLM(TEXT, vocab)

    def soft_tokens(self, px, with_image=False):
        image = self.vision_model(px)
        q = self.qformer(self.query_tokens.expand(px.shape[0], -1, -1), image)
        soft = self.language_projection(q)
        return (soft, image) if with_image else soft

    def logits(self, soft, ids):
        """LLM logits over [soft ; embed(ids)]."""
        emb = torch.cat([soft, self.language_model.model.embed_tokens(ids)], 1)
        return self.language_model(emb)


SHAPES = ["circle", "square", "triangle", "star", "cross"]
COLOURS = ["red", "yellow", "green", "blue", "purple"]
SIZES = ["small", "large"]
CELLS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]


def cell_patches():
    """The ViT token (1 + patch index) at the centre of each of the 3x3 grid
    cells a shape sits in: every shape covers that patch."""
    g = VISION["image_size"] // VISION["patch_size"]
    out = []
    for cell in range(9):
        cy = (cell // 3 * 2 + 1) * VISION["image_size"] // 6
        cx = (cell % 3 * 2 + 1) * VISION["image_size"] // 6
        out.append(1 + (cy // VISION["patch_size"]) * g + cx // VISION["patch_size"])
    return out


def cell_labels(rec):
    """Per grid cell: the colour, shape and size of the shape there, or none
    (the last class of each)."""
    colour, shape, size = [len(COLOURS)] * 9, [len(SHAPES)] * 9, [len(SIZES)] * 9
    for o in rec["objects"]:
        c = CELLS.index(o["position"])
        colour[c], shape[c], size[c] = COLOURS.index(o["colour"]), SHAPES.index(o["shape"]), SIZES.index(o["size"])
    return colour, shape, size


HEADS = [len(COLOURS) + 1, len(SHAPES) + 1, len(SIZES) + 1]


def cells_loss(logits, recs):
    """Cross-entropy of [B, 9, sum(HEADS)] logits against each cell's
    colour, shape and size (or none)."""
    labels = torch.tensor([cell_labels(r) for r in recs])  # [B, 3, 9]
    loss, at = 0.0, 0
    for k, n in enumerate(HEADS):
        loss = loss + F.cross_entropy(logits[..., at:at + n].reshape(-1, n), labels[:, k].reshape(-1))
        at += n
    return loss


def cell_attention():
    """[9, 1 + patches]: for each grid cell, the share of its area in each
    ViT patch (none on the CLS token)."""
    g, p, size = VISION["image_size"] // VISION["patch_size"], VISION["patch_size"], VISION["image_size"]
    out = torch.zeros(9, 1 + g * g)
    for cell in range(9):
        y0, x0 = cell // 3 * size / 3, cell % 3 * size / 3
        for py in range(g):
            for px in range(g):
                dy = max(0.0, min(y0 + size / 3, (py + 1) * p) - max(y0, py * p))
                dx = max(0.0, min(x0 + size / 3, (px + 1) * p) - max(x0, px * p))
                out[cell, 1 + py * g + px] = dy * dx
    return out / out.sum(1, keepdim=True)


class Probes(nn.Module):
    """Training-only losses, not part of the checkpoint, that give each
    part a direct signal from the first step (the answer tokens' loss
    reaches the ViT only through the Q-Former and the LLM, and alone left
    the model at the language prior for hundreds of steps):

    - patch: the colour, shape and size of the shape in each grid cell (or
      none), read from the ViT's output at the cell's centre patch;
    - slot: the same, read from soft token i for cell i (one head for all
      nine), so that the LLM finds each cell's contents in a fixed place;
    - attention: query i of the first cross-attention layer looks at the
      patches of cell i. Without it every query learned to look at the
      shapes wherever they were, which says what is there but not where.
    """

    def __init__(self, vision_dim, soft_dim):
        super().__init__()
        self.patch = nn.Linear(vision_dim, sum(HEADS))
        self.slot = nn.Linear(soft_dim, sum(HEADS))
        self.idx = cell_patches()
        self.register_buffer("cells", cell_attention())

    def loss(self, model, image, soft, recs):
        patch = cells_loss(self.patch(image[:, self.idx]), recs)
        slot = cells_loss(self.slot(soft[:, :9]), recs)
        probs = model.qformer.encoder.layer[0].crossattention.attention.probs[:, :, :9]  # [B, heads, 9, N]
        attention = -(self.cells * probs.clamp_min(1e-9).log()).sum(-1).mean()
        return patch, slot, attention


def init_weights(model):
    """Weights normal with std 1/sqrt(fan_in) (PyTorch's default scale, so
    attention is not uniform at the start: with GPT-2's 0.02 at width 128 the
    Q-Former averaged the image and the model sat at the language prior for
    hundreds of steps), residual branches' output layers scaled down by
    sqrt(2 * layers), zero biases, unit norms. The ViT's position
    embeddings start on the scale of the patch embeddings (std 1): at 0.02
    they were fifty times weaker than the content, and the Q-Former's
    queries could not tell one patch from another."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, std=1 / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1 / math.sqrt(m.weight.shape[1]))
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        pos = model.vision_model.embeddings.position_embedding
        nn.init.normal_(pos, std=1.0)
    for name, p in model.named_parameters():
        if name.endswith(("projection.weight", "fc2.weight", "o_proj.weight", "down_proj.weight")) and "language_projection" not in name:
            with torch.no_grad():
                p.mul_(1 / math.sqrt(2 * 4))


# ---------------------------------------------------------------- data
def load_manifest(d):
    with open(os.path.join(d, "scenes.jsonl")) as f:
        return [json.loads(line) for line in f]


def pixels(path):
    """BlipImageProcessor: RGB, resize to the model's size (PIL bicubic,
    PIL's resize to the same size is a copy), rescale, normalize, CHW."""
    im = Image.open(path).convert("RGB")
    size = VISION["image_size"]
    if im.size != (size, size):
        im = im.resize((size, size), resample=Image.BICUBIC)
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def vary(q, rng):
    """How a person might type it: a capital first letter, no question mark."""
    if rng.random() < 0.2:
        q = q[0].upper() + q[1:]
    if rng.random() < 0.1:
        q = q.rstrip("?")
    return q


def conversation(rec, rng):
    """One training sequence for a scene, in the text the chat builds: a few
    earlier turns (questions, or a caption asked with an empty question),
    then the current turn. Returns (prompt pieces, targets): pieces is a
    list of (text, is_answer) whose concatenation is the text after BOS."""
    by_type = {}
    for qa in rec["qa"]:
        by_type.setdefault(qa["type"], []).append(qa)

    def pick():
        t = rng.choice(TYPES)
        cands = by_type[t]
        if t == "yesno":
            want = rng.choice(["yes", "no"])
            same = [c for c in cands if c["a"] == want]
            cands = same or cands
        c = rng.choice(cands)
        return vary(c["q"], rng), c["a"]

    turns = []
    if rng.random() < 0.2:
        turns.append(("", rec["caption"]))
    for _ in range(rng.choice([1, 1, 2])):
        turns.append(pick())
    if rng.random() < 0.05:
        turns.append(("", rec["caption"]))  # a caption asked after questions
    return turns


def encode_turns(sp, turns):
    """Token ids (BOS first) and the loss mask (1 where the token is an
    answer token to predict) for a conversation whose last turn is the one
    being answered. Earlier turns are written as the chat's History format;
    the answer tokens of every turn are trained (their ids are what the
    prompt text tokenizes to), the EOS only after the last."""
    ids, mask = [BOS], [0]
    n = len(turns)
    hist = []
    for i, (q, a) in enumerate(turns):
        last = i == n - 1
        if q == "" and last:
            # The caption prompt: the earlier turns alone (no trailing
            # separator), or nothing at all.
            prefix = SEP.join(hist)
            ids = [BOS] + (sp.encode(prefix) if prefix else [])
            mask = [0] * len(ids)
            ans = sp.encode(a)
            ids += ans + [EOS]
            mask += [1] * (len(ans) + 1)
            # The mask of the earlier turns' answers inside prefix is not
            # recovered here: those turns are trained in other samples.
            return ids, mask
        hist_text = SEP.join(hist + [TURN.format(q=q)])
        pids = [BOS] + sp.encode(hist_text)
        if last:
            ans = sp.encode(a)
            return pids + ans + [EOS], [0] * len(pids) + [1] * (len(ans) + 1)
        hist.append(HISTORY.format(q=q, a=a))
    raise AssertionError("unreachable")


def encode_conversation(sp, turns):
    """As encode_turns, but every answer of the conversation is trained: the
    sequence is the full text of the last prompt plus its answer, and the
    tokens of each earlier answer are found where the prompt's tokens for
    "... Answer:" end (answers tokenize on their own, after a space)."""
    ids, mask = encode_turns(sp, turns)
    full = ids
    m = list(mask)
    hist = []
    for i, (q, a) in enumerate(turns[:-1]):
        pre = SEP.join(hist + [TURN.format(q=q)])
        pre_ids = [BOS] + sp.encode(pre)
        ans = sp.encode(a)
        end = len(pre_ids)
        if full[:end] == pre_ids and full[end:end + len(ans)] == ans:
            for j in range(end, end + len(ans)):
                m[j] = 1
        hist.append(HISTORY.format(q=q, a=a))
    return full, m


def batch_tensors(seqs):
    T = max(len(s) for s, _ in seqs)
    ids = torch.zeros(len(seqs), T, dtype=torch.long)
    mask = torch.zeros(len(seqs), T)
    for i, (s, m) in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(m)] = torch.tensor(m, dtype=torch.float32)
    return ids, mask


# ---------------------------------------------------------------- tokenizer
def train_tokenizer(train, prefix, seed):
    lines = set()
    rng = random.Random(seed)
    for rec in train[:4000]:
        lines.add(rec["caption"])
        for qa in rec["qa"]:
            lines.add(TURN.format(q=qa["q"]) + " " + qa["a"])
            # Capitalized, and as an earlier turn (with its full stop).
            lines.add(TURN.format(q=qa["q"][0].upper() + qa["q"][1:]) + " " + qa["a"] + ".")
    corpus = prefix + ".corpus.txt"
    with open(corpus, "w") as f:
        for line in sorted(lines):
            f.write(line + "\n")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=VOCAB_TARGET, hard_vocab_limit=False, model_type="bpe",
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, split_digits=True,
        allow_whitespace_only_pieces=True, remove_extra_whitespaces=False, normalization_rule_name="identity",
        add_dummy_prefix=True, character_coverage=1.0, num_threads=1, seed_sentencepiece_size=100000,
        minloglevel=2, input_sentence_size=0, shuffle_input_sentence=False)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


# ---------------------------------------------------------------- saving
def save_safetensors(tensors, path):
    """safetensors: 8-byte header length, JSON header, raw little-endian data."""
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32).numpy().astype("<f4")
        b = t.tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {name: torch.from_numpy(np.frombuffer(data, "<f4", count=math.prod(h["shape"]) if h["shape"] else 1,
                                                 offset=h["data_offsets"][0]).reshape(h["shape"]).copy())
            for name, h in header.items()}


def save_hf(model, sp_prefix, vocab, out):
    os.makedirs(out, exist_ok=True)
    save_safetensors(model.state_dict(), os.path.join(out, "model.safetensors"))
    shutil.copy(sp_prefix + ".model", os.path.join(out, "tokenizer.model"))
    vc = dict(VISION, model_type="blip_2_vision_model", attention_dropout=0.0, initializer_range=1e-10)
    qc = dict(QFORMER, model_type="blip_2_qformer", encoder_hidden_size=VISION["hidden_size"],
              attention_probs_dropout_prob=0.1, hidden_dropout_prob=0.1, initializer_range=0.02,
              max_position_embeddings=512, pad_token_id=0, use_qformer_text_input=False, vocab_size=30522)
    tc = dict(TEXT, model_type="llama", vocab_size=vocab, head_dim=TEXT["hidden_size"] // TEXT["num_attention_heads"],
              hidden_act="silu", attention_bias=False, attention_dropout=0.0, mlp_bias=False, bos_token_id=BOS,
              eos_token_id=EOS, pad_token_id=0, tie_word_embeddings=False, initializer_range=0.02,
              pretraining_tp=1, use_cache=True)
    cfg = {"architectures": ["Blip2ForConditionalGeneration"], "model_type": "blip-2", "num_query_tokens": NUM_QUERY,
           "image_text_hidden_size": 256, "image_token_index": None, "initializer_factor": 1.0,
           "initializer_range": 0.02, "use_decoder_only_language_model": True, "torch_dtype": "float32",
           "vision_config": vc, "qformer_config": qc, "text_config": tc}
    files = {
        "config.json": cfg,
        # The model's own decoding defaults: greedy, as it was evaluated;
        # the longest answer (a three-shape caption) is under 20 tokens.
        "generation_config.json": {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": 0, "do_sample": False,
                                   "num_beams": 1, "max_new_tokens": MAX_NEW},
        "tokenizer_config.json": {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                                  "eos_token": "</s>", "unk_token": "<unk>", "legacy": True,
                                  "tokenizer_class": "LlamaTokenizer"},
        "preprocessor_config.json": {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True,
                                     "do_resize": True, "image_mean": MEAN, "image_std": STD,
                                     "image_processor_type": "BlipImageProcessor",
                                     "processor_class": "Blip2Processor", "resample": 3,
                                     "rescale_factor": 1 / 255, "size": {"height": VISION["image_size"], "width": VISION["image_size"]}},
    }
    for name, v in files.items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(v, f, indent=2)


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def greedy(model, soft, prompts, max_new=MAX_NEW):
    """Greedy answers for prompts (id lists, BOS first) over the same soft
    tokens [1, Q, E]: the argmax token until EOS, as the chat does."""
    outs = []
    for ids in prompts:
        ids = list(ids)
        gen = []
        for _ in range(max_new):
            lg = model.logits(soft, torch.tensor([ids]))[0, -1]
            t = int(lg.argmax())
            if t == EOS:
                break
            gen.append(t)
            ids.append(t)
        outs.append(gen)
    return outs


@torch.no_grad()
def evaluate(model, sp, test_dir, recs):
    """Per-type accuracy on the held-out scenes, one fresh conversation per
    question (as the e2e test asks them), and every answer."""
    model.eval()
    items, right, total = [], {}, {}
    for rec in recs:
        soft = model.soft_tokens(pixels(os.path.join(test_dir, rec["file"]))[None])
        qs = [("caption", "", rec["caption"])] + [(qa["type"], qa["q"], qa["a"]) for qa in rec["qa"]]
        prompts = [[BOS] + (sp.encode(TURN.format(q=q)) if q else []) for _, q, _ in qs]
        for (typ, q, want), p, gen in zip(qs, prompts, greedy(model, soft, prompts)):
            got = sp.decode(gen).strip()
            ok = got == want
            total[typ] = total.get(typ, 0) + 1
            right[typ] = right.get(typ, 0) + int(ok)
            items.append({"file": rec["file"], "type": typ, "q": q, "want": want, "got": got,
                          "prompt_ids": p, "ids": gen})
    model.train()
    acc = {t: right[t] / total[t] for t in total}
    return acc, total, items


def report(log, acc, total, items, out):
    log("held-out accuracy (greedy):")
    for t in ["caption"] + TYPES:
        log(f"  {t:9s} {100*acc[t]:6.2f}%  ({total[t]} questions)")
    if out:
        with open(out, "w") as f:
            json.dump({"note": "PyTorch greedy answers of the trained checkpoint on the held-out scenes "
                               "(tools/train-demo/train.py); one fresh conversation per question",
                       "accuracy": {t: round(acc[t], 4) for t in acc}, "questions": total, "items": items}, f, indent=0)


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/demo-train", help="scratch folder (training scenes, checkpoint, log)")
    ap.add_argument("--train", default="", help="training scenes (default WORK/train, made if absent)")
    ap.add_argument("--test", default=os.path.join(REPO, "testdata", "scenes"), help="held-out scenes")
    ap.add_argument("--scenes", type=int, default=24000, help="training scenes")
    ap.add_argument("--scene-seed", type=int, default=1, help="seed of the training scenes (the held-out set uses 2)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the weights and of the sampling")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch", type=int, default=24, help="scenes per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--convs", type=int, default=3, help="conversations per scene and step (besides its caption)")
    ap.add_argument("--warmup", type=int, default=100, help="steps of linear learning-rate warm-up")
    ap.add_argument("--probe-weight", type=float, default=0.5, help="weight of the training-only patch and slot losses")
    ap.add_argument("--attention-weight", type=float, default=1.0, help="weight of the training-only attention loss")
    ap.add_argument("--vision-lr-mult", type=float, default=1.0, help="learning rate factor of the ViT, Q-Former and projection")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core machine, 2 threads ran 5-10x slower)")
    ap.add_argument("--eval-every", type=int, default=0, help="evaluate on 50 held-out scenes every N steps (0: never)")
    ap.add_argument("--eval-out", default="", help="write the held-out answers and accuracies here (JSON)")
    ap.add_argument("--eval-only", default="", metavar="HF_DIR", help="only evaluate this saved checkpoint")
    ap.add_argument("--init", default="", metavar="HF_DIR",
                    help="start from this saved checkpoint's weights (a second phase; the tokenizer must be the same)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.work, exist_ok=True)
    logf = open(os.path.join(args.work, "log.txt"), "w")

    def log(*a):
        s = " ".join(str(x) for x in a)
        print(s, flush=True)
        logf.write(s + "\n")
        logf.flush()

    if args.eval_only:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(args.eval_only, "tokenizer.model"))
        model = Blip2(sp.get_piece_size())
        model.load_state_dict(load_safetensors(os.path.join(args.eval_only, "model.safetensors")))
        acc, total, items = evaluate(model, sp, args.test, load_manifest(args.test))
        report(log, acc, total, items, args.eval_out)
        return

    t_start = time.time()
    train_dir = args.train or os.path.join(args.work, "train")
    if not os.path.exists(os.path.join(train_dir, "scenes.jsonl")):
        subprocess.run(["go", "run", "./tools/scenes", "-seed", str(args.scene_seed), "-n", str(args.scenes), "-all",
                        "-out", train_dir], cwd=REPO, check=True)
    train = load_manifest(train_dir)
    assert len(train) == args.scenes, f"{train_dir} holds {len(train)} scenes, want {args.scenes}"
    test = load_manifest(args.test)
    log(f"training scenes {len(train)} (seed {args.scene_seed}), held-out {len(test)}; scenes made in {time.time()-t_start:.0f}s")

    sp_prefix = os.path.join(args.work, "tokenizer")
    if args.init:  # the first phase's tokenizer, as its weights were trained with
        shutil.copy(os.path.join(args.init, "tokenizer.model"), sp_prefix + ".model")
        sp = spm.SentencePieceProcessor(model_file=sp_prefix + ".model")
    else:
        sp = train_tokenizer(train, sp_prefix, args.seed)
    vocab = sp.get_piece_size()
    log(f"tokenizer: {vocab} pieces")

    model = Blip2(vocab)
    init_weights(model)
    if args.init:
        model.load_state_dict(load_safetensors(os.path.join(args.init, "model.safetensors")))
        log(f"weights from {args.init}")
    n_params = {k: sum(p.numel() for n, p in model.named_parameters() if n.startswith(k))
                for k in ("vision_model", "query_tokens", "qformer", "language_projection", "language_model")}
    log("parameters", json.dumps(n_params), "total", sum(n_params.values()))

    probe = Probes(VISION["hidden_size"], TEXT["hidden_size"])
    groups = {}
    for n, p in list(model.named_parameters()) + [("probe." + n, p) for n, p in probe.named_parameters()]:
        wd = 0.05 if p.dim() >= 2 and "embedding" not in n and "query_tokens" not in n else 0.0
        mult = 1.0 if n.startswith("language_model.") else args.vision_lr_mult
        groups.setdefault((wd, mult), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": wd, "mult": mult} for (wd, mult), ps in sorted(groups.items())],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    warm = args.warmup

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        p = (step - warm) / max(1, args.steps - warm)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    order = []
    t_train = time.time()
    curve = []
    ema = None
    for step in range(args.steps):
        if len(order) < args.batch:
            perm = list(range(len(train)))
            rng.shuffle(perm)
            order += perm
        idx, order = order[:args.batch], order[args.batch:]
        px = torch.stack([pixels(os.path.join(train_dir, train[i]["file"])) for i in idx])
        seqs, owner = [], []
        for j, i in enumerate(idx):
            rec = train[i]
            seqs.append(encode_conversation(sp, [("", rec["caption"])]))
            owner.append(j)
            for _ in range(args.convs):
                seqs.append(encode_conversation(sp, conversation(rec, rng)))
                owner.append(j)
        ids, mask = batch_tensors(seqs)
        soft, image = model.soft_tokens(px, with_image=True)
        logits = model.logits(soft[torch.tensor(owner)], ids)
        # The logits at position Q+k-1 predict ids[k].
        pred = logits[:, NUM_QUERY:-1]
        tgt = ids[:, 1:]
        m = mask[:, 1:]
        lm_loss = (F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tgt.reshape(-1), reduction="none") * m.reshape(-1)).sum() / m.sum()
        patch_loss, slot_loss, att_loss = probe.loss(model, image, soft, [train[i] for i in idx])
        loss = lm_loss + args.probe_weight * (patch_loss + slot_loss) + args.attention_weight * att_loss
        for g in opt.param_groups:
            g["lr"] = lr_at(step) * g["mult"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(probe.parameters()), 1.0)
        opt.step()
        ema = lm_loss.item() if ema is None else 0.95 * ema + 0.05 * lm_loss.item()
        if step % 25 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            curve.append({"step": step, "loss": round(ema, 4), "patch": round(patch_loss.item(), 4),
                          "slot": round(slot_loss.item(), 4), "attention": round(att_loss.item(), 4), "seconds": round(el)})
            log(f"step {step:5d} loss {lm_loss.item():.4f} ema {ema:.4f} patch {patch_loss.item():.4f} "
                f"slot {slot_loss.item():.4f} attention {att_loss.item():.3f} lr {lr_at(step):.2e} {el:.0f}s")
        if args.eval_every and step and step % args.eval_every == 0:
            acc, _, _ = evaluate(model, sp, args.test, test[:50])
            log("  eval(50)", json.dumps({k: round(v, 3) for k, v in acc.items()}))
            # A checkpoint to fall back on should the run be cut short.
            save_hf(model, sp_prefix, vocab, os.path.join(args.work, f"hf-step{step}"))
    train_secs = time.time() - t_train
    log(f"training: {args.steps} steps of {args.batch} scenes in {train_secs:.0f}s")

    hf = os.path.join(args.work, "hf")
    save_hf(model, sp_prefix, vocab, hf)
    t_eval = time.time()
    acc, total, items = evaluate(model, sp, args.test, test)
    log(f"held-out evaluation: {time.time()-t_eval:.0f}s")
    report(log, acc, total, items, args.eval_out)
    summary = {"init": args.init, "seed": args.seed, "scene_seed": args.scene_seed, "scenes": args.scenes, "steps": args.steps,
               "batch": args.batch, "lr": args.lr, "threads": args.threads, "vocab": vocab,
               "parameters": n_params, "train_seconds": round(train_secs), "total_seconds": round(time.time() - t_start),
               "accuracy": {t: round(acc[t], 4) for t in acc}, "questions": total, "loss_curve": curve,
               "torch": torch.__version__}
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log(f"total {time.time()-t_start:.0f}s")


if __name__ == "__main__":
    main()
