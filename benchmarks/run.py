"""Benchmark suite: framework overhead, time to accuracy, start-up, scaling, torch.compile, pictures,
sweep launchers, Optuna pruning.

    python benchmarks/run.py                          # everything (roughly 50 min on 2 CPU cores)
    python benchmarks/run.py --quick                  # overhead + start-up + fashion_fast, 1 repeat
    python benchmarks/run.py --only overhead,startup --repeats 5
    python benchmarks/run.py --only overhead_cpu      # the same, timed by CPU time on one thread
    python benchmarks/run.py --only tta --recipes fashion_fast
    python benchmarks/run.py --only tta --recipes fashion_fast,fashion_best --seeds 3   # the seed table
    python benchmarks/run.py --only pictures          # the TensorBoard pictures' share of a run
    python benchmarks/run.py --only sweeps            # a sweep of short jobs: joblib vs parallel launcher
    python benchmarks/run.py --only pruning           # a Fashion-MNIST search with and without pruning (~15 min)
    python benchmarks/run.py --only image_folder      # Fashion-MNIST as PNGs against data=fashion
    python benchmarks/run.py --device cuda --only overhead,tta,compile   # on a GPU machine
    python benchmarks/run.py --publish                # and update the published benchmarks/RESULTS.md
    make bench ARGS="--only overhead"

Prints one rich table per section and writes this run's figures and tables, with the machine, to
a new pair of files, benchmarks/results/<time>.json and <time>.md. Only --publish (or
--markdown-only) touches the published record, both in git: benchmarks/RESULTS.json and
benchmarks/RESULTS.md, where sections not run keep their last figures and their date.
Run it on a quiet machine: timings share the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# As the user set them: importing benchmarks.common may set CUDA_VISIBLE_DEVICES itself.
USER_ENV = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ}

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.common import ROOT  # noqa: E402

SECTIONS = ("overhead", "overhead_cpu", "tta", "startup", "scaling", "compile", "pictures", "sweeps", "pruning",
            "image_folder")
RESULTS_DIR = ROOT / "benchmarks" / "results"  # each run's own pair of files (not in git)
MARKDOWN = ROOT / "benchmarks" / "RESULTS.md"
RECORD = ROOT / "benchmarks" / "RESULTS.json"  # the published figures behind RESULTS.md (in git)

# What each section's figures mean, under the tables of RESULTS.md.
NOTES = {
    "overhead": (
        "The plain loop (`benchmarks/plain.py`) and `experiments.pipeline.train` (the code behind "
        "`experiments/run.py`, with its default TensorBoard logger, checkpointing, progress bar and "
        "per-epoch validation) train the same net, from the same seed, on the same tensors, with "
        "the same batch size and optimizer, alternating in one process; both epochs are timed in "
        "the process over the same span (`benchmarks/timing.py`). *ratio* is the median framework "
        "epoch over the median plain one; *pair ratio* the median of each adjacent pair's ratio, "
        "which cancels the drift of a shared machine between pairs; *ratio of minimums* the fastest "
        "framework epoch over the fastest plain one (load only ever adds time). *bare Lightning* trains the "
        "plain loop's net, optimizer and loss in a LightningModule with nothing else (no logging, "
        "metrics, callbacks, checkpoints or progress bar; `benchmarks/common.py`), interleaved "
        "with the other two: the part of the ratio that is Lightning's own loop."),
    "overhead_cpu": (
        "The same three sides as the overhead table, interleaved the same way, each epoch timed by the CPU time "
        "of the process's main thread (`time.thread_time`) with torch on that one thread "
        "(`benchmarks/clock.py`): everything an epoch computes is counted, and the time that other processes "
        "hold the cores is not. It measures how much work each side does, not how long a run takes: the "
        "framework's own work beside bare Lightning's, steadier than wall time on a shared machine."),
    "tta": (
        "A *reference epoch* (`benchmarks/reference.py`) is one epoch of a plain-PyTorch LeNet (the net of "
        "`model=cnn`), SGD, batch 128, the 55,000 training images as whole-tensor batches, no framework, the "
        "best of 2, timed just before each command: this machine's speed moves by 1.5x between days and within "
        "minutes, so the targets are set in these units."),
    "sweeps": (
        "The two launchers alternate in one run (`benchmarks/sweeps.py`). *first job starts at*: from the "
        "command's start to the first job's run (its `job.json`); *job s*: a job's own wall time from there. "
        "Hydra's joblib launcher starts two loky workers that each import torch and Lightning; `parallel` "
        "imports them once in its fork server and forks each job from it."),
    "pruning": (
        "`benchmarks/pruning.py`: both searches draw the same trials until TPE's random start-up ones end "
        "(seed 1234); after them TPE learns from the pruned trials' curves and draws differently. The pruned one "
        "stops a trial after an epoch whose val/acc is below the median of the completed trials at that epoch "
        "(conf/hydra/sweeper/pruner/median.yaml). *CPU s*: the command's and its children's user + system "
        "time, which moves less than the wall time with what else runs on the machine."),
    "image_folder": (
        "`benchmarks/image_folder.py`: Fashion-MNIST written as PNGs in torchvision's ImageFolder layout "
        "(`train/<class>/`, `test/<class>/`), trained with `data=image_folder` and with `data=fashion`, same "
        "model and batch size, alternating in one process; *ratio of minimums*: the fastest epoch of each (load "
        "only ever adds time). The PNGs are decoded once, in `setup` (*decode*), "
        "by the data module's threads; an epoch then reads uint8 tensors as `data=fashion` does."),
}


def machine() -> dict[str, str]:
    import lightning
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "cpu": cpu, "cores": str(os.cpu_count()), "torch_threads": str(torch.get_num_threads()),
        "gpu": gpu, "python": platform.python_version(), "torch": torch.__version__,
        "lightning": lightning.__version__, "os": platform.platform(terse=True),
    }


def fmt(value, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{100 * value:.2f}%" if pct else f"{value:.{digits}f}"
    return str(value)


def tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per section, shared by the console and the markdown."""
    out = []
    for key, title in (("overhead", "Framework overhead: one Fashion-MNIST epoch (train + validation), median"),
                       ("overhead_cpu", ("CPU work of the framework: the overhead table timed by the main thread's "
                                         "CPU time, one torch thread, median"))):
        if key not in results:
            continue
        rows = [[r["case"], r["overrides"], str(r["batch_size"]), str(r["steps"]), fmt(r["plain_epoch_s"]),
                 fmt(r["framework_epoch_s"]), fmt(r["ratio"], 3), fmt(r.get("ratio_pairs_median"), 3),
                 fmt(r.get("ratio_of_minimums"), 3), fmt(r["train_ratio"], 3),
                 fmt(r.get("lightning_ratio_pairs_median"), 3), fmt(r.get("lightning_ratio_of_minimums"), 3),
                 fmt(r.get("over_lightning_pairs_median"), 3), f"{r['repeats']}", fmt(r["ok"])]
                for r in results[key]]
        out.append((title,
                    ["case", "config", "batch", "steps", "plain s", "framework s", "ratio", "pair ratio",
                     "ratio of minimums", "train-only ratio", "bare Lightning: pair ratio",
                     "bare Lightning: ratio of minimums", "framework over bare Lightning: pair ratio", "repeats",
                     "framework within 3% of bare Lightning"], rows))
    if "tta" in results:
        rows = [[r["command"], fmt(r["wall_s"], 1), fmt(r.get("reference_epoch_s"), 2),
                 fmt(r.get("wall_reference_epochs"), 1), fmt(r.get("framework_fit_s"), 1),
                 fmt(r.get("plain_fit_s"), 1), fmt(r.get("fit_ratio"), 2), fmt(r.get("train_acc"), pct=True),
                 fmt(r["test_acc"], pct=True), fmt(r.get("plain_test_acc"), pct=True), fmt(r["target_acc"], pct=True),
                 fmt(r.get("budget_reference_epochs"), 0), fmt(r["val_target_reached_s"], 1), str(r["epochs"]),
                 fmt(r["ok"])]
                for r in results["tta"]]
        out.append(("Time to accuracy: the whole command, start-up and test included, in seconds and in reference "
                    "epochs (timed just before it); the plain loop on the same recipe",
                    ["command", "wall s", "reference epoch s", "wall in reference epochs", "fit+test s",
                     "plain fit+test s", "ratio", "train acc", "test acc", "plain test acc", "target",
                     "budget (reference epochs)", "val >= target at s", "epochs", "met"], rows))
        from benchmarks.time_to_accuracy import seed_summary

        summary = seed_summary(results["tta"])
        if summary:
            rows = [[r["recipe"], ", ".join(str(s) for s in r["seeds"]),
                     ", ".join(fmt(a, pct=True) for a in r["test_accs"]), fmt(r["mean_acc"], pct=True),
                     fmt(r["min_acc"], pct=True), fmt(r["mean_reference_epochs"], 1),
                     fmt(r["max_reference_epochs"], 1),
                     f"first >= {fmt(r['target_acc'], pct=True)}"
                     + (f", mean >= {fmt(r['target_mean_acc'], pct=True)}" if r["target_mean_acc"] else "")
                     + f", none < {fmt(r['target_min_acc'], pct=True)}, <= {fmt(r['budget_reference_epochs'], 0)} "
                     "reference epochs", fmt(r["ok"])] for r in summary]
            out.append(("Seeds: test accuracy of each seed, and the commands' reference epochs",
                        ["recipe", "seeds", "test acc", "mean", "lowest", "mean reference epochs",
                         "most reference epochs", "target", "met"], rows))
    if "startup" in results:
        rows = [[r["command"], fmt(r["wall_s"]), str(r["repeats"])] for r in results["startup"]]
        out.append(("Start-up: wall time of the command, median", ["command", "wall s", "repeats"], rows))
    if "scaling" in results:
        rows = [[r["workload"], f"{r['points']:.0e}".replace("e+0", "e"), str(r["steps"]), fmt(r["plain_epoch_s"], 3),
                 fmt(r["framework_epoch_s"], 3), fmt(r["plain_ms_per_1k"], 2), fmt(r["framework_ms_per_1k"], 2),
                 fmt(r["ratio"], 2)] for r in results["scaling"]]
        out.append(("Scaling: one epoch (train + validation) as the data grows",
                    ["workload", "points", "steps", "plain s", "framework s", "plain ms/1k pts",
                     "framework ms/1k pts", "ratio"], rows))
    if "compile" in results:
        rows = [[r["case"], str(r["batch_size"]), fmt(r["eager_step_ms"], 1), fmt(r["compiled_step_ms"], 1),
                 fmt(r["speedup"], 2), fmt(r["compile_s"], 1), fmt(r["saved_per_run_s"], 1), fmt(r["pays"])]
                for r in results["compile"]]
        out.append(("torch.compile: training step of the recipe's net, median",
                    ["recipe net", "batch", "eager ms", "compiled ms", "speedup", "first steps s",
                     "saved per run s", "pays"], rows))
    if "pictures" in results:
        rows = [[r["case"], r["overrides"], str(r["epochs"]), fmt(r["fit_s"]), fmt(r["epoch_s"], 3),
                 fmt(r["drawings"], 0), fmt(r["pictures_s"]), fmt(r["share"], pct=True),
                 fmt(1000 * r["per_drawing_s"], 0), fmt(1000 * r["graph_once_s"], 0), str(r["repeats"])]
                for r in results["pictures"]]
        out.append(("Pictures: the TensorBoard pictures' time in a run, validation pictures only, median",
                    ["case", "config", "epochs", "fit s", "epoch s", "pictures drawn", "pictures s",
                     "share", "ms per picture", "graph once ms", "repeats"], rows))
    if "sweeps" in results:
        rows = [[f"hydra/launcher={r['launcher']}", str(r["jobs"]), fmt(r["wall_s"], 1), fmt(r["first_job_s"], 1),
                 fmt(r["job_wall_s"], 1), fmt(r["ratio_to_joblib"], 2), str(r["repeats"])] for r in results["sweeps"]]
        out.append(("Sweep launchers: 6 short XOR jobs, 2 at a time, the whole command, median",
                    ["launcher", "jobs", "wall s", "first job starts at s", "job s", "pair ratio to joblib",
                     "repeats"], rows))
    if "pruning" in results:
        rows = [[r["case"], str(r["trials"]), fmt(r["wall_s"], 0), fmt(r["time_ratio"], 2), fmt(r.get("cpu_s"), 0),
                 fmt(r.get("cpu_ratio"), 2), fmt(r["best_val_acc"], pct=True),
                 fmt(100 * r["acc_gap"], 2), fmt(r["pruned"], 0), fmt(r["epochs"], 0), r["load"], str(r["repeats"]),
                 fmt(r["ok"])] for r in results["pruning"]]
        out.append(("Pruning: the same Optuna search of Fashion-MNIST (hparams_search=fashion, 16 trials of 5 epochs), "
                    "the whole command, median",
                    ["search", "trials", "wall s", "wall ratio", "CPU s", "CPU ratio", "best val/acc", "points below", "pruned",
                     "epochs trained", "load avg", "repeats", "ratio <= 0.5 and <= 0.5 points"], rows))
    if "image_folder" in results:
        rows = [[r["data"], fmt(r["epoch_s"]), fmt(r["first_epoch_s"]), fmt(r.get("pair_ratio"), 3),
                 ", ".join(fmt(x, 3) for x in r.get("pair_ratios", [])) or "-", fmt(r.get("ratio_of_minimums"), 3),
                 fmt(r.get("decode_s"), 1), str(r["repeats"]), fmt(r.get("ok"))] for r in results["image_folder"]]
        model = results["image_folder"][0]["model"]
        out.append((f"Image folder: Fashion-MNIST as 70,000 PNGs (data=image_folder) against data=fashion, model={model}, "
                    "one epoch after the first, median of pairs",
                    ["data", "epoch s", "first epoch s", "pair ratio", "pair ratios", "ratio of minimums",
                     "decode of the PNGs s", "pairs", "pair ratio <= 1.2"], rows))
    return out


