"""Softmax vs sparsemax vs sigmoid attention over the words of Debian package descriptions (debtags).

An offline stand-in for the SNLI attention experiment of Martins & Astudillo (2016, Table 3; see
``shared/reference/papers.md`` section 1.8(c)): SNLI is not available here, so the task is the library's
``debtags`` set (package -> its debtags, 593 labels), read as WORD SEQUENCES instead of TF-IDF vectors.

Data
    ``sparsexc.datasets.load("debtags")`` fixes the rows, the seeded train/test split and the label matrix;
    its ``row_ids`` (package names) are mapped back to the package records of
    ``sparsexc.datasets.read_packages``. This bookworm index holds the SHORT description only
    (median 6 words). Tokens: the package name's parts as ``pkg:<part>`` tokens (``libdate-manip-perl`` ->
    ``pkg:libdate pkg:manip pkg:perl``: the name is part of what a tagger sees and words like ``perl``,
    ``dev``, ``dbg`` there are strong cues; ``--no-name`` drops them), then the description's words, both cut
    by the same tokenizer as the data set's TF-IDF features (scikit-learn's default: lowercase, ``\\b\\w\\w+\\b``),
    truncated to ``--max-len`` tokens. A validation part (``--val-fraction``) is carved from the training rows
    with ``sparsexc.datasets.seeded_split``; the vocabulary is the tokens seen ``--min-count`` times in the
    remaining fit rows, index 0 = padding, 1 = out-of-vocabulary. A row with no token at all gets one OOV token.

Model (the same for the four variants, which differ only in rho)
    embeddings e_t (``--emb``) -> dropout -> encoder h_t: a 1-layer BiGRU (``--hidden`` per direction, run on
    packed sequences so padding never enters a state) or ``--encoder none`` (h_t = e_t) ->
    attention scores z_t = w^T tanh(W h_t + b) (as in the paper, without the hypothesis term) ->
    weights p = rho(z) over the real tokens -> context c = sum_t p_t h_t -> the library's ``SigmoidHead``
    (593 independent logistic losses, scores sigma(Vc + a)). rho is
    ``softmax`` (padding scored -inf, so weight exactly 0), ``sparsemax`` (``sparsexc.ops.sparsemax_attention``
    with a key padding mask, query = w, keys = tanh(W h + b), values = h, scale 1: the same z) or ``sigmoid``
    (independent logistics, p_t = sigma(z_t), padding set to 0; weights need not sum to 1, as in the paper).
    ``none`` is the paper's NoAttention (its SNLI model feeds the last premise state to the output; here, one
    text): no attention, c = [h_fwd_last ; h_bwd_first], the BiGRU's forward state after the last real token
    and backward state after the first (``--encoder bigru`` only); the attention statistics do not apply.
    Same seed -> same initial weights for all variants (rho has no parameters; ``none`` leaves w, W, b unused);
    same batch, Adam lr and stopping rule.
    The output biases start at the labels' log-odds in the fit rows (else the first epoch mostly learns the
    label frequencies). The learning rate 5e-3 was chosen over 2e-3 on validation P@1 (8000-row subset, 3 epochs).

Training to convergence
    Early stopping on validation P@1 (``--patience`` 3 epochs without a better value, at most ``--max-epochs``
    30), the library Trainer's rule (``sparsexc.train.TrainState.observe``); the best epoch's weights are kept
    and scored once on the test part (model selection never sees it). Each run records ``best_epoch``,
    ``epochs_run``, ``stopped_early`` and ``cap_hit`` (ran all ``max_epochs``: not converged by the rule).
    Seeds 0, 1, 2 by default.

Reported on the test part: P@1, P@5, nDCG@5 (``sparsexc.metrics.evaluate``) and, per description (real tokens
only; means over descriptions):

- ``length``: number of tokens;
- ``support``: softmax and sparsemax: tokens with p_t > 0; sigmoid: tokens with p_t > 0.5;
- ``nonzero``: tokens with p_t > 0 (= length for softmax and sigmoid unless float underflow);
- ``over_0.01``: tokens with p_t > 0.01;
- ``mass``: sum_t p_t (1 for softmax/sparsemax; sigmoid's total attention);
- ``entropy``: H(q) in nats of the normalised weights q = p / sum p (0 = one word, log(length) = uniform);
- ``n90``: the fewest tokens whose weights hold >= 90% of sum_t p_t (largest first);
- ``name_share``: the share of sum_t p_t on ``pkg:`` tokens.

Prints a table and writes ``benchmarks/results/sparsemax_attention.json`` and ``.md`` (``--quick``: a tiny
subset, at most 3 epochs with patience 1, written as ``sparsemax_attention_quick.*``).

Usage::

    python benchmarks/sparsemax_attention.py            # full run: 4 variants x 3 seeds, early stopping
    python benchmarks/sparsemax_attention.py --quick    # smoke run, seconds

Cost (measured 2026-12-04 on the shared 2-core machine, one torch thread, ``--max-epochs 2 --seeds 0``): an epoch
of one run takes about 3.9 CPU s with attention and 3.4 CPU s without, so one epoch of all 12 runs about 45 CPU s:
the full run is at most about 23 CPU minutes (every run at the 30-epoch cap). The full run of 2026-12-04 stopped
every run by patience after 6-12 epochs and took 380 CPU s of training and scoring (534 s wall in all;
``results/sparsemax_attention.json``).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from _harness import (
    RESULTS,
    Stopwatch,
    add_common_flags,
    command_line,
    environment,
    load_average,
    page_header,
    timed,
    use_shared_datasets,
    utc_now,
    write_results,
)
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ATTENTION_VARIANTS = ("softmax", "sparsemax", "sigmoid")  # the weighting functions rho
NO_ATTENTION = "none"  # the paper's NoAttention: c = the BiGRU's last states, no weights at all
VARIANTS = (*ATTENTION_VARIANTS, NO_ATTENTION)
PAD, OOV = 0, 1
NAME_PREFIX = "pkg:"
SIGMOID_SUPPORT_THRESHOLD = 0.5
STAT_KEYS = ("length", "support", "nonzero", "over_0.01", "mass", "entropy", "n90", "name_share")
RUN_KEYS = ("best_epoch", "epochs_run", "wall_seconds", "cpu_seconds")  # per-run records summarised over seeds


@dataclass
class Config:
    """Sizes and budget shared by every variant (``--quick`` shrinks them)."""

    max_epochs: int = 30  # the cap; training stops earlier when validation P@1 stops improving
    patience: int = 3  # epochs without a better validation P@1 before stopping (early stopping)
    batch_size: int = 128
    lr: float = 5e-3  # chosen over 2e-3 on validation P@1 (8000-row subset, 3 epochs, softmax and sparsemax)
    emb: int = 64
    hidden: int = 64  # per GRU direction; the states h_t have 2 * hidden entries
    attn: int = 64
    encoder: str = "bigru"
    dropout: float = 0.1
    max_len: int = 32
    min_count: int = 2
    val_fraction: float = 0.1
    val_seed: int = 1
    split: int = 1  # the debtags split (its seed)
    use_name: bool = True
    prior_bias: bool = True  # start the output biases at the labels' log-odds in the fit rows
    seeds: tuple[int, ...] = (0, 1, 2)
    subset: int | None = None  # rows kept of each of fit / val / test (quick mode, trials); None = all
    threads: int = 1  # torch intra-op threads, see --threads


# -- data -------------------------------------------------------------------------------------------------


@dataclass
class TokenData:
    """Padded token ids of one part, its labels and the token strings (for the qualitative examples)."""

    ids: Tensor  # (n, max_len) int64, PAD after the real tokens
    lengths: Tensor  # (n,) int64, >= 1
    Y: sp.csr_matrix
    tokens: list[list[str]]
    names: list[str]


def tokenizer():
    """The debtags TF-IDF features' word rule (scikit-learn's default analyzer, lowercase, unigrams)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True).build_analyzer()


