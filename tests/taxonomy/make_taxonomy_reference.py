#!/usr/bin/env python3
"""Reference cases for the taxonomy algorithms (tests/taxonomy/test_taxonomy.cpp), written to OUT:

  sae_case.safetensors  the §B.4 TopK SAE loop in PyTorch, written the way the reference code writes it
                        (nn.Linear-shaped parameters, torch.optim.Adam, FVU per minibatch, decoder rows
                        renormalised after every step), run for STEPS minibatches on planted clusters:
                        x, the initial parameters, the minibatch rows, and after the steps the
                        parameters, each step's loss and every row's cluster (argmax of the encoder).
  scores.json           clusterings against labellings with scikit-learn's NMI (arithmetic) and ARI,
                        majority-label accuracy, and the Hungarian-matched accuracy from scipy's
                        linear_sum_assignment.

Deterministic (numpy and torch seeded); a no-op when OUT/MANIFEST.json records this script's sha256.
Usage: make_taxonomy_reference.py --out DIR"""
import argparse
import hashlib
import json
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

N, D, K, TOP_K, BATCH, STEPS, LR = 300, 16, 6, 3, 64, 40, 2e-4 / (6 / 2**14) ** 0.5


def planted(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K unit directions, N noisy unit vectors around them (centred, as §B.3 feeds the SAE)."""
    centres = rng.normal(size=(K, D))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, K, size=N)
    x = centres[labels] + 0.35 * rng.normal(size=(N, D))
    x -= x.mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def sae_case(rng: np.random.Generator) -> dict[str, torch.Tensor]:
    x_np, labels = planted(rng)
    x = torch.from_numpy(x_np)
    torch.manual_seed(0)
    enc = torch.nn.Linear(D, K)            # W_enc [K, D] with nn.Linear's default init
    w_enc = torch.nn.Parameter(enc.weight.detach().clone())
    b_enc = torch.nn.Parameter(torch.zeros(K))
    w_dec = torch.nn.Parameter(enc.weight.detach().clone())
    b_dec = torch.nn.Parameter(torch.zeros(D))
    with torch.no_grad():
        w_dec /= w_dec.norm(dim=1, keepdim=True) + 1e-5
    out = {"x": x, "labels": torch.from_numpy(labels), "init.w_enc": w_enc.detach().clone(), "init.w_dec": w_dec.detach().clone()}
    opt = torch.optim.Adam([w_enc, b_enc, w_dec, b_dec], lr=LR)
    batches, losses = [], []
    for step in range(STEPS):
        rows = np.sort(rng.permutation(N)[:BATCH])
        batches.append(rows)
        xb = x[rows]
        lat = (xb - b_dec) @ w_enc.T + b_enc
        values, indices = lat.topk(TOP_K, dim=1)
        x_hat = torch.zeros_like(lat).scatter(1, indices, values) @ w_dec + b_dec
        loss = ((x_hat - xb) ** 2).sum() / ((xb - xb.mean(0)) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec /= w_dec.norm(dim=1, keepdim=True) + 1e-5
        losses.append(loss.item())
    with torch.no_grad():
        clusters = ((x - b_dec) @ w_enc.T + b_enc).argmax(1)
    out.update({"batches": torch.from_numpy(np.stack(batches)).long(), "losses": torch.tensor(losses, dtype=torch.float64),
                "final.w_enc": w_enc.detach(), "final.b_enc": b_enc.detach(), "final.w_dec": w_dec.detach(),
                "final.b_dec": b_dec.detach(), "final.clusters": clusters.long(),
                "lr": torch.tensor([LR], dtype=torch.float64)})
    return out


def scores_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    shapes = [(200, 6, 6), (500, 10, 6), (120, 3, 5), (50, 1, 4), (80, 7, 1), (300, 15, 6)]
    for n, k, n_labels in shapes:
        labels = rng.integers(0, n_labels, size=n)
        noisy = np.where(rng.random(n) < 0.3, rng.integers(0, k, size=n), labels % k)
        for clusters in (noisy, rng.integers(0, k, size=n)):
            table = np.zeros((clusters.max() + 1, labels.max() + 1), dtype=np.int64)
            np.add.at(table, (clusters, labels), 1)
            rows, cols = linear_sum_assignment(-table)
            cases.append({"clusters": clusters.tolist(), "labels": labels.tolist(),
                          "nmi": float(normalized_mutual_info_score(labels, clusters)),
                          "ari": float(adjusted_rand_score(labels, clusters)),
                          "majority": float(table.max(axis=1).sum() / n),
                          "matched": float(table[rows, cols].sum() / n)})
    return cases


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    out = ap.parse_args().out
    digest = hashlib.sha256(pathlib.Path(__file__).read_bytes()).hexdigest()
    manifest = out / "MANIFEST.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("script_sha256") == digest:
        return
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261204)
    save_file({k: v.contiguous() for k, v in sae_case(rng).items()}, str(out / "sae_case.safetensors"))
    (out / "scores.json").write_text(json.dumps(scores_cases(rng)))
    manifest.write_text(json.dumps({"script_sha256": digest, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
