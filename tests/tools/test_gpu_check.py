"""tools/gpu_check without a GPU: it says so, runs the CPU sanity pass (tiny preset, float32
and mixed precision) and exits 0 with a row per precision: step time, examples/s and the
train step's FLOP count."""
import json

from tfgan3d.tools import gpu_check


def test_without_a_gpu_runs_the_cpu_sanity_pass(tmp_path, capsys):
    import keras
    # Two timed steps after one untimed: the rows' arithmetic, not the speed, is checked.
    assert gpu_check.main(["--modes", "pix2pix", "--steps", "2", "--warmup", "1",
                           "--json", str(tmp_path / "rows.json"),
                           "--run-dir", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out
    assert "no GPU found" in printed and "| pix2pix | mixed |" in printed
    result = json.loads((tmp_path / "rows.json").read_text())
    assert result["device"].startswith("CPU sanity pass") and result["peak_tflops"] is None
    rows = {r["precision"]: r for r in result["rows"]}
    assert sorted(rows) == ["float32", "mixed"]
    for row in rows.values():
        assert row["batch"] == 2 and row["step_ms"] > 0
        assert abs(row["examples_per_s"] - 2000 / row["step_ms"]) < 1e-6 * row["examples_per_s"]
        assert row["gflop_per_step"] > 0
    # The count is of the same graph whatever the precision.
    assert abs(rows["mixed"]["gflop_per_step"] / rows["float32"]["gflop_per_step"] - 1) < 0.05
    assert keras.mixed_precision.global_policy().name == "float32"
    assert gpu_check.peak_of("NVIDIA H100 80GB HBM3") == gpu_check.PEAKS["H100"]
    assert gpu_check.peak_of("NVIDIA H100 PCIe") == gpu_check.PEAKS["H100 PCIe"]
    assert gpu_check.peak_of("Some Card") is None
