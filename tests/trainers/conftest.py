"""Fixtures shared by the training-run tests."""
import pytest


@pytest.fixture
def captured(monkeypatch):
    """The model and optimizers each runner.fit call trains (the run's own objects)."""
    from tfgan3d.trainers import runner
    seen = []
    fit = runner.fit

    def spy(model, dataset, run, **kwargs):
        seen.append((model, kwargs["optimizers"]))
        return fit(model, dataset, run, **kwargs)

    monkeypatch.setattr(runner, "fit", spy)
    return seen
