"""benchmarks/: the seed table of the time-to-accuracy section and its verdicts (issue 21's
targets), without running any training."""

from __future__ import annotations

import pytest

from benchmarks import time_to_accuracy


def rows(recipe, accs, epochs):
    return [{"recipe": recipe, "seed": 42 + n, "test_acc": a, "wall_reference_epochs": e}
            for n, (a, e) in enumerate(zip(accs, epochs))]


@pytest.mark.parametrize("accs,epochs,met", [
    ([0.946, 0.944, 0.941], [90, 95, 99], True),
    ([0.946, 0.944, 0.939], [90, 95, 99], False),   # one seed below 94.0%
    ([0.946, 0.941, 0.941], [90, 95, 99], False),   # mean below 94.3%
    ([0.944, 0.946, 0.946], [90, 95, 99], False),   # the recipe's own seed below 94.5%
    ([0.946, 0.944, 0.941], [90, 95, 101], False),  # over 100 reference epochs
])
def test_seed_summary_judges_fashion_best_by_the_issue_targets(accs, epochs, met):
    (summary,) = time_to_accuracy.seed_summary(rows("fashion_best", accs, epochs))
    assert summary["ok"] is met
    assert summary["seeds"] == [42, 43, 44] and summary["min_acc"] == min(accs)
    assert summary["mean_acc"] == pytest.approx(sum(accs) / 3)


def test_seed_summary_of_fashion_fast_has_no_mean_target():
    (summary,) = time_to_accuracy.seed_summary(rows("fashion_fast", [0.911, 0.908, 0.907], [8, 8.5, 9]))
    assert summary["ok"] is True and summary["target_mean_acc"] is None
    (summary,) = time_to_accuracy.seed_summary(rows("fashion_fast", [0.911, 0.906, 0.91], [8, 8.5, 9]))
    assert summary["ok"] is False
    assert time_to_accuracy.seed_summary(rows("fashion_fast", [0.911], [8])) == [], "one seed: no seed table"


def test_seeds_start_at_the_recipes_own_and_the_plain_loop_runs_for_the_first(monkeypatch):
    calls = []
    monkeypatch.setattr(time_to_accuracy, "run_recipe",
                        lambda recipe, extra, plain, device, log, seed=None: calls.append((recipe, seed, plain)))
    time_to_accuracy.run(["fashion_fast"], seeds=3)
    assert calls == [("fashion_fast", 42, True), ("fashion_fast", 43, False), ("fashion_fast", 44, False)]


def test_seeds_below_one_are_a_usage_error(capsys):
    from benchmarks import run

    with pytest.raises(SystemExit) as exit_:
        run.main(["--only", "tta", "--seeds", "0"])
    assert exit_.value.code == 2 and "--seeds must be >= 1" in capsys.readouterr().err
