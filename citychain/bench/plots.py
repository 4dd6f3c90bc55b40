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


def _figure(title: str, ylabel: str, xlabel: str = "consensus nodes (n)"):
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig, ax, path: Path) -> Path:
    # Every quantity here is a count, a rate or a time: the axis starts at zero, so a 5 %
    # wobble looks like 5 % and not like a collapse (a 960-1005 axis makes noise a drop).
    ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], 1e-9) * 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def make_plots(rows: list[dict], param_keys: list[str], checkpoint_interval: int, out: Path) -> list[Path]:
    series = _series(rows, param_keys)
    paths = []

    fig, ax = _figure("Throughput vs node count (successful tx, virtual time)", "tx/s, virtual")
    for label, rs in series.items():
        ax.errorbar([r["nodes"] for r in rs], [r["throughput_tps"] for r in rs],
                    yerr=[r.get("throughput_tps.sd", 0) for r in rs], marker="o", capsize=3, label=label)
    paths.append(_save(fig, ax, out / "throughput.png"))

    fig, ax = _figure("Latency vs node count (submission to f+1 replies)", "ms, virtual")
    for label, rs in series.items():
        xs = [r["nodes"] for r in rs]
        ax.errorbar(xs, [r["p50_ms"] for r in rs], yerr=[r.get("p50_ms.sd", 0) for r in rs], marker="o",
                    capsize=3, label=f"p50 {label}")
        ax.errorbar(xs, [r["p99_ms"] for r in rs], yerr=[r.get("p99_ms.sd", 0) for r in rs], marker="s",
                    capsize=3, linestyle="--", label=f"p99 {label}")
    paths.append(_save(fig, ax, out / "latency.png"))

    fig, ax = _figure("Messages per block", "message copies per block")
    all_n = sorted({r["nodes"] for r in rows})
    dense = list(range(min(all_n), max(all_n) + 1))
    ax.plot(dense, [analytic_messages_per_block(n, checkpoint_interval) for n in dense], color="black",
            linewidth=1, label="PBFT analytic: (n-1) + (n-1)² + n(n-1) + n(n-1)/K")
    for label, rs in series.items():
        xs = [r["nodes"] for r in rs]
        ys = [consensus_per_block(r) for r in rs]
        ax.plot(xs, ys, "o", label=f"consensus alone {label}")
        ax.plot(xs, [r["consensus_and_request_messages_per_block"] for r in rs], "x",
                label=f"consensus + client requests {label}")
        fit = fit_quadratic(xs, ys)
        if fit:  # only with more node counts than the fit's 3 parameters
            a, b, c, rms = fit
            ax.plot(dense, [a * n * n + b * n + c for n in dense], linestyle=":",
                    label=f"least-squares {a:.2f}n² {b:+.1f}n {c:+.0f} (RMS residual {rms:.2f})")
    paths.append(_save(fig, ax, out / "messages_per_block.png"))

    fig, ax = _figure("Bandwidth sent per node", "Mbit/s per node, virtual")
    for label, rs in series.items():
        ax.errorbar([r["nodes"] for r in rs], [r["bandwidth_mbps_per_node"] for r in rs],
                    yerr=[r.get("bandwidth_mbps_per_node.sd", 0) for r in rs], marker="o", capsize=3, label=label)
    paths.append(_save(fig, ax, out / "bandwidth_per_node.png"))
    return paths


def capacity_plot(summary: list[dict], searches: list[list[dict]], path: Path) -> Path:
    """Capacity (the highest offered rate that met the criterion, as successful tx/s)
    against n, with every probe: held (dot) or failed (cross)."""
    fig, ax = _figure("Capacity vs node count (saturation throughput, virtual time)", "tx/s, virtual")
    for probes in searches:
        held = [p for p in probes if p["holds"]]
        failed = [p for p in probes if not p["holds"]]
        ax.plot([p["nodes"] for p in held], [p["offered_tps"] for p in held], ".", color="#2da44e", alpha=0.6)
        ax.plot([p["nodes"] for p in failed], [p["offered_tps"] for p in failed], "x", color="#cf222e", alpha=0.6)
    ax.plot([], [], ".", color="#2da44e", label="probe: offered rate that held")
    ax.plot([], [], "x", color="#cf222e", label="probe: offered rate that failed")
    ax.plot([s["nodes"] for s in summary], [s["capacity_tps"] for s in summary], "o-", color="#0969da",
            label="capacity (successful tx/s at the highest rate that held)")
    return _save(fig, ax, path)
