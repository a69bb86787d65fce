"""FlowJAX side of `cargo xtask bench-peers`: the demo model's architecture
(D = 6, 4 rational-quadratic spline couplings with K = 8 bins, conditioners of
2 hidden layers x 64) in FlowJAX 19 on this CPU, log_prob at batch 1 (latency)
and batch 4096 (per row). Prints one `key value` line per figure (microseconds).

    python flowjax_bench.py THREADS     # THREADS: 1 (one CPU, XLA single-threaded) or all
"""
import os
import sys

THREADS = sys.argv[1] if len(sys.argv) > 1 else "all"
if THREADS == "1":
    # XLA's CPU thread pool follows the CPUs the process may use: one.
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import time  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
from flowjax.bijections import RationalQuadraticSpline  # noqa: E402
from flowjax.distributions import Normal  # noqa: E402
from flowjax.flows import coupling_flow  # noqa: E402

jax.config.update("jax_platforms", "cpu")


def median_seconds(f, x, reps=9, target=0.2):
    f(x).block_until_ready()  # compile
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < target / 10:
        f(x).block_until_ready()
        n += 1
    inner = max(1, n * 10)
    runs = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            f(x).block_until_ready()
        runs.append((time.perf_counter() - t) / inner)
    runs.sort()
    return runs[len(runs) // 2]


def main():
    key = jr.key(0)
    flow = coupling_flow(
        key,
        base_dist=Normal(jnp.zeros(6)),
        transformer=RationalQuadraticSpline(knots=8, interval=4.0),
        flow_layers=4,
        nn_width=64,
        nn_depth=2,
    )
    log_prob = eqx.filter_jit(lambda x: flow.log_prob(x))
    x1 = jr.normal(jr.key(1), (6,))
    xb = jr.normal(jr.key(2), (4096, 6))
    print(f"versions flowjax-19 jax-{jax.__version__}")
    print(f"devices {jax.device_count()} threads {THREADS} cpus {len(os.sched_getaffinity(0))}")
    print(f"batch1_us {median_seconds(log_prob, x1) * 1e6:.3f}")
    print(f"batch4096_us_per_row {median_seconds(log_prob, xb) * 1e6 / 4096:.4f}")


if __name__ == "__main__":
    main()
