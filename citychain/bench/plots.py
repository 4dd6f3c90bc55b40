"""PNG plots of a sweep (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .sweep import analytic_messages_per_block, consensus_per_block, fit_quadratic  # noqa: E402


def _series(rows: list[dict], param_keys: list[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        label = ", ".join(f"{k}={r[k]}" for k in param_keys) or r["name"]
        out.setdefault(label, []).append(r)
    return {k: sorted(v, key=lambda r: r["nodes"]) for k, v in out.items()}


def _figure(title: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.set_title(title)
    ax.set_xlabel("consensus nodes (n)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig, ax, path: Path) -> Path:
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def make_plots(rows: list[dict], param_keys: list[str], checkpoint_interval: int, out: Path) -> list[Path]:
    series = _series(rows, param_keys)
    paths = []

    fig, ax = _figure("Throughput vs node count", "committed tx/s (virtual time)")
    for label, rs in series.items():
        ax.errorbar([r["nodes"] for r in rs], [r["throughput_tps"] for r in rs],
                    yerr=[r.get("throughput_tps.sd", 0) for r in rs], marker="o", capsize=3, label=label)
    paths.append(_save(fig, ax, out / "throughput.png"))

    fig, ax = _figure("Latency vs node count", "ms from submission to f+1 replies")
    for label, rs in series.items():
        xs = [r["nodes"] for r in rs]
        ax.errorbar(xs, [r["p50_ms"] for r in rs], yerr=[r.get("p50_ms.sd", 0) for r in rs], marker="o",
                    capsize=3, label=f"p50 {label}")
        ax.errorbar(xs, [r["p99_ms"] for r in rs], yerr=[r.get("p99_ms.sd", 0) for r in rs], marker="s",
                    capsize=3, linestyle="--", label=f"p99 {label}")
    paths.append(_save(fig, ax, out / "latency.png"))

    fig, ax = _figure("Consensus messages per block", "messages per block")
    all_n = sorted({r["nodes"] for r in rows})
    dense = list(range(min(all_n), max(all_n) + 1))
    ax.plot(dense, [analytic_messages_per_block(n, checkpoint_interval) for n in dense], color="black",
            linewidth=1, label="PBFT analytic: (n-1) + (n-1)² + n(n-1) + n(n-1)/K")
    for label, rs in series.items():
        xs = [r["nodes"] for r in rs]
        ys = [consensus_per_block(r) for r in rs]
        ax.plot(xs, ys, "o", label=f"measured {label}")
        a, b, c = fit_quadratic(xs, ys)
        ax.plot(dense, [a * n * n + b * n + c for n in dense], linestyle=":",
                label=f"least-squares fit {a:.2f}n² {b:+.1f}n {c:+.0f}")
    paths.append(_save(fig, ax, out / "messages_per_block.png"))

    fig, ax = _figure("Bytes sent per node", "MB per node over the run")
    for label, rs in series.items():
        ax.errorbar([r["nodes"] for r in rs], [r["bytes_per_node"] / 1e6 for r in rs],
                    yerr=[r.get("bytes_per_node.sd", 0) / 1e6 for r in rs], marker="o", capsize=3, label=label)
    paths.append(_save(fig, ax, out / "bytes_per_node.png"))
    return paths
