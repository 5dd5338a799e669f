"""The offline evaluation: the simulator's model, the replay's metrics, and the command on a CSV log."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from feeds.evaluation import cli
from feeds.evaluation.metrics import score_lists
from feeds.evaluation.replay import evaluate, positive
from feeds.evaluation.simulator import simulate


def test_the_simulator_is_seeded_and_tastes_show_in_what_is_finished() -> None:
    one, again = simulate(seed=3, users=150, videos=400), simulate(seed=3, users=150, videos=400)
    other = simulate(seed=4, users=150, videos=400)
    assert one.interactions == again.interactions and one.interactions != other.interactions
    assert all(a.at_ms <= b.at_ms for a, b in zip(one.interactions, one.interactions[1:], strict=False))
    finished: dict[bool, int] = defaultdict(int)
    seen: dict[bool, int] = defaultdict(int)
    for interaction in one.interactions:
        interests = one.interests.get(interaction.user_id)
        if interests:
            named = one.videos[interaction.video_id].hashtags[0] in interests
            seen[named] += 1
            finished[named] += positive(interaction)
    assert finished[True] / seen[True] > 1.5 * finished[False] / seen[False]  # hidden tastes drive finishing


def test_metrics_of_known_lists() -> None:
    relevant = {1: {10, 11}, 2: {20}}
    lists = {1: [10, 99, 11], 2: [98, 97]}
    scores = score_lists(lists, relevant, catalogue_size=10, popularity={10: 3}, population=3, k=3)
    assert scores.recall == pytest.approx((1.0 + 0.0) / 2)
    assert scores.ndcg == pytest.approx((1 + 1 / 2) / (1 + 1 / 1.5849625007) / 2)
    assert scores.coverage == pytest.approx(5 / 10)


def test_the_ranker_beats_region_popularity_on_the_simulator() -> None:
    report = evaluate(simulate(seed=11, users=300, videos=1000), k=50)
    assert report.ranker.users == report.baseline.users > 200
    assert report.ranker.recall > report.baseline.recall
    assert report.ranker.ndcg > report.baseline.ndcg
    assert report.ranker.coverage >= 3 * report.baseline.coverage


def test_the_command_reads_a_csv_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = simulate(seed=5, users=120, videos=300)
    path = tmp_path / "small_matrix.csv"
    with path.open("w", newline="") as handle:  # KuaiRec's layout: extra columns, timestamps in seconds
        writer = csv.writer(handle)
        writer.writerow(["user_id", "video_id", "play_duration", "video_duration", "time", "date", "timestamp",
                         "watch_ratio"])
        for i in dataset.interactions:
            writer.writerow([i.user_id, i.video_id, 1, 1, "", "", f"{i.at_ms / 1000:.3f}", f"{i.watch_ratio:.3f}"])
    assert cli.main(["--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(dataset.interactions)} interactions" in out
    assert "ranker  " in out and "region popularity" in out and "recall@50" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,video_id,watch_ratio\n1,2,0.5\n")
    assert cli.main(["--csv", str(bad)]) == 2
    assert "missing column(s) timestamp" in capsys.readouterr().err
