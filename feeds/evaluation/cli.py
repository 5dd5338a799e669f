"""`livecore-feeds-eval`: offline evaluation of the For You ranker against a region-popularity baseline, on the
seeded simulator (the default) or a CSV interaction log (`--csv`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from feeds.evaluation.interactions import InteractionLogError, load_csv
from feeds.evaluation.replay import Report, evaluate
from feeds.evaluation.simulator import simulate

CSV_ROWS_MAX = 5_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livecore-feeds-eval", description=__doc__)
    parser.add_argument("--csv", type=Path, help="an interaction log: user_id, video_id, timestamp, watch_ratio")
    parser.add_argument("--csv-rows-max", type=int, default=CSV_ROWS_MAX, help="read at most this many rows")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed")
    parser.add_argument("--users", type=int, default=1000, help="simulated viewers")
    parser.add_argument("--videos", type=int, default=2000, help="simulated videos")
    parser.add_argument("--k", type=int, default=50, help="the length of each recommendation list")
    parser.add_argument("--train-share", type=float, default=0.8, help="share of the log (in time) learned from")
    parser.add_argument("--exploration-percent", type=int, default=0,
                        help="the live feed's exploration budget, here too (0: rank only)")
    args = parser.parse_args(argv)
    try:
        dataset = load_csv(args.csv, args.csv_rows_max) if args.csv else simulate(
            seed=args.seed, users=args.users, videos=args.videos)
    except (OSError, InteractionLogError) as exc:
        print(f"livecore-feeds-eval: {exc}", file=sys.stderr)
        return 2
    if len(dataset.interactions) < 2:
        print("livecore-feeds-eval: the log has fewer than two interactions", file=sys.stderr)
        return 2
    report = evaluate(dataset, k=args.k, train_share=args.train_share,
                      exploration_percent=args.exploration_percent, seed=args.seed)
    print(render(report))
    return 0


def render(report: Report) -> str:
    k = report.k
    lines = [report.description,
             f"trained on {report.train_interactions} interactions, tested on {report.test_interactions} "
             f"({report.ranker.users} viewers with something to find)",
             f"{'':18}{'recall@' + str(k):>12}{'NDCG@' + str(k):>12}{'coverage':>12}{'novelty':>12}"]
    for name, scores in (("ranker", report.ranker), ("region popularity", report.baseline)):
        lines.append(f"{name:18}{scores.recall:12.4f}{scores.ndcg:12.4f}{scores.coverage:12.4f}"
                     f"{scores.novelty:12.2f}")
    base = report.baseline
    lines.append(f"{'ranker / baseline':18}{_ratio(report.ranker.recall, base.recall):>12}"
                 f"{_ratio(report.ranker.ndcg, base.ndcg):>12}{_ratio(report.ranker.coverage, base.coverage):>12}"
                 f"{_ratio(report.ranker.novelty, base.novelty):>12}")
    return "\n".join(lines)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


if __name__ == "__main__":
    sys.exit(main())
