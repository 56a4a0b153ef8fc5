"""The private parts of Hydra, its plugins and Optuna that this project reads, each in one module
(experiments/sweeps/hydra_internals.py, optuna_internals.py): these tests fail when a library
changes them. Lightning's are in tests/test_lightning_internals.py. Hydra's override grammar as
our Optuna search reads it (experiments/sweeps/search_space.py), too."""

import optuna
from hydra.core.utils import JobReturn, JobStatus

from experiments.sweeps.hydra_internals import runs_jobs_in_process, stored_outcome, submitit_executor
from experiments.sweeps.optuna_internals import reseed_tpe, trial_id
from experiments.sweeps.search_space import grid_choices, search_space


def test_a_failed_jobs_error_is_read_without_raising_it():
    failed = JobReturn(status=JobStatus.FAILED)
    failed.return_value = ValueError("boom")
    assert isinstance(stored_outcome(failed), ValueError) and str(stored_outcome(failed)) == "boom"
    done = JobReturn(status=JobStatus.COMPLETED)
    done.return_value = 0.5
    assert stored_outcome(done) == 0.5 == done.return_value


def test_the_submitit_launchers_name_their_executor():
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

    assert submitit_executor(SlurmLauncher) == "slurm" and submitit_executor(LocalLauncher) == "local"


def test_hydras_basic_launcher_is_known_as_the_one_that_runs_jobs_in_process():
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

    assert runs_jobs_in_process(BasicLauncher()) and not runs_jobs_in_process(LocalLauncher())


def test_the_search_space_is_hydras_sweep_grammar_as_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space, fixed = search_space({"lr": "tag(log, interval(1e-4, 1e-2))", "width": "choice(64, 128)",
                                 "depth": "range(1, 5)", "p": "interval(0.0, 0.5)", "q": "range(0.0, 1.0, 0.25)"},
                                ["seed=3", "width=choice(a, b)"])  # the command line's sweep replaces params'
    assert space == {"lr": FloatDistribution(1e-4, 1e-2, log=True), "depth": IntDistribution(1, 4),
                     "p": FloatDistribution(0.0, 0.5), "q": FloatDistribution(0.0, 0.75, step=0.25),
                     "width": CategoricalDistribution(["a", "b"])}
    assert fixed == {"seed": "3"}
    assert [grid_choices(space[k]) for k in ("depth", "q", "width")] == [[1, 2, 3, 4], [0.0, 0.25, 0.5, 0.75],
                                                                         ["a", "b"]], "range() excludes its stop"


def test_a_trials_id_is_its_id_in_the_storage():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    for _ in range(3):
        trial = study.ask()
        assert storage.get_trial(trial_id(trial)).number == trial.number


def test_a_reseeded_tpe_draws_what_one_seeded_so_draws():
    def first_draw(sampler):
        study = optuna.create_study(sampler=sampler)
        return study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"]

    reseeded = optuna.samplers.TPESampler(seed=1)
    reseed_tpe(reseeded, 7)
    assert first_draw(reseeded) == first_draw(optuna.samplers.TPESampler(seed=7))
    assert first_draw(optuna.samplers.TPESampler(seed=1)) != first_draw(optuna.samplers.TPESampler(seed=7))
