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


def test_the_cpu_clock_counts_the_main_threads_work_on_one_torch_thread_and_not_waiting():
    import time

    import torch

    from benchmarks.clock import clock, cpu_clock

    threads = torch.get_num_threads()
    started = clock()
    time.sleep(0.2)
    assert clock() - started >= 0.2, "outside cpu_clock the clock is wall time"
    with cpu_clock():
        assert torch.get_num_threads() == 1
        started = clock()
        time.sleep(0.3)
        assert clock() - started < 0.1, "waiting is not work"
        started, cpu = clock(), time.thread_time()
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:
            pass
        worked = clock() - started
        assert worked > 0 and worked == pytest.approx(time.thread_time() - cpu, abs=0.01), "computing is"
    assert torch.get_num_threads() == threads
    started = clock()
    time.sleep(0.2)
    assert clock() - started >= 0.2, "wall time again after it"


def test_the_cpu_time_overhead_table_is_its_own_section_of_the_record():
    from types import SimpleNamespace

    from benchmarks import run

    row = {"case": "mlp", "clock": "cpu", "overrides": "model=mlp data=fashion", "batch_size": 128, "steps": 430,
           "repeats": 9, "plain_epoch_s": 2.0, "framework_epoch_s": 2.1, "ratio": 1.05, "ratio_pairs_median": 1.04,
           "ratio_of_minimums": 1.03, "train_ratio": 1.04, "lightning_ratio_pairs_median": 1.02,
           "lightning_ratio_of_minimums": 1.01, "over_lightning_pairs_median": 1.02, "ok": True}
    results = {"date": "2026-12-07T16:50:00", "machine": dict.fromkeys(
        ("cpu", "cores", "torch_threads", "gpu", "python", "torch", "lightning"), "x"),
        "overhead_cpu": [row], "carried": {"overhead_cpu": "2026-12-07T16:50:00"}}
    markdown = run.to_markdown(results, SimpleNamespace(device="cpu"), published=True)
    assert "## CPU work of the framework" in markdown and "(from the run of 2026-12-07T16:50:00)" in markdown
    assert run.NOTES["overhead_cpu"] in markdown and "| mlp | model=mlp data=fashion | 128 | 430 |" in markdown
    assert "## Framework overhead" not in markdown
