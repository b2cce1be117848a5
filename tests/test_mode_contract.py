"""The mode contract (tfgan3d/mode.py): every registered mode satisfies it, a broken one is
refused, listing the modes imports no TensorFlow, and every flag has help text."""
import dataclasses
import subprocess
import sys

import pytest

from tfgan3d import config as config_lib
from tfgan3d import mode as mode_lib
from tfgan3d import registry


@pytest.mark.parametrize("name", registry.mode_names())
def test_every_mode_meets_the_contract(name):
    from tfgan3d.eval.__main__ import PROGRAMS

    mode = registry.get_mode(name)
    assert isinstance(mode, mode_lib.Mode) and mode.name == name
    assert mode.description == registry.describe(name)
    assert issubclass(mode.config, config_lib.TrainConfig)
    assert set(mode.eval_programs) <= set(PROGRAMS), mode.eval_programs
    # Every preset resolves to a valid config of the mode's class.
    assert set(config_lib.REQUIRED_PRESETS) <= set(config_lib.presets_of(mode.config))
    for preset in config_lib.presets_of(mode.config):
        config = config_lib.resolve_config(mode.config, name, {"preset": preset})
        assert type(config) is mode.config and config.preset == preset


@pytest.mark.parametrize("part", mode_lib.CALLABLES)
def test_a_mode_missing_a_part_is_refused(part):
    good = registry.get_mode("pix2pix")
    with pytest.raises(mode_lib.ContractError, match=part):
        dataclasses.replace(good, **{part: None})


def test_a_mode_with_a_wrong_config_or_no_programs_is_refused():
    good = registry.get_mode("pix2pix")
    with pytest.raises(mode_lib.ContractError, match="TrainConfig"):
        dataclasses.replace(good, config=dict)
    with pytest.raises(mode_lib.ContractError, match="eval_programs"):
        dataclasses.replace(good, eval_programs=())
    with pytest.raises(TypeError):       # a part left out entirely
        mode_lib.Mode(name="x", description="y", config=good.config)


def test_presets_a_mode_lacks_or_does_not_know_are_refused():
    good = registry.get_mode("pix2pix")

    class NoTiny(good.config):
        PRESET_VALUES = {k: v for k, v in good.config.PRESET_VALUES.items() if k != "tiny"}

    class Unknown(good.config):
        PRESET_VALUES = {**good.config.PRESET_VALUES, "huge": {}}

    with pytest.raises(mode_lib.ContractError, match="no 'tiny' preset"):
        dataclasses.replace(good, config=NoTiny)
    with pytest.raises(mode_lib.ContractError, match="unknown presets \\['huge'\\]"):
        dataclasses.replace(good, config=Unknown)

    # an optional preset a class does not define would mean the dataclass defaults (the
    # paper's sizes): it is refused by name, listing the class's presets
    class NoStandard(good.config):
        PRESET_VALUES = {k: v for k, v in good.config.PRESET_VALUES.items() if k != "standard"}

    with pytest.raises(config_lib.ConfigError,
                       match="--preset: expected one of paper, quick, tiny, got 'standard'"):
        config_lib.resolve_config(NoStandard, "pix2pix", {"preset": "standard"})
    with pytest.raises(config_lib.ConfigError, match="got 'standard'"):
        NoStandard(preset="standard").validate()


def test_registry_refuses_a_module_without_mode_or_with_another_name(monkeypatch):
    monkeypatch.setitem(registry.MODES, "nomode", registry.Entry("tfgan3d.io", "no MODE here"))
    with pytest.raises(mode_lib.ContractError, match="defines no MODE"):
        registry.get_mode("nomode")
    monkeypatch.setitem(registry.MODES, "renamed",
                        registry.Entry("tfgan3d.trainers.simgan", registry.describe("simgan")))
    with pytest.raises(mode_lib.ContractError, match="registry says"):
        registry.get_mode("renamed")
    with pytest.raises(registry.UnknownModeError, match="valid modes: fcr_alphagan"):
        registry.get_mode("cyclegan")


