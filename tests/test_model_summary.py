"""The model summary every run prints: no FLOPs figures that read 0."""

from rich import get_console

from lightning_modules.callbacks import ModelSummary

DATA = [(" ", ["0"]), ("Name", ["net"]), ("Type", ["LeNet"]), ("Params", ["60.1 K"]), ("Mode", ["train"]),
        ("FLOPs", ["0"])]


def summary_text(total_flops: int) -> str:
    with get_console().capture() as printed:
        ModelSummary.summarize(DATA, 60074, 60074, 0.24, {"train": 20, "eval": 0}, total_flops)
    return printed.get()


def test_summary_leaves_out_flops_that_read_zero():
    text = summary_text(0)
    assert "FLOPs" not in text
    assert "LeNet" in text and "60.1 K" in text and "Total params" in text and "Modules in train mode: 20" in text


def test_summary_keeps_flops_that_were_counted():
    assert "Total FLOPs: 1.2 K" in summary_text(1200)


def test_lightning_calls_summarize_with_the_arguments_the_override_takes():
    """ModelSummary overrides RichModelSummary.summarize: a change of its signature in Lightning fails here."""
    import inspect

    from lightning.pytorch.callbacks import RichModelSummary

    theirs = list(inspect.signature(RichModelSummary.summarize).parameters)
    ours = list(inspect.signature(ModelSummary.summarize).parameters)
    assert theirs == ours, (theirs, ours)