def tokenize(name: str, description: str, analyze, use_name: bool, max_len: int) -> list[str]:
    """``pkg:`` name parts (if ``use_name``) then the description's words, at most ``max_len``."""
    words = [NAME_PREFIX + w for w in analyze(name)] if use_name else []
    return (words + analyze(description))[:max_len]


def load_debtags_tokens(cfg: Config) -> tuple[dict[str, TokenData], list[str], list[str], dict[str, Any]]:
    """The fit / val / test parts as token ids, the vocabulary, the label names, and provenance."""
    from sparsexc.datasets import get_spec, load, locate, read_packages, seeded_split

    data = load("debtags", split=cfg.split)
    records = {p.name: p for p in read_packages(locate(get_spec("debtags"))[0])}
    analyze = tokenizer()
    parts_rows: dict[str, tuple[list[str], sp.csr_matrix]] = {}
    fit_rows, val_rows = seeded_split(data.train.n_samples, cfg.val_fraction, cfg.val_seed)
    train_ids = np.asarray(data.row_ids["train"], dtype=object)
    parts_rows["fit"] = (list(train_ids[fit_rows]), data.train.Y[fit_rows])
    parts_rows["val"] = (list(train_ids[val_rows]), data.train.Y[val_rows])
    parts_rows["test"] = (list(data.row_ids["test"]), data.test.Y)
    if cfg.subset is not None:  # quick mode: a seeded subset of each part
        rng = np.random.default_rng(cfg.val_seed)
        for part, (names, Y) in parts_rows.items():
            keep = np.sort(rng.permutation(len(names))[: cfg.subset])
            parts_rows[part] = ([names[i] for i in keep], Y[keep])

    token_lists = {
        part: [tokenize(n, records[n].description, analyze, cfg.use_name, cfg.max_len) for n in names]
        for part, (names, _) in parts_rows.items()
    }
    counts = Counter(t for toks in token_lists["fit"] for t in toks)
    vocab = ["<pad>", "<oov>"] + sorted(t for t, c in counts.items() if c >= cfg.min_count)
    index = {t: i for i, t in enumerate(vocab)}
    parts = {}
    for part, (names, Y) in parts_rows.items():
        toks = [t or ["<oov>"] for t in token_lists[part]]  # an empty row still needs one key to attend to
        ids = torch.full((len(toks), cfg.max_len), PAD, dtype=torch.long)
        for i, row in enumerate(toks):
            ids[i, : len(row)] = torch.tensor([index.get(t, OOV) for t in row])
        lengths = torch.tensor([len(t) for t in toks], dtype=torch.long)
        parts[part] = TokenData(ids, lengths, sp.csr_matrix(Y), toks, names)
    oov = {part: float((d.ids == OOV).sum()) / float(d.lengths.sum()) for part, d in parts.items()}
    info = {
        "dataset": "debtags",
        "split": cfg.split,
        "n_labels": int(data.n_labels),
        "rows": {p: len(d.names) for p, d in parts.items()},
        "vocabulary": len(vocab),
        "oov_token_rate": {p: round(v, 4) for p, v in oov.items()},
        "source": data.info.get("source"),
        "split_rule": data.info.get("split"),
    }
    return parts, vocab, list(data.train.label_names), info


