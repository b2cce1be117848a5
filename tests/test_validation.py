"""Validation before the run starts and the one error path: config ranges, --epochs with
every preset, sim2real's --steps split, data checked by content as declared, one `error:`
line with a non-zero exit (traceback only with --debug)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfgan3d import config as config_lib
from tfgan3d import registry, train
from tfgan3d.data import paired, sim2real_data
from tfgan3d.data.images import DataError
from tfgan3d.data.scene_files import write_scene_dataset


def resolve(mode, **options):
    return config_lib.resolve_config(registry.get_mode(mode).config, mode, {"preset": "tiny", **options})


@pytest.mark.parametrize("options, words", [
    ({"lr": -1.0}, "--lr: expected > 0, got -1.0"),
    ({"lr": float("nan")}, "--lr: expected a finite number"),
    ({"beta1": 5.0}, "--beta1: expected a value in [0, 1), got 5.0"),
    ({"ngf": 0}, "--ngf: expected >= 1, got 0"),
    ({"lambda_l1": -2.0}, "--lambda-l1: expected >= 0"),
    ({"lr_schedule": "piecewise", "lr_boundaries": (20, 10), "lr_factors": (1, .5, .1)},
     "--lr-boundaries: expected increasing iterations >= 1, got 20 10"),
])
def test_out_of_range_values_are_refused(options, words):
    with pytest.raises(config_lib.ConfigError) as err:
        resolve("pix2pix", **options)
    assert words in str(err.value)


def test_fcr_widths_and_simgan_momentum_ranges():
    with pytest.raises(config_lib.ConfigError, match="--widths: expected >= 1"):
        resolve("fcr_alphagan", widths=(0, 8))
    with pytest.raises(config_lib.ConfigError, match="--momentum"):
        resolve("simgan", momentum=1.5)


@pytest.mark.parametrize("mode", ["pix2pix", "simgan", "fcr_alphagan", "sim2real"])
@pytest.mark.parametrize("preset", ["tiny", "quick", "paper"])
def test_epochs_replaces_the_presets_steps(mode, preset):
    config = resolve(mode, preset=preset, epochs=2.0)
    assert config.epochs == 2.0 and config.steps is None


def test_sim2real_steps_split_in_the_presets_ratio():
    tiny = resolve("sim2real", steps=10)            # tiny: 4 + 4
    assert (tiny.stage1_steps, tiny.stage2_steps, tiny.steps) == (5, 5, None)
    paper = resolve("sim2real", preset="paper", steps=1000)
    ratio = paper.stage1_steps / 1000
    default = resolve("sim2real", preset="paper")
    assert ratio == pytest.approx(default.stage1_steps / (default.stage1_steps +
                                                          default.stage2_steps), abs=1e-3)
    assert paper.stage1_steps + paper.stage2_steps == 1000


def _n_weights(model):
    return sum(int(np.prod(v.shape)) for v in model.weights)


@pytest.mark.parametrize("mode, options", [("sim2real", {"num_classes": 6}), ("pix2pix", {})])
def test_standard_keeps_quicks_networks_with_more_data_and_a_longer_budget(mode, options):
    """standard (issue 10): quick's networks (the same weights, counted), a longer run on
    more scenes."""
    std, quick = (resolve(mode, preset=p, **options) for p in ("standard", "quick"))
    assert std.preset == "standard" and quick.preset == "quick"
    build = registry.get_mode(mode).build_model
    n_std, n_quick = _n_weights(build(std)), _n_weights(build(quick))
    assert n_std == n_quick > 0
    if mode == "sim2real":
        assert std.stage1_steps > quick.stage1_steps and std.stage2_steps > quick.stage2_steps
        assert (std.image_size, std.batch_size, std.lr) == (quick.image_size, quick.batch_size,
                                                            quick.lr)
    else:
        assert std.steps > quick.steps
        assert (std.crop_size, std.batch_size, std.lr) == (quick.crop_size, quick.batch_size,
                                                           quick.lr)
    assert std.n_train > quick.n_train and std.n_test >= quick.n_test


def test_a_mode_without_standard_refuses_it_by_name():
    """simgan has no standard preset: the train command and its finding program say so."""
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--mode", "simgan", "--preset", "standard", "--dry-run"])
    assert exit_info.value.code == ("error: --preset: expected one of paper, quick, tiny, "
                                    "got 'standard'")
    from tfgan3d.eval import simgan_finding
    with pytest.raises(SystemExit):
        simgan_finding.main(["--preset", "standard"])


def test_the_2x2_program_takes_standard(monkeypatch, tmp_path):
    from tfgan3d.eval import pix2pix_domains
    seen = []
    monkeypatch.setattr(pix2pix_domains, "run_experiment",
                        lambda out, **kwargs: seen.append(kwargs["preset"]))
    assert pix2pix_domains.main(["--out", str(tmp_path), "--preset", "standard"]) == 0
    assert seen == ["standard"]


def test_batch_larger_than_the_data_is_refused():
    from tfgan3d.trainers import runner
    with pytest.raises(runner.RunError, match="--batch-size 100000: expected at most the 8"):
        runner.total_steps(resolve("pix2pix", batch_size=100000), 8, default=10)


def test_train_cli_prints_one_error_line_and_debug_shows_the_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--mode", "pix2pix", "--preset", "tiny", "--beta1", "5"])
    assert exit_info.value.code == "error: --beta1: expected a value in [0, 1), got 5.0"
    with pytest.raises(config_lib.ConfigError):
        train.main(["--mode", "pix2pix", "--preset", "tiny", "--beta1", "5", "--debug"])


@pytest.mark.parametrize("argv", [
    ["tfgan3d.eval", "pix2pix", "/nowhere/run"],
    ["tfgan3d.export", "/nowhere/run", "--out", "/tmp/nowhere-serving"],
])
def test_eval_and_export_exit_non_zero_with_one_line(argv):
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, (done.returncode, done.stderr[-800:])
    assert "Traceback" not in done.stderr
    assert [l for l in done.stderr.splitlines() if l.startswith("error: ")], done.stderr[-800:]


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory):
    return write_scene_dataset(tmp_path_factory.mktemp("data") / "set", "virtual", 2, 1, 16, 16)


def copy_set(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_dataset_json_max_depth_and_encoding_are_honoured(folder_set, tmp_path):
    from tfgan3d.trainers import pix2pix
    root = copy_set(folder_set, tmp_path / "set")
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps({**meta, "max_depth": 20.0,
                                                   "depth_encoding": "png16"}))
    config = resolve("pix2pix", data=str(root))
    files = pix2pix.find_files(config, str(root), "train")
    assert (files.spec.max_depth, files.spec.encoding) == (20.0, "png16")
    flagged = pix2pix.find_files(resolve("pix2pix", data=str(root), max_depth=5.0),
                                 str(root), "train")
    assert flagged.spec.max_depth == 5.0                 # a given flag still wins


def test_all_invalid_depth_is_an_error(folder_set, tmp_path):
    root = copy_set(folder_set, tmp_path / "set")
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps(
        {k: v for k, v in meta.items() if k != "depth_encoding"}))
    for f in (root / "train" / "depth").iterdir():
        f.unlink()
        np.save(f.with_suffix(".npy"), np.full((16, 16), np.nan, np.float32))
    files = paired.discover_pairs(root, "train")
    with pytest.raises(DataError, match="expected some valid depth, found none"):
        paired.validate_pairs(files)


def test_label_beyond_the_declared_classes_is_an_error(folder_set, tmp_path):
    root = copy_set(folder_set, tmp_path / "set")
    label = sorted((root / "train" / "labels").iterdir())[0]
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(label)
    files = paired.discover_pairs(root, "train")
    assert files.classes
    with pytest.raises(DataError, match=f"{label.name}: expected class ids 0..{len(files.classes) - 1}"):
        paired.validate_pairs(files)


def test_sim2real_8bit_depth_where_16bit_is_specified_is_an_error(folder_set, tmp_path):
    root = copy_set(folder_set, tmp_path / "set")
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps(
        {k: v for k, v in meta.items() if k != "depth_encoding"}))
    for f in (root / "train" / "depth").iterdir():
        Image.fromarray(np.full((16, 16), 100, np.uint8)).save(f)
    files = sim2real_data.discover_domain(root, "train", "sim")
    with pytest.raises(DataError, match="expected 16-bit depth as the layout specifies"):
        sim2real_data.validate_domain(files, None, "headers", maps=("depth",))


def test_pix2pix_unreadable_test_data_is_an_error(folder_set, tmp_path):
    from tfgan3d.trainers import pix2pix
    config = resolve("pix2pix", data=str(folder_set), test_data=str(tmp_path / "nowhere"))
    train_files = pix2pix.find_files(config, str(folder_set), "train")
    with pytest.raises(DataError, match="--test-data"):
        pix2pix.find_test_files(config, train_files)
    root = copy_set(folder_set, tmp_path / "set")
    rgb = sorted((root / "test" / "rgb").iterdir())[0]
    rgb.write_bytes(rgb.read_bytes()[:40])
    config = resolve("pix2pix", data=str(root))
    with pytest.raises(DataError, match=rgb.name):
        pix2pix.find_test_files(config, pix2pix.find_files(config, str(root), "train"))


# ---- issue 29: one line and exit 1 for malformed and unknown flags in every program ----------

FLAG_ERRORS = [
    ("tfgan3d.train", ["--mode", "pix2pix", "--steps", "abc"], "--steps: invalid int value"),
    ("tfgan3d.train", ["--mode", "sim2real", "--seed", "x1"], "--seed: invalid int value"),
    ("tfgan3d.train", ["--mode", "pix2pix", "--stpes", "3"], "did you mean --steps?"),
    ("tfgan3d.eval.__main__", ["pix2pix", "RUN", "--batch-size", "abc"], "--batch-size"),
    ("tfgan3d.eval.__main__", ["fcr", "recons", "RUN", "--bogus"], "--bogus"),
    ("tfgan3d.eval.__main__", ["render", "x.npy", "--size", "abc"], "--size"),
    ("tfgan3d.eval.__main__", ["report", "F", "--bogus"], "--bogus"),
    ("tfgan3d.eval.__main__", ["sim2real", "RUN", "--bogus"], "--bogus"),
    ("tfgan3d.eval.__main__", ["simgan", "RUN", "--bogus"], "--bogus"),
    ("tfgan3d.eval.__main__", ["domains", "--seed", "x1"], "--seed"),
    ("tfgan3d.export", ["RUN", "--out", "O", "--version", "abc"], "--version"),
    ("tfgan3d.tools.make_dataset", ["--domain", "mars", "--out", "O"], "--domain"),
    ("tfgan3d.tools.voxel_data", ["stats", "D", "--bogus"], "--bogus"),
    ("tfgan3d.tools.compare_runs", ["A", "B", "--bogus"], "--bogus"),
    ("tfgan3d.tools.demo", ["--bogus"], "--bogus"),
    ("tfgan3d.tools.bench", ["conv", "--iters", "x"], "--iters"),
    ("tfgan3d.tools.bench_fcr", ["--batch", "x"], "--batch"),
    ("tfgan3d.tools.page_check", ["P", "--width", "x"], "--width"),
    ("tfgan3d.tools.try_bad_inputs", ["--out", "O", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize("module, argv, words", FLAG_ERRORS,
                         ids=[f"{m.split('.')[-1]}-{a[0]}-{a[-1]}" for m, a, _ in FLAG_ERRORS])
def test_a_malformed_or_unknown_flag_is_one_line_and_exit_1(module, argv, words, capsys):
    """README: a bad flag value prints one `error:` line and exits 1 in every program (argparse
    alone prints a usage block and exits 2)."""
    import importlib
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert exit_info.value.code in (1, "error: " + err.strip()), (exit_info.value.code, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


def test_help_still_prints_the_usage_and_exits_0(capsys):
    from tfgan3d import export
    for main, argv in ((train.main, ["--mode", "pix2pix", "--help"]), (export.main, ["--help"])):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


# ---- issue 29: inputs accepted that should not be ---------------------------------------------

def _depth_as_npy(root, scale=1.0, far=None):
    """Replaces the train depth PNGs of a folder set by .npy metres times `scale`; `far`: that
    many pixels of each map set to 50 m instead."""
    meta = json.loads((root / "dataset.json").read_text())
    (root / "dataset.json").write_text(json.dumps(
        {k: v for k, v in meta.items() if k != "depth_encoding"}))
    for f in sorted((root / "train" / "depth").iterdir()):
        metres = np.asarray(Image.open(f), np.float32) * meta["depth_scale"]
        metres = metres * scale
        if far:
            metres.reshape(-1)[:far] = 50.0
        f.unlink()
        np.save(f.with_suffix(".npy"), metres)


def test_depth_in_the_wrong_unit_is_refused_naming_file_share_and_range(folder_set, tmp_path):
    """Metres x 1e6 in .npy files: every valid pixel beyond --max-depth (issue 29)."""
    root = copy_set(folder_set, tmp_path / "set")
    _depth_as_npy(root, scale=1e6)
    files = paired.discover_pairs(root, "train")
    with pytest.raises(DataError) as err:
        paired.validate_pairs(files)
    text = str(err.value)
    name = sorted((root / "train" / "depth").iterdir())[0].name
    assert "100% of the valid depth in 2 of 2 files lies beyond --max-depth 10 m" in text
    assert name in text and "e+06" in text, text


def test_a_notable_share_beyond_max_depth_warns(folder_set, tmp_path, capsys):
    root = copy_set(folder_set, tmp_path / "set")
    _depth_as_npy(root, far=40)                     # 40 of 256 pixels at 50 m: 16 %
    paired.validate_pairs(paired.discover_pairs(root, "train"))
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "16% of the valid depth in 2 of 2 files" in err
    _depth_as_npy(copy_set(folder_set, tmp_path / "ok"))
    paired.validate_pairs(paired.discover_pairs(tmp_path / "ok", "train"))
    assert capsys.readouterr().err == ""             # in range: not a word


def test_sim2real_simulated_depth_in_the_wrong_unit_is_refused(folder_set, tmp_path):
    root = copy_set(folder_set, tmp_path / "set")
    _depth_as_npy(root, scale=1e6)
    files = sim2real_data.discover_domain(root, "train", "sim")
    sim2real_data.validate_domain(files, None, "all", maps=("depth",))     # no max_depth given
    with pytest.raises(DataError, match=r"100% of the valid depth .* beyond --max-depth 10 m"
                                        r".*--sim-depth-scale"):
        sim2real_data.validate_domain(files, None, "all", maps=("depth",), max_depth=10.0,
                                      depth_flags=("--max-depth", "--sim-depth-scale"))


def test_many_failed_pairs_are_listed_five_and_counted(folder_set, tmp_path):
    """"8 of 8 pairs failed" listed every file; the first 5 and a count now."""
    root = copy_set(folder_set, tmp_path / "set")
    rgb = sorted((root / "train" / "rgb").iterdir())[0]
    depth = sorted((root / "train" / "depth").iterdir())[0]
    labels = sorted((root / "train" / "labels").iterdir())[0]
    for i in range(7):                               # 7 more pairs with a truncated RGB
        (rgb.parent / f"x{i}.png").write_bytes(rgb.read_bytes()[:60])
        (depth.parent / f"x{i}.png").write_bytes(depth.read_bytes())
        (labels.parent / f"x{i}.png").write_bytes(labels.read_bytes())
    rgb.write_bytes(rgb.read_bytes()[:60])
    files = paired.discover_pairs(root, "train")
    with pytest.raises(DataError) as err:
        paired.validate_pairs(files)
    lines = str(err.value).splitlines()
    assert lines[0].startswith("8 of 9 pairs"), lines[0]      # the second pair is sound
    assert len(lines) == 1 + 5 + 1 and lines[-1].strip() == "... and 3 more"


def test_unpaired_files_name_no_internal_argument(folder_set, tmp_path):
    root = copy_set(folder_set, tmp_path / "set")
    sorted((root / "train" / "depth").iterdir())[0].unlink()
    with pytest.raises(DataError) as err:
        paired.discover_pairs(root, "train")
    assert "without a depth file" in str(err.value) and "strict=False" not in str(err.value)


def _scenevox(root, scenes):
    for i, scene in enumerate(scenes):
        folder = root / "Scenevox" / f"s{i}"
        folder.mkdir(parents=True)
        np.save(folder / "m0.npy", np.asarray(scene, np.uint8))
    return root


def test_fcr_labels_beyond_num_classes_are_refused_naming_the_file(tmp_path, capsys):
    """fcr --num-classes 5 on labels up to 11 failed in the first batch with TensorFlow's graph
    context, naming the folder; now before the networks are built, naming the file, and no run
    folder is left (issue 29)."""
    scenes = np.zeros((6, 16, 16, 16), np.uint8)
    scenes[:, :, 0] = 1
    scenes[3, 2, 2, 2] = 11
    root = _scenevox(tmp_path / "vox", scenes)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--mode", "fcr_alphagan", "--preset", "tiny", "--data", str(root),
                    "--num-classes", "5", "--run-dir", str(tmp_path / "runs")])
    line = str(exit_info.value.code)
    assert line.startswith(f"error: {root / 'Scenevox' / 's3' / 'm0.npy'}: expected labels "
                           f"0..4 (--num-classes 5), found label 11"), line
    assert "function_node" not in line and "\n" not in line
    assert not list((tmp_path / "runs").iterdir())


def test_a_voxel_set_without_an_occupied_voxel_warns(tmp_path, capsys):
    from tfgan3d.data import voxel_files
    root = _scenevox(tmp_path / "vox", np.zeros((3, 8, 8, 8), np.uint8))
    voxel_files.make_voxel_dataset(root, split="all", batch_size=2)
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "holds no occupied voxel" in err, err
    root = _scenevox(tmp_path / "vox2", np.ones((3, 8, 8, 8), np.uint8))
    voxel_files.make_voxel_dataset(root, split="all", batch_size=2)
    assert "occupied" not in capsys.readouterr().err


def test_sim2real_batch_larger_than_the_data_is_refused_as_pix2pix_does(folder_set, tmp_path):
    """sim2real --batch-size 4 on 2 training images trained silently (issue 29)."""
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--mode", "sim2real", "--preset", "tiny", "--sim-data", str(folder_set),
                    "--real-data", str(folder_set), "--batch-size", "4", "--run-dir", str(runs),
                    "--stage1-steps", "1", "--stage2-steps", "0"])
    assert exit_info.value.code == ("error: --batch-size 4: expected at most the 2 training "
                                    "examples of the data set, found more")
    assert not list(runs.iterdir())


def test_messages_name_flags_not_internals(tmp_path):
    """Issue 29: no `source_real`, `{{function_node ...}}` or bare OSError on the error line."""
    import tensorflow as tf
    from tfgan3d import cli
    from tfgan3d.data.refine_data import make_refine_datasets
    with pytest.raises(DataError, match="--real-data: expected a folder of real images when "
                                        "--data is a folder"):
        make_refine_datasets(str(tmp_path), None, batch_size=2)
    graph = tf.errors.InvalidArgumentError(None, None, (
        "{{function_node __wrapped__IteratorGetNext_output_types_1_device_/job:localhost/"
        "replica:0/task:0/device:CPU:0}} assertion failed: [/d/s3/m0.npy: expected labels 0..4"
        " (--num-classes 5), found label] [11]\n\t [[{{node Assert/Assert}}]] "
        "[Op:IteratorGetNext] name: "))
    assert cli.one_line(graph) == ("[/d/s3/m0.npy: expected labels 0..4 (--num-classes 5), "
                                   "found label] [11]")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--mode", "pix2pix", "--preset", "tiny", "--run-dir", str(blocker / "runs")])
    assert exit_info.value.code == (f"error: --run-dir {blocker / 'runs'}: expected a folder "
                                    f"where run folders can be made, found a path it cannot "
                                    f"make (Not a directory: {blocker / 'runs'})")
