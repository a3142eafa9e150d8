"""PyTorch reference for DefectLab's BCE head training step (src/runtime/heads/bce.ts, common.ts).

The same model (standardized input -> [Linear(D,H) -> ReLU ->] Linear(.,1) -> logit), the same loss (class-weighted
BCE on logits, normalised by the sum of the batch's weights), the same optimiser (Adam, torch defaults = tfjs
defaults except epsilon, which tfjs sets to 1e-7) and plain minibatches in a given order.

Usage:
  python3 heads_torch.py bench ROWS DIM BATCH EPOCHS   -> one JSON line: ms per epoch (linear, hidden 128),
                                                          and a CSE-like step (see cse_step) on 1 thread
  python3 heads_torch.py train < request.json          -> final weights and per-epoch mean losses as JSON
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
EPS = 1e-7  # tfjs's Adam epsilon (tf.train.adam default), so both take the same steps


def model(dim, hidden, init=None):
    if hidden > 0:
        net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
        lin1, lin2 = net[0], net[2]
    else:
        net = torch.nn.Sequential(torch.nn.Linear(dim, 1))
        lin1, lin2 = None, net[0]
    with torch.no_grad():
        if init is None:
            for p in net.parameters():
                p.zero_()
        else:
            # DefectLab stores kernels as [in, out]; torch's Linear weight is [out, in].
            if lin1 is not None:
                lin1.weight.copy_(torch.tensor(init["w1"], dtype=torch.float32).reshape(dim, hidden).T)
                lin1.bias.copy_(torch.tensor(init["b1"], dtype=torch.float32))
            fan_in = hidden if hidden > 0 else dim
            lin2.weight.copy_(torch.tensor(init["w2"], dtype=torch.float32).reshape(fan_in, 1).T)
            lin2.bias.copy_(torch.tensor(init["b2"], dtype=torch.float32))
    return net, lin1, lin2


def weighted_bce(z, y, w):
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    return (loss * w).sum() / w.sum()


def train(req):
    x = torch.tensor(req["x"], dtype=torch.float32)
    y = torch.tensor(req["y"], dtype=torch.float32)
    w = torch.tensor(req["w"], dtype=torch.float32)
    net, lin1, lin2 = model(x.shape[1], req["hidden"], req.get("init"))
    opt = torch.optim.Adam(net.parameters(), lr=req["lr"], eps=EPS)
    losses = []
    for order in req["orders"]:
        total, count = 0.0, 0
        for s in range(0, len(order), req["batch"]):
            idx = torch.tensor(order[s : s + req["batch"]])
            opt.zero_grad()
            loss = weighted_bce(net(x[idx]).reshape(-1), y[idx], w[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        losses.append(total / count)
    out = {"losses": losses}
    with torch.no_grad():
        if lin1 is not None:
            out["w1"] = lin1.weight.T.reshape(-1).tolist()
            out["b1"] = lin1.bias.tolist()
        out["w2"] = lin2.weight.T.reshape(-1).tolist()
        out["b2"] = lin2.bias.tolist()
    return out


def epoch_ms(rows, dim, batch, epochs, hidden):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, dim, generator=g)
    y = (torch.arange(rows) % 4 == 0).float()
    w = torch.where(y > 0, 2.0, 2.0 / 3.0)
    net, _, _ = model(dim, hidden)
    if hidden > 0:
        torch.nn.init.xavier_uniform_(net[0].weight)
        torch.nn.init.xavier_uniform_(net[2].weight)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, eps=EPS)
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(rows, generator=g)
        for s in range(0, rows, batch):
            idx = perm[s : s + batch]
            opt.zero_grad()
            loss = weighted_bce(net(x[idx]).reshape(-1), y[idx], w[idx])
            loss.backward()
            opt.step()
            loss.item()  # the JS loop reads every batch's loss back too
        times.append((time.perf_counter() - t0) * 1000)
    return min(times[1:])


def cse_step_ms(pairs=8, channels=96, side=14, steps=5):
    """One step of a CSE-like head: 1x1-conv projection of two 96x14x14 maps, cosine contrast + reconstruction."""
    g = torch.Generator().manual_seed(0)
    proj = torch.nn.Conv2d(channels, 64, 1)
    dec = torch.nn.Conv2d(64, channels, 1)
    opt = torch.optim.Adam(list(proj.parameters()) + list(dec.parameters()), lr=1e-3, eps=EPS)
    a = torch.randn(pairs, channels, side, side, generator=g)
    b = torch.randn(pairs, channels, side, side, generator=g)
    mask = torch.zeros(pairs, 1, side, side)
    mask[:, :, 6:8, 6:8] = 1
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        za, zb = proj(a), proj(b)
        cos = torch.nn.functional.cosine_similarity(za, zb, dim=1).unsqueeze(1)
        contrast = ((1 - cos) * (1 - mask) + torch.relu(cos) * mask).mean()
        recon = ((dec(za) - a) ** 2).mean()
        loss = contrast + recon
        loss.backward()
        opt.step()
        loss.item()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times[1:])


if __name__ == "__main__":
    if sys.argv[1] == "train":
        print(json.dumps(train(json.load(sys.stdin))))
    else:
        rows, dim, batch, epochs = (int(v) for v in sys.argv[2:6])
        print(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "bceEpochMs_hidden0": epoch_ms(rows, dim, batch, epochs, 0),
                    "bceEpochMs_hidden128": epoch_ms(rows, dim, batch, epochs, 128),
                    "cseStepMs": cse_step_ms(),
                }
            )
        )