# -- model ------------------------------------------------------------------------------------------------


def attend(values: Tensor, keys: Tensor, query: Tensor, mask: Tensor, rho: str) -> tuple[Tensor, Tensor]:
    r"""Context :math:`c = \sum_t p_t h_t` and weights :math:`p = \rho(z)`, :math:`z_t = w^\top k_t`.

    Parameters
    ----------
    values : (B, T, H) the states h_t; keys : (B, T, A) the tanh(W h_t + b); query : (A,) the vector w;
    mask : (B, T) bool, True = a real token (every row has at least one); rho : one of ``ATTENTION_VARIANTS``.

    Returns
    -------
    context (B, H), weights (B, T) with weight exactly 0 on padding.
    """
    if rho == "sparsemax":
        from sparsexc.ops import sparsemax_attention

        q = query.expand(values.shape[0], 1, -1)
        context, weights = sparsemax_attention(q, keys, values, scale=1.0, key_mask=mask, return_weights=True)
        return context.squeeze(1), weights.squeeze(1)
    z = keys @ query
    if rho == "softmax":
        weights = z.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    elif rho == "sigmoid":
        weights = torch.sigmoid(z).masked_fill(~mask, 0.0)
    else:
        raise ValueError(f"rho must be one of {', '.join(ATTENTION_VARIANTS)}; got {rho!r}")
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class AttentionTagger(nn.Module):
    """Embeddings -> (BiGRU) -> word attention with ``rho`` -> ``SigmoidHead`` over the labels.

    ``rho = "none"`` (no attention) needs the BiGRU: the context is then c = [h_fwd_last ; h_bwd_first], the
    forward direction's state after the last real token and the backward direction's after the first (the
    paper's NoAttention feeds the last premise state to the output). The attention parameters are still
    created, and never used, so that one seed gives every variant the same initial weights.
    """

    def __init__(self, vocab_size: int, n_labels: int, rho: str, cfg: Config) -> None:
        super().__init__()
        from sparsexc.heads import SigmoidHead

        if rho not in VARIANTS:
            raise ValueError(f"rho must be one of {', '.join(VARIANTS)}; got {rho!r}")
        if cfg.encoder not in ("bigru", "none"):
            raise ValueError(f"encoder must be 'bigru' or 'none'; got {cfg.encoder!r}")
        if rho == NO_ATTENTION and cfg.encoder != "bigru":
            raise ValueError("rho 'none' (no attention) needs the bigru encoder: its context is the GRU's last states")
        self.rho = rho
        self.embed = nn.Embedding(vocab_size, cfg.emb, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.emb, cfg.hidden, batch_first=True, bidirectional=True) if cfg.encoder == "bigru" else None
        width = 2 * cfg.hidden if self.gru is not None else cfg.emb
        self.key = nn.Linear(width, cfg.attn)
        self.query = nn.Parameter(torch.empty(cfg.attn).uniform_(-1 / cfg.attn**0.5, 1 / cfg.attn**0.5))
        self.head = SigmoidHead(width, n_labels)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """Context vectors (B, width) and attention weights (B, T), T = the longest row of the batch
        (None for ``rho = "none"``)."""
        T = int(lengths.max())
        ids = ids[:, :T]
        mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
        h = self.dropout(self.embed(ids))
        if self.gru is not None:
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            states, last = self.gru(packed)
            if self.rho == NO_ATTENTION:  # last: (2, B, hidden), in the batch's order; packing stops at each length
                return torch.cat([last[0], last[1]], dim=1), None
            h, _ = pad_packed_sequence(states, batch_first=True, total_length=T)
        return attend(h, torch.tanh(self.key(h)), self.query, mask, self.rho)


