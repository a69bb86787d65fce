"""Ground truth for `floe import`: small flows trained with the real libraries.

Run by `cargo xtask interop` (which makes the virtual environment under
target/interop with torch, zuko 1.6.0 and nflows 0.14 from PyPI); the output is
committed under tests/fixtures/interop so CI needs no Python. For each flow:

- `<name>.safetensors`: the library's own `state_dict()` (as the library keeps
  it: f32 weights, bool masks, int64 orders), with metadata naming the library,
  the flow and the settings a state dict does not carry (nflows' tail bound,
  the conditioner activation);
- `<name>.json`: the rows (standardized thyroid normals, bundled ADBench data),
  the library's own `log_prob` of each (in f32, as it runs, and in f64), and
  samples drawn by the library.

Usage: make_fixtures.py DATA_NPZ OUT_DIR
"""

import json
import sys

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 20261202
ROWS = 256
SAMPLES = 2000
STEPS = 600


def load_rows(path):
    z = np.load(path)
    x = z["X"].astype(np.float64)
    y = z["y"].astype(np.int64)
    x = x[y == 0]
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    return ((x - mean) / std).astype(np.float32)


def train(log_prob, params, x, steps=STEPS):
    """`log_prob(rows)` of [N, D + C] rows (features, then context)."""
    opt = torch.optim.Adam(params, lr=2e-3)
    g = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x)
    for _ in range(steps):
        idx = torch.randint(0, xt.shape[0], (256,), generator=g)
        loss = -log_prob(xt[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(-log_prob(xt).mean())


def zuko_flow(kind, d, context=0):
    import zuko

    if kind == "nsf":
        return zuko.flows.NSF(d, context, bins=8, transforms=3, hidden_features=(32, 32))
    return zuko.flows.MAF(d, context, transforms=3, hidden_features=(32, 32))


def nflows_flow(d, tail_bound):
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.permutations import RandomPermutation, ReversePermutation
    from nflows.utils import create_alternating_binary_mask

    layers = []
    for i in range(3):
        layers.append(ReversePermutation(d) if i % 2 == 0 else RandomPermutation(d))
        layers.append(
            PiecewiseRationalQuadraticCouplingTransform(
                mask=create_alternating_binary_mask(d, even=(i % 2 == 0)),
                transform_net_create_fn=lambda i_, o_: ResidualNet(i_, o_, hidden_features=32, num_blocks=2),
                num_bins=8,
                tails="linear",
                tail_bound=tail_bound,
            )
        )
    return Flow(CompositeTransform(layers), StandardNormal([d]))


def main():
    data, out = sys.argv[1], sys.argv[2]
    x = load_rows(data)
    rng = np.random.default_rng(SEED)
    rows = x[rng.choice(x.shape[0], ROWS, replace=False)]
    full = x.shape[1]
    # The conditional flow: the first 4 features given the last 2.
    ctx_rows = x[rng.choice(x.shape[0], SAMPLES, replace=True)][:, 4:]
    for name, lib, c, build in [
        ("zuko_nsf", "zuko", 0, lambda: zuko_flow("nsf", full)),
        ("zuko_maf", "zuko", 0, lambda: zuko_flow("maf", full)),
        ("zuko_cnsf", "zuko", 2, lambda: zuko_flow("nsf", full - 2, 2)),
        ("nflows_nsf", "nflows", 0, lambda: nflows_flow(full, 4.0)),
    ]:
        d = full - c
        torch.manual_seed(SEED)
        flow = build()
        if lib == "zuko" and c > 0:
            lp = lambda t: flow(t[:, d:]).log_prob(t[:, :d])
            sample = lambda n: flow(torch.from_numpy(ctx_rows[:n])).sample()
        elif lib == "zuko":
            lp = lambda t: flow().log_prob(t)
            sample = lambda n: flow().sample((n,))
        else:
            lp = lambda t: flow.log_prob(t)
            sample = lambda n: flow.sample(n)
        nll = train(lp, flow.parameters(), x)
        flow.eval()
        with torch.no_grad():
            log_p = lp(torch.from_numpy(rows)).double().numpy()
            torch.manual_seed(SEED + 1)
            s = sample(SAMPLES).numpy()
            flow.double()
            log_p64 = lp(torch.from_numpy(rows).double()).numpy()
            flow.float()
        meta = {"library": lib, "flow": {"zuko_maf": "maf"}.get(name, "nsf" if lib == "zuko" else "rq-coupling"), "activation": "relu"}
        if lib == "nflows":
            meta["tail_bound"] = "4.0"
        # The state dict as the library keeps it (bool masks, int64 orders).
        tensors = {k: v.detach().contiguous() for k, v in flow.state_dict().items()}
        save_file(tensors, f"{out}/{name}.safetensors", metadata=meta)
        if lib == "nflows":
            # The same weights as a torch.save pickle (no metadata).
            torch.save(flow.state_dict(), f"{out}/{name}.pt")
        fixture = {
            "library": lib,
            "versions": {"torch": torch.__version__, lib: version(lib)},
            "data": data.split("/")[-1] + " (normal rows, standardized)",
            "train_nll": nll,
            "dim": d,
            "context_dim": c,
            "x": rows[:, :d].tolist(),
            "context": rows[:, d:].tolist(),
            "sample_context": ctx_rows.tolist() if c > 0 else [],
            "log_prob": log_p.tolist(),
            "log_prob_f64": log_p64.tolist(),
            "samples": [[float(f"{v:.7g}") for v in r] for r in s.tolist()],
        }
        with open(f"{out}/{name}.json", "w") as f:
            json.dump(fixture, f)
        print(f"{name}: {lib} train NLL {nll:.4f}, mean log p of {ROWS} rows {log_p.mean():.4f}")


def version(lib):
    from importlib.metadata import version as v

    return v(lib)


if __name__ == "__main__":
    main()
