"""ONNX Runtime against the floe runtime (`cargo xtask onnx`).

For every model of DIR/manifest.txt ("name dim context_dim rows trajectory"),
run DIR/name.onnx with ONNX Runtime (CPU, one thread) on DIR/name.x.f32 (and
name.context.f32) and compare its log_prob with the floe runtime's,
DIR/name.logp.f32. Prints one line per model and exits 1 when a check fails.

The rule is the one `floe freeze` applies between Burn and the runtime:
|diff| <= 1e-4 + 1e-6 |log p| nats on every row (the relative term covers
far-tail rows, log p ~ -900, where one f32 ulp is 6e-5).

The trajectory model misses it, and the script says by how much. Its step
densities are peaked (log p ~ 20 for two coordinates): its splines' slopes
amplify the ulp-level differences between ONNX Runtime's exp/log and the
runtime's, and its int8 conditioners round their input, so a pass-through
value that moved by a rounding error can cross a quantization step (the int8
flow is a step function of its input) and move log p by ~0.1 nats. For it the
script requires the median row to meet the rule and every row to be within
1 nat (a wrong layer or parameter moves every row by far more).
"""
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

ABS, REL = 1e-4, 1e-6
TRAJECTORY_MAX = 1.0


def main(d: Path) -> int:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    failed = []
    print(f"onnxruntime {ort.__version__}; rule |diff| <= {ABS} + {REL} |log p| nats")
    print("| model | dim | context | rows | max abs diff (nats) | at log p | median | rows > 1e-4 | rows outside the rule |")
    for line in (d / "manifest.txt").read_text().splitlines():
        name, dim, cdim, rows, traj = line.split()
        dim, cdim, rows, traj = int(dim), int(cdim), int(rows), traj == "1"
        x = np.fromfile(d / f"{name}.x.f32", dtype="<f4").reshape(rows, dim)
        want = np.fromfile(d / f"{name}.logp.f32", dtype="<f4").astype(np.float64)
        sess = ort.InferenceSession(str(d / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
        feed = {"x": x}
        if cdim > 0:
            feed["context"] = np.fromfile(d / f"{name}.context.f32", dtype="<f4").reshape(rows, cdim)
        (got,) = sess.run(["log_prob"], feed)
        got = got.astype(np.float64)
        diff = np.abs(got - want)
        diff[~np.isfinite(got)] = np.inf
        allowed = ABS + REL * np.abs(want)
        outside = diff > allowed
        k = int(np.argmax(diff))
        print(
            f"| {name} | {dim} | {cdim} | {rows} | {diff[k]:.3g} | {want[k]:.4g} | {np.median(diff):.2g} "
            f"| {int((diff > ABS).sum())} | {int(outside.sum())} |"
        )
        if traj:
            if np.median(diff) > ABS or diff.max() > TRAJECTORY_MAX:
                failed.append(f"{name}: median {np.median(diff):.3g}, max {diff.max():.3g} nats (trajectory rule)")
            elif outside.any():
                print(f"  {name}: {int(outside.sum())} of {rows} rows outside the rule (trajectory model: see above)")
        elif outside.any():
            failed.append(f"{name}: row {k} differs by {diff[k]:.3g} nats (runtime {want[k]}, ONNX Runtime {got[k]})")
    for f in failed:
        print("FAIL", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
