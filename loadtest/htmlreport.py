"""The self-contained HTML report: a table per run (side by side when peers ran too) and plots drawn with
matplotlib, inlined as SVG, so the file opens anywhere with nothing to fetch.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must come before pyplot is imported
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

FIGURE_SIZE_IN = (7.5, 3.2)
PLOTS = (
    ("latency", "Delivery latency over time (p50 dashed, p99 solid), ms"),
    ("throughput", "Events delivered per second"),
    ("histogram", "Latency histogram per class (share of samples per ms)"),
    ("connections", "Viewers connected"),
    ("errors", "Errors and server-initiated closes (cumulative)"),
    ("cpu", "Server CPU, % of one core"),
)


def _series(result: dict[str, Any], key: str) -> tuple[list[int], list[float]]:
    rows = [row for row in result["timeline"] if row.get(key) is not None]
    return [row["t"] for row in rows], [row[key] for row in rows]


def _line_plot(results: Sequence[dict[str, Any]], key: str, axes: Any) -> None:
    for result in results:
        t, values = _series(result, key)
        axes.plot(t, values, label=result["target"])
    axes.set_xlabel("seconds since sending began")


def _latency_plot(results: Sequence[dict[str, Any]], axes: Any) -> None:
    for result in results:
        t50, p50 = _series(result, "p50_ms")
        t99, p99 = _series(result, "p99_ms")
        (line,) = axes.plot(t99, p99, label=f"{result['target']} p99")
        axes.plot(t50, p50, linestyle="--", color=line.get_color(), label=f"{result['target']} p50")
    axes.set_xlabel("seconds since sending began")
    axes.set_ylabel("ms")


def _histogram_plot(results: Sequence[dict[str, Any]], axes: Any) -> None:
    for result in results:
        for klass, counts in result["latency"]["histograms"].items():
            values = sorted((int(ms), n) for ms, n in counts.items())
            total = sum(n for _, n in values) or 1
            axes.step([ms for ms, _ in values], [n / total for _, n in values], where="post",
                      label=f"{result['target']} {klass}")
    axes.set_xlabel("ms")
    axes.set_xscale("symlog", linthresh=10)


def draw(kind: str, results: Sequence[dict[str, Any]]) -> Figure:
    figure, axes = plt.subplots(figsize=FIGURE_SIZE_IN)
    drawers: dict[str, Callable[[], None]] = {
        "latency": lambda: _latency_plot(results, axes),
        "throughput": lambda: _line_plot(results, "delivered", axes),
        "histogram": lambda: _histogram_plot(results, axes),
        "connections": lambda: _line_plot(results, "connected", axes),
        "errors": lambda: _line_plot(results, "errors", axes),
        "cpu": lambda: _line_plot(results, "cpu_pct", axes),
    }
    drawers[kind]()
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.find("<svg"):]  # drop the XML prolog and doctype, which HTML does not want inline


def save_png(results: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Every plot as a PNG in `folder` (for the README)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, _ in PLOTS:
        path = folder / f"loadtest-{kind}.png"
        figure = draw(kind, results)
        figure.savefig(path, format="png", dpi=90)
        plt.close(figure)
        paths.append(path)
    return paths


ROWS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("viewers joined / failed", lambda r: f"{r['viewers']['joined']:,} / {r['viewers']['connect_failed']:,}"),
    ("join time p50 / p99 ms", lambda r: f"{r['viewers']['join_ms']['p50_ms']} / {r['viewers']['join_ms']['p99_ms']}"),
    ("sent", lambda r: ", ".join(f"{k} {v:,}" for k, v in r["senders"]["sent"].items())),
    ("delivered / expected", lambda r: f"{sum(r['accounting']['delivered'].values()):,} / "
                                       f"{sum(r['accounting']['expected'].values()):,}"),
    ("loss", lambda r: f"{100 * r['accounting']['loss']:.3f}%"),
    ("delivered events/s", lambda r: f"{r['delivered_per_s']:,.0f}"),
    ("delivered per server CPU-s", lambda r: f"{r['delivered_per_server_cpu_s'] or 0:,.0f}"),
    ("latency p50 / p99 / max ms (all)", lambda r: _lat(r["latency"]["summary"]["all"])),
    ("must-deliver p50 / p99 / max ms", lambda r: _lat(r["latency"]["summary"]["must_deliver"])),
    ("duplicates / out of order", lambda r: f"{r['viewers']['duplicates']} / {r['viewers']['out_of_order']}"),
    ("resumes (replayed / reset)", lambda r: f"{r['viewers']['resumes']} ({r['viewers']['resumes_replayed']} / "
                                             f"{r['viewers']['resumes_reset']})"),
    ("slow-consumer closes", lambda r: r["viewers"]["slow_consumer_closes"]),
    ("frames read behind a later one (latency an upper bound)", lambda r: _behind(r["viewers"])),
    ("error events by code", lambda r: r["viewers"]["error_events"] or "-"),
    ("server CPU-s (in the kernel) / max RSS MB", lambda r: f"{r['server']['cpu_s']} "
                                                           f"({r['server'].get('kernel_cpu_s') or '-'}) / "
                                                           f"{r['server']['rss_mb_max']}"),
    ("viewer processes busy (of a core each)", lambda r: f"{100 * r['generator']['busy_share']:.0f}%"
                                                         + (" SATURATED" if r["generator"]["saturated"] else "")),
    ("gift commit p50 / p99 / max ms", lambda r: _lat(r["senders"]["gift_commit_ms"])),
    ("bid commit p50 / p99 / max ms", lambda r: _lat(r["senders"]["bid_commit_ms"])),
    ("sender errors (command/code)", lambda r: r["senders"]["errors"] or "-"),
    ("WHEP viewers: video packets / kbit/s / video loss", lambda r: _whep(r["media"])),
    ("WHEP time to first keyframe ms", lambda r: r["media"]["first_keyframe_ms"] or "-"),
    ("HLS pullers: segments / kbit/s / errors", lambda r: _hls(r["media"])),
)


def _whep(found: dict[str, Any]) -> str:
    return "; ".join(f"{v.get('video_packets', 0)} / {v.get('kbit_s', 0)} / {v['video_loss']}"
                     + (f" ({v['error']})" if v["error"] else "") for v in found["whep"]) or "-"


def _hls(found: dict[str, Any]) -> str:
    return "; ".join(f"{p['segments']} / {p['kbit_s']} / {p['errors']}" for p in found["hls"]) or "-"


def _lat(summary: dict[str, Any]) -> str:
    if not summary["samples"]:
        return "-"
    return f"{summary['p50_ms']} / {summary['p99_ms']} / {summary['max_ms']}"


def _behind(viewers: dict[str, Any]) -> str:
    behind, frames = viewers.get("read_behind", 0), viewers.get("frames", 0)
    return f"{behind:,} ({100 * behind / frames:.1f}%)" if frames else "-"


def _table(results: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(r['target'])}</th>" for r in results)
    body = "".join(
        "<tr><th>" + html.escape(label) + "</th>"
        + "".join(f"<td>{html.escape(str(value(r)))}</td>" for r in results) + "</tr>"
        for label, value in ROWS
    )
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _verdict(verdict: Sequence[dict[str, Any]]) -> str:
    if not verdict:
        return ""
    items = "".join(
        f"<li class={'met' if v['met'] else 'missed'}>{'met' if v['met'] else 'MISSED'}: {html.escape(v['slo'])} "
        f"&le; {v['limit']:g} (measured {v['measured']}; {html.escape(v['meaning'])})</li>"
        for v in verdict
    )
    return f"<h3>SLO</h3><ul>{items}</ul>"


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.met{color:#176a21}.missed{color:#b00020}
figure{margin:1.5em 0}figcaption{font-weight:600}"""


def render(title: str, sections: Sequence[tuple[str, Sequence[dict[str, Any]], Sequence[dict[str, Any]]]],
           extra: str = "") -> str:
    """The page: `extra` first (a side-by-side summary), then per section its SLO verdict, table and plots."""
    parts = []
    for heading, results, verdict in sections:
        plots = "".join(
            f"<figure><figcaption>{html.escape(caption)}</figcaption>{svg(draw(kind, results))}</figure>"
            for kind, caption in PLOTS
        )
        parts.append(f"<h2>{html.escape(heading)}</h2>{_verdict(verdict)}<h3>Figures</h3>{_table(results)}"
                     f"<h3>Plots</h3>{plots}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{extra}{''.join(parts)}"
            "</body></html>")
