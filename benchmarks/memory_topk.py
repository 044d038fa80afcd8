"""Large associative memory: dense soft read vs top-k read through a faiss index.

    python benchmarks/memory_topk.py            # N = 10^3 … 10^6, D = 64 and 256
    python benchmarks/memory_topk.py --quick    # N up to 10^5

Setting (stated because the answer depends on it): keys are N random unit vectors in
R^D, values are (N, 64) Gaussian; each query is a *noisy cue of a stored key*
(associative recall): q = normalise(K_j + ε), ‖ε‖ = ``--noise`` (0.6 ⇒ cos(q, K_j) ≈ 0.86),
read with C_i = softmax_i(β K_iᵀq), β = ``--beta`` (20; NTM-style key strength, Graves
et al. 2014). A second setting, ``--diffuse``, uses random queries and β = √D (scaled
dot-product attention over unrelated keys): there the attention is spread over many
keys and no small k can capture it — reported for honesty.

Measured per read of a batch of ``--batch`` queries (1 thread): wall time of the dense
read (Q Kᵀ, softmax, C V in torch) and of the top-k read (faiss search + gather + softmax
over k in torch) with the exact ``IndexFlatIP`` and an ``IndexIVFFlat`` (nlist ≈ 4√N
capped at 1024, nprobe = ``--nprobe``); attention-mass recall = Σ_{i ∈ top-k} C_i (dense
weights); relative error of the read ‖y_k − y‖ / ‖y‖; working memory (the dense (B, N)
weights vs the (B, k, D + Dv) gathered rows) and the index size. Index build time is
reported separately (paid once per memory write, not per read).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genoise.io import atomic_write_text  # noqa: E402
from genoise.memory.kv import build_index, soft_read, topk_read  # noqa: E402

VALUE_DIM = 64


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - start) / repeats, out


def make_memory(n: int, dim: int, batch: int, noise: float, diffuse: bool, seed: int,
                clustered: bool = True, cluster_size: int = 1000, spread: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(n, dim, generator=g)
    keys /= keys.norm(dim=1, keepdim=True)
    if clustered:  # mixture of N/cluster_size directions, each key at cos ≈ 1/√(1+spread²) of its centre
        centres = torch.randn(max(1, n // cluster_size), dim, generator=g)
        centres /= centres.norm(dim=1, keepdim=True)
        owner = torch.randint(0, centres.shape[0], (n,), generator=g)
        keys = centres[owner] + spread * keys
        keys /= keys.norm(dim=1, keepdim=True)
    values = torch.randn(n, VALUE_DIM, generator=g)
    if diffuse:
        queries = torch.randn(batch, dim, generator=g)
    else:
        target = torch.randint(0, n, (batch,), generator=g)
        eps = torch.randn(batch, dim, generator=g)
        queries = keys[target] + noise * eps / eps.norm(dim=1, keepdim=True)
    queries /= queries.norm(dim=1, keepdim=True)
    return keys, values, queries


def index_bytes(index) -> int:
    import faiss

    return len(faiss.serialize_index(index))


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f}"


def bench_one(n: int, dim: int, args: argparse.Namespace) -> dict:
    keys, values, queries = make_memory(n, dim, args.batch, args.noise, args.diffuse, args.seed,
                                         args.keys == "clustered")
    beta = math.sqrt(dim) if args.diffuse else args.beta
    temperature = 1.0 / beta
    repeats = max(1, min(20, int(2e7 // (n * dim))))
    t_dense, (y_dense, w_dense) = timed(
        lambda: soft_read(queries, keys, values, temperature=temperature, return_weights=True), repeats)
    entropy = -(w_dense * w_dense.clamp_min(1e-30).log()).sum(1)
    row = {"N": n, "D": dim, "dense_ms": 1e3 * t_dense, "dense_mem": args.batch * n * 4 * 2,
           "eff_keys": float(entropy.exp().mean())}
    indexes = {}
    for kind in ["flat", *args.approx.split(",")]:
        if (kind == "flat" and n > args.flat_max) or (kind == "hnsw" and n > args.hnsw_max):
            continue
        options = {"ivf": dict(nlist=min(1024, max(1, int(4 * math.sqrt(n)))), nprobe=args.nprobe,
                               seed=args.seed),
                   "hnsw": dict(hnsw_m=args.hnsw_m, ef_search=args.ef_search)}.get(kind, {})
        start = time.perf_counter()
        indexes[kind] = build_index(keys, kind, **options)
        row[f"{kind}_build_s"] = time.perf_counter() - start
    for kind, index in indexes.items():
        t, (y, ids, _) = timed(lambda index=index: topk_read(
            queries, keys, values, args.k, index=index, temperature=temperature, return_weights=True),
            repeats if kind == "flat" else max(3, repeats))
        valid = ids >= 0
        mass = (w_dense.gather(1, ids.clamp_min(0)) * valid).sum(1)
        row[f"{kind}_ms"] = 1e3 * t
        row[f"{kind}_speedup"] = t_dense / t
        row[f"{kind}_recall"] = float(mass.mean())
        row[f"{kind}_recall_min"] = float(mass.min())
        row[f"{kind}_err"] = float(((y - y_dense).norm(dim=1) / y_dense.norm(dim=1)).mean())
    row["topk_mem"] = args.batch * args.k * (dim + VALUE_DIM) * 4
    row["index_mem"] = {kind: index_bytes(index) for kind, index in indexes.items()}
    return row


KIND_LABEL = {"flat": "exact IndexFlatIP", "ivf": "IVF", "hnsw": "HNSW"}


def table(rows: list[dict], args: argparse.Namespace) -> str:
    keys = ("keys: mixture of N/1000 random directions, cos(key, centre) ≈ 0.71" if args.keys == "clustered"
            else "keys: uniform on the sphere")
    setting = keys + "; " + ("random queries, β = √D (diffuse attention)" if args.diffuse else
               f"query = noisy stored key (‖ε‖ = {args.noise}), β = {args.beta}")
    kinds = [k for k in ("flat", "ivf", "hnsw") if any(f"{k}_ms" in r for r in rows)]
    head = (f"Setting: unit keys, values (N, {VALUE_DIM}), {setting}; batch {args.batch} queries, "
            f"k = {args.k}; IVF nlist = min(1024, 4√N), nprobe = {args.nprobe}; HNSW M = {args.hnsw_m}, "
            f"efSearch = {args.ef_search}; 1 thread. Recall = dense attention mass on the k keys "
            "read (mean, min over queries); eff. keys = exp(entropy) of the dense attention; "
            "ms = one read of the whole batch.\n\n")
    cols = ["N", "D", "eff. keys", "dense ms"]
    for k in kinds:
        cols += [f"{KIND_LABEL[k]} ms", "speed-up", "recall (min)", "build s"]
    cols += ["dense work MiB", "top-k work MiB", *(f"{KIND_LABEL[k]} index MiB" for k in kinds)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
    for r in rows:
        cells = [f"10^{round(math.log10(r['N']))}", str(r["D"]), f"{r['eff_keys']:.1f}",
                 f"{r['dense_ms']:.1f}"]
        for k in kinds:
            if f"{k}_ms" in r:
                cells += [f"{r[f'{k}_ms']:.2f}", f"**{r[f'{k}_speedup']:.0f}×**" if k != "flat" else
                          f"{r[f'{k}_speedup']:.1f}×",
                          f"{r[f'{k}_recall']:.3f} ({r[f'{k}_recall_min']:.2f})", f"{r[f'{k}_build_s']:.1f}"]
            else:
                cells += ["—"] * 4
        cells += [mib(r["dense_mem"]), mib(r["topk_mem"]),
                  *(mib(r["index_mem"][k]) if k in r["index_mem"] else "—" for k in kinds)]
        lines.append("| " + " | ".join(cells) + " |")
    verdicts = []
    for r in (r for r in rows if r["N"] >= 10**6):
        for k in kinds:
            if k != "flat" and f"{k}_ms" in r:
                ok = r[f"{k}_speedup"] >= 50 and r[f"{k}_recall"] >= 0.95
                verdicts.append(f"D={r['D']} {KIND_LABEL[k]}: {r[f'{k}_speedup']:.0f}×, recall "
                                f"{r[f'{k}_recall']:.3f} → {'met' if ok else 'not met'}")
    verdict = ("\n\nGoal at N = 10^6 (≥ 50× faster than dense, ≥ 0.95 attention-mass recall): "
               + "; ".join(verdicts)) if verdicts else ""
    return head + "\n".join(lines) + verdict + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N up to 10^5")
    parser.add_argument("--sizes", default=None, help="comma list of N (default 1e3,1e4,1e5,1e6)")
    parser.add_argument("--dims", default="64,256")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--beta", type=float, default=32.0)
    parser.add_argument("--noise", type=float, default=0.45)
    parser.add_argument("--keys", default="clustered", choices=["clustered", "uniform"])
    parser.add_argument("--approx", default="ivf,hnsw", help="approximate indexes: ivf, hnsw")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-max", type=int, default=10**5,
                        help="largest N given an HNSW index (its 1-thread build is slow)")
    parser.add_argument("--ef-search", type=int, default=64)
    parser.add_argument("--diffuse", action="store_true", help="random queries, β = √D")
    parser.add_argument("--flat-max", type=int, default=10**6, help="largest N timed with the exact index")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import faiss

    faiss.omp_set_num_threads(1)
    np.random.seed(args.seed)
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else \
        ([10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6])
    rows = []
    for dim in (int(d) for d in args.dims.split(",")):
        for n in sizes:
            rows.append(bench_one(n, dim, args))
            print(table(rows[-1:], args).splitlines()[-1], flush=True)
    text = "# Top-k faiss read vs dense soft read\n\n" + table(rows, args)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    name = "memory_topk" + ("_uniform" if args.keys == "uniform" else "")
    name += ("_diffuse" if args.diffuse else "") + ("_quick" if args.quick else "")
    atomic_write_text(results / f"{name}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
