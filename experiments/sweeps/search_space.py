"""The search space of an Optuna search (``hydra.sweeper.params`` and sweeps on the command line),
in Hydra's override grammar, as Optuna distributions; a plain value is fixed for every trial:

- ``choice(a, b, ...)`` and ``shuffle(range(...))``: a categorical of those values;
- ``range(start, stop[, step])``: the integers (or numbers, with a float) that Hydra's range gives,
  ``stop`` excluded as in Hydra;
- ``interval(low, high)``: uniform between them, integers if both are integers;
  ``tag(log, interval(low, high))``: uniform in the logarithm.

It is what Hydra's Optuna sweeper plugin (hydra-optuna-sweeper) parsed, on the distributions of
current Optuna. ``grid_choices`` gives the values a GridSampler walks through.
"""

from __future__ import annotations

from typing import Any, Mapping

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from experiments.config.errors import ConfigError


def search_space(params: Mapping[str, Any] | None, arguments: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The distributions to draw from and the fixed values, from ``params`` then the command line
    (a key given on both: the command line's)."""
    overrides = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.get_value_element_as_str()
    return space, fixed


def distribution(override: Override) -> BaseDistribution:
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(f"{override.input_line}: the range is empty, so there is nothing to search.")
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
        return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
    if override.is_interval_sweep():
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(f"{override.input_line}: an Optuna search takes choice(), range() or interval() here.")


def grid_choices(distribution: BaseDistribution) -> list[Any]:
    """The values of a discrete distribution, for a GridSampler."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, (IntDistribution, FloatDistribution)) and distribution.step and not distribution.log:
        count = round((distribution.high - distribution.low) / distribution.step) + 1
        return [distribution.low + i * distribution.step for i in range(count)]
    raise ConfigError(f"A grid search (hydra/sweeper/sampler=grid) takes choice() and range() only, not {distribution}.")
