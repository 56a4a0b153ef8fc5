"""The private parts of Hydra, its plugins and Optuna that this project reads, each in one module
(experiments/sweeps/hydra_internals.py, optuna_internals.py): these tests fail when a library
changes them. Lightning's are in tests/test_lightning_internals.py."""

import optuna
from hydra.core.utils import JobReturn, JobStatus

from experiments.sweeps.hydra_internals import optuna_sweeper_impl, runs_jobs_in_process, stored_outcome, submitit_executor
from experiments.sweeps.optuna_internals import reseed_tpe, trial_id


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


def test_the_optuna_sweepers_implementation_has_what_our_sweeper_uses():
    impl, parse = optuna_sweeper_impl()
    for method in ("_configure_trials", "_process_searchspace_config", "_parse_sweeper_params_config",
                   "_get_directions", "_to_grid_sampler_choices", "setup"):
        assert callable(getattr(impl, method)), method
    space, fixed = parse(["a=interval(0.0, 1.0)", "b=choice(1, 2)", "c=3"])
    assert set(space) == {"a", "b"} and fixed == {"c": "3"}


def test_a_trials_id_is_its_id_in_the_storage():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    for _ in range(3):
        trial = study.ask()
        assert storage.get_trial(trial_id(trial)).number == trial.number


def test_a_reseeded_tpe_draws_what_one_seeded_so_draws():
    def first_draw(sampler):
        study = optuna.create_study(sampler=sampler)
        return study.ask({"x": optuna.distributions.UniformDistribution(0, 1)}).params["x"]

    reseeded = optuna.samplers.TPESampler(seed=1)
    reseed_tpe(reseeded, 7)
    assert first_draw(reseeded) == first_draw(optuna.samplers.TPESampler(seed=7))
    assert first_draw(optuna.samplers.TPESampler(seed=1)) != first_draw(optuna.samplers.TPESampler(seed=7))