def load_text(load) -> str:
    return "-" if not load else ", ".join(f"{x:.2f}" for x in load)


def to_markdown(results: dict, args: argparse.Namespace, published: bool = False) -> str:
    """The tables as markdown: of one run, or (``published``) of the record in RESULTS.md."""
    m = results["machine"]
    env = " ".join(f"{k}={v}" for k, v in results.get("env", {}).items())
    command = " ".join(x for x in (env, "python benchmarks/run.py", *results.get("argv", [])) if x)
    lines = [
        "# Benchmark results",
        "",
        f"{'Latest run' if published else 'Run'} of `{command}`, {results['date']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), GPU: {m['gpu']}; "
        f"Python {m['python']}, torch {m['torch']}, Lightning {m['lightning']}; device `{args.device}`.",
        "",
        *([f"Note: {results['note']}", ""] if results.get("note") else []),
        *([f"Load average (1, 5, 15 min) at the start {load_text(results['load_start'])}, at the end "
           f"{load_text(results.get('load_end'))}: other work on the machine slows what is timed.", ""]
          if results.get("load_start") else []),
        *(["Regenerate: `python benchmarks/run.py --publish` (all sections, roughly 50 min) or `python benchmarks/run.py "
           "--only overhead,startup --repeats 5 --publish`; every figure is also in `benchmarks/RESULTS.json`.",
           ""] if published else []),
    ]
    names = dict(zip(("Framework", "CPU work", "Time to", "Start-up", "Scaling", "torch.compile", "Pictures", "Sweep",
                      "Pruning", "Image folder"), SECTIONS))
    names["Seeds"] = "tta"
    drawn = [(next(v for k, v in names.items() if title.startswith(k)), title, header, rows)
             for title, header, rows in tables(results)]
    for i, (section, title, header, rows) in enumerate(drawn):
        if section in results.get("carried", {}):
            title += f" (from the run of {results['carried'][section]})"
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
        if section in NOTES and (i + 1 == len(drawn) or drawn[i + 1][0] != section):  # under its last table
            lines += [NOTES[section], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per measurement (default: overhead 9, startup 3, scaling 1, sweeps 3, pruning 1, image_folder 5)")
    parser.add_argument("--quick", action="store_true",
                        help="overhead, startup and fashion_fast only, 1 repeat, scaling up to 1e5 points")
    parser.add_argument("--recipes", default="fashion_seed,fashion_fast,fashion_best",
                        help="time-to-accuracy recipes (conf/experiment/ names)")
    parser.add_argument("--cases", default="cnn,mlp", help="overhead cases")
    parser.add_argument("--seeds", type=int, default=None,
                        help="run each time-to-accuracy recipe with this many seeds (the config's seed and the "
                             "next ones) and add a table of them")
    parser.add_argument("--no-plain-tta", action="store_true",
                        help="skip the plain-loop baseline of each time-to-accuracy recipe (it takes as long again)")
    parser.add_argument("--max-size", type=float, default=None, help="largest scaling size, e.g. 1e5")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="device for every section (cuda: trainer.accelerator=gpu, data.on_device=true)")
    parser.add_argument("--precision", default=None,
                        help="trainer.precision for the framework's time-to-accuracy runs, e.g. bf16-mixed (the plain baseline stays fp32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the in-process sections (default: torch's, one per core)")
    parser.add_argument("--publish", action="store_true",
                        help="also update the published record, benchmarks/RESULTS.md and RESULTS.json "
                             "(sections not run keep their figures there); without it only new files are written")
    parser.add_argument("--note", default=None, help="a line for the tables, e.g. what else ran on the machine")
    parser.add_argument("--markdown-only", action="store_true",
                        help="rewrite benchmarks/RESULTS.md from benchmarks/RESULTS.json (with --note), run nothing")
    args = parser.parse_args(argv)
    if args.markdown_only:
        results = json.loads(RECORD.read_text())
        if args.note is not None:
            results["note"] = args.note
            RECORD.write_text(json.dumps(results, indent=2, default=str) + "\n")
        args.device = results.get("device", args.device)
        MARKDOWN.write_text(to_markdown(results, args, published=True))
        print(f"Markdown: {MARKDOWN}")
        return 0

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    from benchmarks.overhead import CASES

    unknown = sorted(set(args.cases.split(",")) - set(CASES))
    if {"overhead", "overhead_cpu"} & set(sections) and unknown:
        parser.error(f"unknown overhead case(s) {unknown}; choose from {', '.join(CASES)}")
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    max_size = int(args.max_size) if args.max_size else None
    if args.quick:
        if args.only == parser.get_default("only"):
            sections = ["overhead", "startup", "tta"]
        if args.recipes == parser.get_default("recipes"):
            recipes = ["fashion_fast"]
        args.repeats = args.repeats or 1
        max_size = max_size or 10**5

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    console = Console(width=None if Console().is_terminal else 200)  # unwrapped tables in logs
    log = lambda msg: console.log(msg)  # noqa: E731
    results: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv[1:],
                     "machine": machine(), "device": args.device, "note": args.note,
                     "env": USER_ENV, "load_start": os.getloadavg()}
    started = time.perf_counter()
    if "overhead" in sections:
        from benchmarks import overhead

        results["overhead"] = overhead.run(args.repeats or 9, args.device, args.cases.split(","), log=log)
    if "overhead_cpu" in sections and args.device != "cpu":
        log("overhead_cpu: skipped, the CPU-time clock counts no GPU work")
    elif "overhead_cpu" in sections:
        from benchmarks import overhead

        results["overhead_cpu"] = overhead.run(args.repeats or 9, args.device, args.cases.split(","), log=log,
                                               clock="cpu")
    if "startup" in sections:
        from benchmarks import startup

        results["startup"] = startup.run(args.repeats or 3, log=log)
    if "scaling" in sections:
        from benchmarks import scaling

        results["scaling"] = scaling.run(args.repeats or 1, args.device, max_size, log=log)
    if "tta" in sections:
        from benchmarks import time_to_accuracy
        from benchmarks.common import device_overrides

        extra = device_overrides(args.device) if args.device == "cuda" else []
        extra += [f"trainer.precision={args.precision}"] if args.precision else []
        results["tta"] = time_to_accuracy.run(recipes, extra, plain=not (args.quick or args.no_plain_tta),
                                              device=args.device, log=log, seeds=args.seeds)
    if "compile" in sections:
        from benchmarks import compile as compile_section

        results["compile"] = compile_section.run(device=args.device, log=log)
    if "pictures" in sections:
        from benchmarks import pictures

        results["pictures"] = pictures.run(args.repeats or 1, args.device, log=log)
    if "sweeps" in sections:
        from benchmarks import sweeps

        results["sweeps"] = sweeps.run(args.repeats or 3, log=log)
    if "pruning" in sections:
        from benchmarks import pruning

        results["pruning"] = pruning.run(args.repeats or 1, log=log)
    if "image_folder" in sections:
        from benchmarks import image_folder

        results["image_folder"] = image_folder.run(args.repeats or 5, log=log)
    results["bench_wall_s"] = time.perf_counter() - started
    results["load_end"] = os.getloadavg()
    ran = [s for s in SECTIONS if s in results]
    results["sections_run"] = ran

    for title, header, rows in tables(results):
        table = Table(title=title)
        for h in header:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)

    # This run's own record: a new pair of files, whatever was run.
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    own, n = RESULTS_DIR / stamp, 1
    while own.with_suffix(".json").exists():  # two runs in one second
        own, n = RESULTS_DIR / f"{stamp}_{n}", n + 1
    own.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    own.with_suffix(".md").write_text(to_markdown(results, args))
    console.print(f"Results: {own.with_suffix('.json')} and {own.with_suffix('.md')}")
    if args.publish:
        publish(results, args)
        console.print(f"Published: {MARKDOWN} and {RECORD}")
    return 0


def publish(results: dict, args: argparse.Namespace) -> None:
    """Merge this run into the published record (RESULTS.json, RESULTS.md): sections not run this
    time keep their last figures, with their date."""
    merged = dict(results)
    if RECORD.is_file():
        old = json.loads(RECORD.read_text())  # in git: a broken record is an error, not a fresh start
        carried = {}
        for section in SECTIONS:
            if section not in results and section in old:
                merged[section] = old[section]
                carried[section] = old.get("carried", {}).get(section, old.get("date"))
        merged["carried"] = carried
    RECORD.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    MARKDOWN.write_text(to_markdown(merged, args, published=True))


if __name__ == "__main__":
    raise SystemExit(main())