def test_listing_the_modes_imports_no_tensorflow():
    code = ("import sys\n"
            "from tfgan3d import train\n"
            "try:\n"
            "    train.parse_args(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "try:\n"
            "    train.parse_args(['--mode', 'cyclegan'])\n"
            "except SystemExit as e:\n"
            "    print('EXIT', e)\n"
            "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in registry.mode_names():
        assert registry.describe(name) in done.stdout
    assert "unknown mode 'cyclegan'" in done.stdout
    assert "TF False False" in done.stdout


@dataclasses.dataclass
class _Example(config_lib.TrainConfig):
    # Lead-in comment above the field.
    alpha: float = 0.5                # trailing text
    beta: str = "x"                   # first line
                                      # continued here
    gamma: int = 3
    delta: int = 4                    # 100% of it

    PRESET_VALUES = {"paper": {}, "quick": {"gamma": 7}, "tiny": {}}


def test_field_help_reads_trailing_continued_and_lead_in_comments():
    helps = config_lib.field_help(_Example)
    assert helps["alpha"] == "Lead-in comment above the field. trailing text"
    assert helps["beta"] == "first line continued here"
    assert helps["gamma"] == ""
    assert helps["seed"].startswith("seeds the data")        # from TrainConfig
    parser = __import__("argparse").ArgumentParser()
    config_lib.add_config_arguments(parser, _Example)
    text = parser.format_help()                               # '%' must not break argparse
    assert "100% of it (default 4)" in text
    assert "(default 3; quick: 7)" in text


@pytest.mark.parametrize("name", registry.mode_names())
def test_every_flag_of_every_mode_has_help_text(name):
    mode = registry.get_mode(name)
    helps = config_lib.field_help(mode.config)
    missing = sorted(k for k, v in helps.items() if not v and k != "mode")
    assert not missing, f"{name}: fields without a comment: {missing}"


def test_sample_figures_takes_the_newest_grid_of_each_kind(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for name in ("step_0000010.png", "step_0000200.png", "step_0000020_perception.png",
                 "step_0000100_perception.png", "step_0000100_translations.png", "notes.png"):
        (samples / name).write_bytes(b"png")
    shown = mode_lib.sample_figures(tmp_path, {"": "plain", "perception": "depth"})
    assert [(c, p.name) for c, p in shown] == [
        ("plain (step_0000200)", "step_0000200.png"),
        ("depth (step_0000100_perception)", "step_0000100_perception.png"),
        ("translations (step_0000100_translations)", "step_0000100_translations.png")]
    assert mode_lib.sample_figures(tmp_path / "missing", {}) == []


# What `predict` returns for a batch of `data(config, "test")` (simgan: of the training
# stream's synthetic images), for a freshly built tiny model.
PREDICTS = {"pix2pix": ("pairs", "real_a", {"depth"}),
            "simgan": ("pairs", "synthetic", {"refined"}),
            "sim2real": ("real", "image", {"depth", "seg_logits", "segmentation"}),
            "fcr_alphagan": ("scenes", None, {"reconstruction", "refined",
                                              "refined_probabilities"})}


@pytest.mark.parametrize("name", registry.mode_names())
def test_data_feeds_predict(name):
    import numpy as np

    mode = registry.get_mode(name)
    config = config_lib.resolve_config(mode.config, name, {"preset": "tiny"})
    train = mode.data(config)
    assert train and all(hasattr(ds, "element_spec") for ds in train.values())
    stream, key, outputs = PREDICTS[name]
    if name == "simgan":
        with pytest.raises(ValueError, match="eval simgan"):
            mode.data(config, "test", training=False)
        batch = next(iter(train[stream]))
    else:
        batch = next(iter(mode.data(config, "test", training=False)[stream]))
    inputs = batch if key is None else batch[key]
    # What `train` fills in from the data and records in config.json before it builds.
    if name == "sim2real":
        config.num_classes = 3
    if name == "pix2pix":
        config.max_depth = 10.0
    if name == "simgan":
        config.image_size = tuple(inputs.shape[1:3])
    model = mode.build_model(config)
    out = mode.predict(model, inputs, config)
    assert set(out) == outputs
    first = np.asarray(out[sorted(outputs)[0]])
    assert first.shape[0] == np.asarray(inputs).shape[0]