# -- training and evaluation ------------------------------------------------------------------------------


def _batches(n: int, size: int, order: np.ndarray | None = None):
    order = np.arange(n) if order is None else order
    for start in range(0, n, size):
        yield order[start : start + size]


@torch.no_grad()
def predict(model: AttentionTagger, data: TokenData, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray | None]:
    """Label scores (n, C) and attention weights (n, max_len), padding 0 (None without attention)."""
    model.eval()
    scores, weights = [], torch.zeros(data.ids.shape, dtype=torch.float32)
    for rows in _batches(len(data.names), batch_size):
        context, p = model(data.ids[rows], data.lengths[rows])
        scores.append(model.head.scores(context))
        if p is not None:
            weights[rows, : p.shape[1]] = p
    return torch.cat(scores).numpy(), (None if model.rho == NO_ATTENTION else weights.numpy())


def train_variant(
    parts: dict[str, TokenData], vocab_size: int, n_labels: int, rho: str, seed: int, cfg: Config
) -> tuple[AttentionTagger, dict[str, Any]]:
    """Train with Adam until validation P@1 has not improved for ``cfg.patience`` epochs, at most
    ``cfg.max_epochs``; keep the best epoch's weights (the first on ties). Early stopping's bookkeeping is the
    library Trainer's (``TrainState.observe``), and so is the run's summary (``fit_summary``)."""
    from sparsexc.heads import LabelBatch
    from sparsexc.metrics import evaluate
    from sparsexc.train import TrainState, epoch_order, fit_summary

    torch.manual_seed(seed)
    model = AttentionTagger(vocab_size, n_labels, rho, cfg)
    fit, val = parts["fit"], parts["val"]
    if cfg.prior_bias:  # otherwise the first epoch mostly learns the 593 label frequencies (add-one smoothed)
        freq = (np.asarray(fit.Y.sum(axis=0)).ravel() + 1.0) / (fit.Y.shape[0] + 2.0)
        with torch.no_grad():
            model.head.output.bias.copy_(torch.from_numpy(np.log(freq / (1.0 - freq))))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    state = TrainState(n_rows=len(fit.names), batch_size=cfg.batch_size, seed=seed)
    started = Stopwatch()
    while not state.finished:
        epoch, epoch_watch = state.epoch, Stopwatch()
        model.train()
        total = 0.0
        for rows in _batches(len(fit.names), cfg.batch_size, epoch_order(seed, epoch, len(fit.names))):
            context, _ = model(fit.ids[rows], fit.lengths[rows])
            loss = model.head.loss(context, LabelBatch.from_csr(fit.Y[rows]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        p_at_1 = round(evaluate(val.Y, predict(model, val)[0], ks=(1,))["P@1"], 4)  # rounded: ties as recorded
        if state.observe(p_at_1, higher_is_better=True, patience=cfg.patience):
            state.best_weights = copy.deepcopy(model.state_dict())
        record = {"epoch": epoch + 1, "train_loss": round(total / len(fit.names), 4), "val_P@1": p_at_1}
        state.end_epoch({**record, "cpu_seconds": round(epoch_watch.cpu, 2)}, cfg.max_epochs)
    assert state.best_weights is not None  # the first epoch always improves on none
    model.load_state_dict(state.best_weights)
    summary = fit_summary(state.history, state.best_epoch, cfg.max_epochs, cfg.patience, "P@1", state.stopped_early)
    return model, {
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_val_P@1": summary["kept_value"],
        "epochs_run": summary["epochs_run"],
        "stopped_early": summary["stopped_early"],
        "cap_hit": not summary["stopped_early"],  # ran all max_epochs: not converged by the patience rule
        "stop": summary["message"],
        "train_seconds": round(started.wall, 2),
        "train_cpu_seconds": round(started.cpu, 2),
    }


def attention_stats(weights: np.ndarray, lengths: np.ndarray, is_name: np.ndarray, rho: str) -> dict[str, float]:
    """Means over rows of the per-description attention statistics (definitions in the module docstring)."""
    rows = []
    for p_full, n, name in zip(weights, lengths, is_name):
        p = p_full[:n].astype(np.float64)
        mass = p.sum()
        q = p / mass if mass > 0 else np.full(n, 1.0 / n)
        nz = q[q > 0]
        top = np.cumsum(np.sort(p)[::-1])
        support = (p > SIGMOID_SUPPORT_THRESHOLD) if rho == "sigmoid" else (p > 0)
        rows.append(
            (
                n,
                support.sum(),
                (p > 0).sum(),
                (p > 0.01).sum(),
                mass,
                -(nz * np.log(nz)).sum(),
                int(np.searchsorted(top, 0.9 * mass - 1e-12)) + 1,
                (p[name[:n]].sum() / mass) if mass > 0 else 0.0,
            )
        )
    return {k: float(v) for k, v in zip(STAT_KEYS, np.mean(np.asarray(rows, dtype=np.float64), axis=0))}


def run_variant(
    parts: dict[str, TokenData], vocab: list[str], n_labels: int, rho: str, seed: int, cfg: Config
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Train one (variant, seed); return its result row, test scores and test weights."""
    from sparsexc.metrics import evaluate

    with timed() as watch:
        model, log = train_variant(parts, len(vocab), n_labels, rho, seed, cfg)
        test = parts["test"]
        scores, weights = predict(model, test)
        metrics = evaluate(test.Y, scores, ks=(1, 5))
        attention = None  # not applicable without attention weights
        if weights is not None:
            is_name = np.zeros(test.ids.shape, dtype=bool)
            for i, toks in enumerate(test.tokens):
                is_name[i, : len(toks)] = [t.startswith(NAME_PREFIX) for t in toks]
            attention = attention_stats(weights, test.lengths.numpy(), is_name, rho)
    row = {
        "variant": rho,
        "seed": seed,
        "metrics": {k: metrics[k] for k in ("P@1", "P@5", "nDCG@5")},
        "attention": attention,
        **log,
        "wall_seconds": round(watch.wall, 2),
        "cpu_seconds": round(watch.cpu, 2),
        "load_average_after": load_average(),
    }
    return row, scores, weights


# -- report -----------------------------------------------------------------------------------------------


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and sample std over seeds of every metric, attention statistic (none without attention) and
    training record (best epoch, epochs run, wall and CPU seconds), per variant; ``n_seeds`` and ``cap_hit``
    (how many of its runs ran all ``max_epochs``) too."""
    out: dict[str, dict[str, Any]] = {}
    for rho in VARIANTS:
        mine = [r for r in rows if r["variant"] == rho]
        if not mine:
            continue
        values = {
            f"{group}.{k}": [r[group][k] for r in mine]
            for group in ("metrics", "attention")
            for k in (mine[0][group] or {})
        }
        for key in RUN_KEYS:
            if all(key in r for r in mine):  # older files have no epochs_run / cpu_seconds
                values[key] = [r[key] for r in mine]
        out[rho] = {
            k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
            for k, v in values.items()
        }
        out[rho]["n_seeds"] = len(mine)
        out[rho]["cap_hit"] = sum(bool(r.get("cap_hit")) for r in mine)
    return out


def examples(
    parts: dict[str, TokenData],
    label_names: Sequence[str],
    weights: dict[str, np.ndarray | None],
    scores: dict[str, np.ndarray],
    n: int,
    seed: int,
    top: int = 3,
) -> list[dict[str, Any]]:
    """``n`` seeded test rows with >= 6 tokens: tokens, true labels, each variant's top-weighted tokens (None
    without attention) and top label."""
    test = parts["test"]
    candidates = np.flatnonzero(test.lengths.numpy() >= 6)
    picked = np.sort(np.random.default_rng(seed).choice(candidates, size=min(n, len(candidates)), replace=False))
    out = []
    for i in picked:
        toks = test.tokens[i]
        entry = {
            "package": test.names[i],
            "tokens": toks,
            "true_labels": [label_names[j] for j in test.Y[i].indices],
            "variants": {},
        }
        for rho, w in weights.items():
            top_label = label_names[int(np.argmax(scores[rho][i]))]
            if w is None:
                entry["variants"][rho] = {"top_tokens": None, "support": None, "top_label": top_label}
                continue
            p = w[i, : len(toks)]
            order = [j for j in np.argsort(-p, kind="stable")[:top] if p[j] > 0]  # no zero-weight words
            entry["variants"][rho] = {
                "top_tokens": [[toks[j], round(float(p[j]), 3)] for j in order],
                "support": int((p > (SIGMOID_SUPPORT_THRESHOLD if rho == "sigmoid" else 0)).sum()),
                "top_label": top_label,
            }
        out.append(entry)
    return out


def _fmt(stat: dict[str, float] | None, digits: int = 3) -> str:
    """'mean ± std' ('–' for a statistic the variant does not have, e.g. attention without attention)."""
    if stat is None:
        return "–"
    return f"{stat['mean']:.{digits}f}" + (f" ± {stat['std']:.{digits}f}" if stat["std"] else "")


def table(summary: dict[str, dict[str, Any]]) -> str:
    """The Markdown results table, one row per variant (mean ± std over seeds)."""
    cols = [
        ("P@1", "metrics.P@1", 4),
        ("P@5", "metrics.P@5", 4),
        ("nDCG@5", "metrics.nDCG@5", 4),
        ("length", "attention.length", 2),
        ("support", "attention.support", 2),
        ("p>0", "attention.nonzero", 2),
        ("p>0.01", "attention.over_0.01", 2),
        ("sum p", "attention.mass", 3),
        ("entropy (nats)", "attention.entropy", 3),
        ("n90", "attention.n90", 2),
        ("name share", "attention.name_share", 3),
        ("best epoch", "best_epoch", 1),
        ("epochs run", "epochs_run", 1),
        ("wall s / seed", "wall_seconds", 1),
        ("CPU s / seed", "cpu_seconds", 1),
    ]
    lines = ["| variant | " + " | ".join(c[0] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for rho, s in summary.items():
        lines.append(f"| {rho} | " + " | ".join(_fmt(s.get(key), d) for _, key, d in cols) + " |")
    return "\n".join(lines)


def runs_table(rows: list[dict[str, Any]], max_epochs: int) -> str:
    """One line per (variant, seed): the kept epoch, the epochs run, how training ended, validation and test P@1."""
    lines = [
        "| variant | seed | best epoch | epochs run | stopped by | val P@1 (kept) | test P@1 | CPU s |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        how = "patience" if r.get("stopped_early") else f"cap ({max_epochs} epochs)"
        lines.append(
            f"| {r['variant']} | {r['seed']} | {r['best_epoch']} | {r.get('epochs_run', len(r['history']))} | {how} "
            f"| {r.get('best_val_P@1', float('nan')):.4f} | {r['metrics']['P@1']:.4f} "
            f"| {r.get('cpu_seconds', float('nan')):.1f} |"
        )
    return "\n".join(lines)


def compare(a: dict[str, Any], b: dict[str, Any], key: str = "metrics.P@1") -> tuple[str, float, float]:
    """How ``a``'s mean compares with ``b``'s: ('similar to' | 'higher than' | 'lower than', difference of the
    means, noise = the larger seed std); 'similar' = |difference| <= max(0.01, 2 noise)."""
    diff = a[key]["mean"] - b[key]["mean"]
    noise = max(a[key]["std"], b[key]["std"])
    word = "similar to" if abs(diff) <= max(0.01, 2 * noise) else ("higher than" if diff > 0 else "lower than")
    return word, diff, noise


def verdict(summary: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Sentences comparing sparsemax with softmax (and sigmoid) on the paper's claim, from the measured numbers."""
    if "softmax" not in summary or "sparsemax" not in summary:
        return "Needs both softmax and sparsemax to compare."
    p1 = {(r["variant"], r["seed"]): r["metrics"]["P@1"] for r in rows}
    pairs = [s for v, s in p1 if v == "softmax" and ("sparsemax", s) in p1]
    wins = sum(p1[("sparsemax", s)] > p1[("softmax", s)] for s in pairs)
    soft, sparse = summary["softmax"], summary["sparsemax"]
    acc, d1, noise = compare(sparse, soft)
    ratio = sparse["attention.n90"]["mean"] / soft["attention.n90"]["mean"]
    sup = sparse["attention.support"]["mean"] / sparse["attention.length"]["mean"]
    compact = "more compact" if ratio < 0.9 and sup < 0.9 else "not clearly more compact"
    text = (
        f"Paper's claim (SNLI, Table 3): sparsemax attention reaches accuracy similar to softmax attention with "
        f"a more compact, selective attention. Here: sparsemax P@1 is {acc} softmax's "
        f"(difference of the means {d1:+.4f}, higher in {wins} of {len(pairs)} seeds; seed std up to {noise:.4f}; "
        f"'similar' = within max(0.01, 2 std)), and its attention is {compact}: it puts non-zero weight on "
        f"{100 * sup:.0f}% of the tokens on average and needs {ratio:.2f}x as many tokens as softmax to cover 90% "
        f"of the mass."
    )
    if "sigmoid" in summary:
        sig = summary["sigmoid"]
        text += (
            f" Independent logistics (sigmoid): P@1 {sig['metrics.P@1']['mean']:.4f}, "
            f"{sig['attention.support']['mean']:.2f} of {sig['attention.length']['mean']:.2f} tokens above 0.5, "
            f"total weight {sig['attention.mass']['mean']:.2f}; normalised, its weights have entropy "
            f"{sig['attention.entropy']['mean']:.2f} nats (softmax {soft['attention.entropy']['mean']:.2f}, "
            f"sparsemax {sparse['attention.entropy']['mean']:.2f}) and need {sig['attention.n90']['mean']:.2f} "
            f"tokens for 90% of their mass."
        )
    if NO_ATTENTION in summary:
        none = summary[NO_ATTENTION]
        best = max(("softmax", "sparsemax"), key=lambda v: summary[v]["metrics.P@1"]["mean"])
        word, diff, spread = compare(summary[best], none)
        text += (
            f" Paper's Table 3 also has attention beating no attention (NoAttention 80.99 vs SoftAttention 82.08 and "
            f"SparseAttention 82.20). Here the better attention variant ({best}, P@1 "
            f"{summary[best]['metrics.P@1']['mean']:.4f}) is {word} no attention (the BiGRU's last states, P@1 "
            f"{none['metrics.P@1']['mean']:.4f}; difference {diff:+.4f}, seed std up to {spread:.4f}, same rule)."
        )
    capped = sum(s.get("cap_hit", 0) for s in summary.values())
    if capped:
        text += (
            f" {capped} run(s) ran all epochs without the patience running out: not converged, so these numbers "
            "are not final."
        )
    return text


def markdown(report: dict[str, Any]) -> str:
    cfg, info, m = report["config"], report["data"], report["machine"]
    title = "Sparsemax attention (debtags words; offline stand-in for the paper's SNLI experiment)"
    lines = [
        page_header(title, m, report["date"], report["command"]),
        "",
        f"Total {report['total_seconds']:.0f} s.",
        "",
        f"Data: debtags split {info['split']} (`sparsexc.datasets.load`), rows fit/val/test {info['rows']}, "
        f"{info['n_labels']} labels, vocabulary {info['vocabulary']} (min count {cfg['min_count']}, from the fit rows), "
        f"OOV token rate {info['oov_token_rate']}; package-name tokens {'included' if cfg['use_name'] else 'excluded'}. "
        f"Validation = {cfg['val_fraction']:.0%} of the training rows (seeded_split, seed {cfg['val_seed']}); "
        "model selection never sees the test part.",
        "",
        f"Model: embeddings {cfg['emb']} -> {cfg['encoder']} (hidden {cfg['hidden']} per direction) -> attention "
        f"z_t = w^T tanh(W h_t + b) (dim {cfg['attn']}), p = rho(z), c = sum p_t h_t -> SigmoidHead (BCE over the labels). "
        "Variant `none` (the paper's NoAttention, read for one text): no attention, c = [h_fwd_last ; h_bwd_first], "
        "the concatenated last states of the GRU's two directions (forward after the last token, backward after "
        "the first); same GRU, same head, same budget; attention statistics do not apply ('–').",
        "",
        f"Protocol (the same for every variant): Adam lr {cfg['lr']}, batch {cfg['batch_size']}, dropout "
        f"{cfg['dropout']}, max length {cfg['max_len']}; trained until validation P@1 has not improved for "
        f"{cfg['patience']} epochs (early stopping), at most {cfg['max_epochs']} epochs; the best validation-P@1 "
        f"epoch's weights are kept and scored once on the test part. Seeds {cfg['seeds']} (same seed = same initial "
        "weights and batch order for every variant).",
        "",
        "Test-split results, mean ± std (sample std) over seeds. Attention statistics are means over test "
        "descriptions of: support = tokens with p > 0 (softmax, sparsemax) or p > 0.5 (sigmoid); p>0 and p>0.01 = "
        "tokens above those weights; sum p = total weight (1 except sigmoid); entropy of p / sum p in nats; n90 = "
        "fewest tokens holding 90% of sum p; name share = share of sum p on `pkg:` (package-name) tokens. CPU s = "
        "process CPU seconds (time.process_time) of training and scoring one seed.",
        "",
        table(report["summary"]),
        "",
        report["verdict"],
        "",
        "Per run (stopped by 'patience' = converged by the rule; 'cap' = ran all epochs before the patience ran out, "
        "not converged by the rule):",
        "",
        runs_table(report["rows"], cfg["max_epochs"]),
        "",
        f"The CPUs were shared with other jobs: load average at start {report['load_average_start']}, at end "
        f"{report['load_average_end']}. Per-seed rows, epoch histories and wall times in the JSON.",
        "",
        "## Examples (seed " + str(cfg["seeds"][0]) + " models; top 3 tokens by weight, support, top label)",
        "",
    ]
    for ex in report["examples"]:
        lines.append(f"- **{ex['package']}**: `{' '.join(ex['tokens'])}`; true: {', '.join(ex['true_labels'])}")
        for rho, v in ex["variants"].items():
            if v["top_tokens"] is None:
                lines.append(f"  - {rho}: no attention; top label {v['top_label']}")
                continue
            words = ", ".join(f"{t} {w:.2f}" for t, w in v["top_tokens"])
            lines.append(f"  - {rho}: {words}; support {v['support']}/{len(ex['tokens'])}; top label {v['top_label']}")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_flags(parser, quick="tiny subset (300 rows per part), at most 3 epochs (patience 1), small model")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated from {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default=None, help="comma-separated model seeds (default 0,1,2; quick: 0)")
    parser.add_argument(
        "--max-epochs", type=int, default=None, help=f"the cap on epochs (default {defaults.max_epochs})"
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help=f"stop after this many epochs without a better validation P@1 (default {defaults.patience})",
    )
    parser.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {defaults.lr})")
    parser.add_argument("--encoder", choices=("bigru", "none"), default=defaults.encoder)
    parser.add_argument("--no-name", action="store_true", help="leave the package-name tokens out")
    parser.add_argument("--max-len", type=int, default=defaults.max_len)
    parser.add_argument("--subset", type=int, default=None, help="keep this many seeded rows of each part (trials)")
    parser.add_argument(
        "--threads",
        type=int,
        default=defaults.threads,
        help="torch threads (default 1: the per-batch ops are tiny, and on the shared 2-core machine "
        "a second thread made training 20-50x slower under load, measured)",
    )
    parser.add_argument("--examples", type=int, default=5, help="qualitative examples in the .md")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or not variants:
        parser.error(f"--variants must name some of {', '.join(VARIANTS)}; got {args.variants!r}")
    args.variants = variants
    if args.examples < 0:
        parser.error(f"--examples must be >= 0; got {args.examples}")
    if NO_ATTENTION in variants and args.encoder != "bigru":
        parser.error(f"variant {NO_ATTENTION!r} (no attention) needs --encoder bigru: its context is the GRU's states")
    cfg = Config(encoder=args.encoder, use_name=not args.no_name)
    if args.quick:
        cfg = Config(
            max_epochs=3,
            patience=1,
            emb=16,
            hidden=16,
            attn=16,
            seeds=(0,),
            subset=300,
            encoder=args.encoder,
            use_name=not args.no_name,
        )
    if args.seeds is not None:
        try:
            cfg.seeds = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            parser.error(f"--seeds must be comma-separated integers; got {args.seeds!r}")
    for flag, field, low in (
        ("--subset", "subset", 2),
        ("--max-epochs", "max_epochs", 1),
        ("--patience", "patience", 1),
        ("--threads", "threads", 1),
        ("--max-len", "max_len", 1),
    ):
        value = getattr(args, field)
        if value is not None:
            if value < low:
                parser.error(f"{flag} must be >= {low}; got {value}")
            setattr(cfg, field, value)
    if args.lr is not None:
        if not args.lr > 0:
            parser.error(f"--lr must be > 0; got {args.lr}")
        cfg.lr = args.lr
    return args, cfg


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the table; write the JSON and .md; return the report (a dict)."""
    args, cfg = parse_args(argv)
    use_shared_datasets()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        started, load_start = Stopwatch(), load_average()
        torch.optim.Adam(
            [nn.Parameter(torch.zeros(1))]
        )  # its first use imports torch._dynamo (seconds): not a variant's time
        parts, vocab, label_names, info = load_debtags_tokens(cfg)
        rows, weights, scores = [], {}, {}
        for seed in cfg.seeds:
            for rho in args.variants:  # variants alternate within a seed, so machine load hits them alike
                row, s, w = run_variant(parts, vocab, info["n_labels"], rho, seed, cfg)
                rows.append(row)
                if seed == cfg.seeds[0]:
                    weights[rho], scores[rho] = w, s
                att = row["attention"]
                support = f"support {att['support']:.2f}/{att['length']:.2f} " if att else ""
                print(
                    f"{rho:9s} seed {seed}: P@1 {row['metrics']['P@1']:.4f} P@5 {row['metrics']['P@5']:.4f} "
                    f"{support}best epoch {row['best_epoch']} of {row['epochs_run']} run "
                    f"{row['wall_seconds']:.0f} s ({row['cpu_seconds']:.0f} CPU s)",
                    file=sys.stderr,
                    flush=True,
                )
        summary = summarise(rows)
        report = {
            "benchmark": "sparsemax_attention",
            "quick": bool(args.quick),
            "date": utc_now(),
            "command": command_line(__file__, argv),
            "config": {**asdict(cfg), "seeds": list(cfg.seeds)},
            "data": info,
            "summary": summary,
            "verdict": verdict(summary, rows),
            "rows": rows,
            "examples": examples(parts, label_names, weights, scores, args.examples, cfg.val_seed),
            "machine": environment(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "total_seconds": round(started.wall, 1),
        }
    finally:
        torch.set_num_threads(threads)
    stem = "sparsemax_attention_quick" if args.quick else "sparsemax_attention"
    write_results(args.out_dir, stem, report, markdown(report))
    print(table(summary))
    print(report["verdict"])
    return report


if __name__ == "__main__":
    main()
