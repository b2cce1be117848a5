"""Issue 28: the sim2real recipe options (stage-2 anchor, eq 14 variants, mean alignment, aux
decoders on means, fixed-variance encoders) and the collapse probe. `--recipe paper` must be
today's step exactly."""
import numpy as np
import pytest
import tensorflow as tf

from tests.models.test_sim2real_model import make_model, reach, tensors, toy_batch
from tfgan3d.models.sim2real import RECIPES, recipe_options

# One stage-1 then one stage-2 train_on_batch of make_model() on tensors(toy_batch(2)), logs and
# the sum of |weights| of each network after each step, recorded with the code of commit
# e8b919264faebf9b1452f79377e36c495ac8bdd4 (before the recipe options existed).
PAPER_REFERENCE = {
    "stage1": {"cycle_real_loss": 0.3012290596961975, "cycle_sim_loss": 0.5460073351860046,
               "kl_real_loss": 0.5110576152801514, "kl_sim_loss": 0.5093880891799927,
               "mmd_real_loss": 0.8511747121810913, "mmd_sim_loss": 0.8936951160430908,
               "rec_real_loss": 0.1303686946630478, "rec_sim_loss": 0.377655029296875,
               "stage1_loss": 4.120575904846191},
    "weights1": {"encoder_sim": 4946.6823686120915, "encoder_real": 4942.901000121492,
                 "decoder_sim": 350.72355419854284, "decoder_real": 349.8578274109459,
                 "depth_decoder": 336.87030013608774, "seg_decoder": 347.83259999474575},
    "stage2": {"depth_sim_loss": 0.24525713920593262, "depth_trans_loss": 0.24388480186462402,
               "kl_sim_loss": 0.5106135010719299, "kl_trans_loss": 0.5089912414550781,
               "mmd_r2s_loss": 0.9833387136459351, "mmd_s2r_loss": 0.9629849195480347,
               "rec_sim_loss": 0.35872888565063477, "rec_trans_loss": 0.0003617103211581707,
               "seg_sim_acc": 0.34705883264541626, "seg_sim_loss": 1.0985649824142456,
               "seg_trans_loss": 1.1003221273422241, "stage2_loss": 6.01304817199707},
    "weights2": {"encoder_sim": 4966.297795315702, "encoder_real": 4963.09534972527,
                 "decoder_sim": 350.72355419854284, "decoder_real": 349.8578274109459,
                 "depth_decoder": 337.52451986235974, "seg_decoder": 348.7652762423022},
}
NETS = ("encoder_sim", "encoder_real", "decoder_sim", "decoder_real", "depth_decoder",
        "seg_decoder")


def weight_sums(model):
    return {n: float(sum(np.sum(np.abs(v.numpy()).astype(np.float64))
                         for v in getattr(model, n).weights)) for n in NETS}


def test_the_paper_recipe_is_the_step_of_before_the_options():
    model = make_model(**recipe_options("paper"))
    batch = tensors(toy_batch(2))
    for stage in (1, 2):
        model.set_stage(stage)
        logs = model.train_on_batch(batch, return_dict=True)
        ref = PAPER_REFERENCE[f"stage{stage}"]
        assert set(logs) == set(ref)
        for key, value in ref.items():
            assert float(logs[key]) == pytest.approx(value, rel=2e-5, abs=1e-7), key
        for key, value in weight_sums(model).items():
            assert value == pytest.approx(PAPER_REFERENCE[f"weights{stage}"][key],
                                          rel=1e-6), key


E_S_ONLY = {"E_S"}
SIM_TO_REAL = {"E_S", "G_R", "E_R"}


def test_which_networks_each_stage2_term_reaches_under_each_recipe():
    batch = tensors(toy_batch(2))
    paper = reach(make_model(**recipe_options("paper")), 2, batch)
    # the paper: E_R sees real images only through eq 14 (and, on translations, eqs 11, 13)
    assert paper["mmd_r2s_loss"] == {"E_R", "G_S", "E_S"}
    assert paper["depth_sim_loss"] == {"E_S", "D_depth"}
    assert "rec_real_loss" not in paper and "mmd_align_loss" not in paper
    transfer_options = recipe_options("transfer")
    got = reach(make_model(**transfer_options), 2, batch)
    # anchor: stage 1's real-image terms on E_R (G_R is frozen in stage 2 but carries the
    # gradient of the reconstruction to E_R; its own weights do not move)
    assert got["kl_real_loss"] == {"E_R"}
    assert got["rec_real_loss"] == {"E_R", "G_R"}
    assert got["mmd_real_loss"] == {"E_R"}
    # eq 14 on means: the same networks as the paper's
    assert got["mmd_r2s_loss"] == {"E_R", "G_S", "E_S"}
    # the mean alignment pulls both encoders
    assert got["mmd_align_loss"] == {"E_S", "E_R"}
    # aux decoders on means: the same networks as on samples
    assert got["depth_sim_loss"] == {"E_S", "D_depth"}
    assert got["depth_trans_loss"] == SIM_TO_REAL | {"D_depth"}
    off = reach(make_model(**recipe_options("paper", eq14="off")), 2, batch)
    assert off["mmd_r2s_loss"] == set()


def test_recipe_options_change_the_terms_as_documented():
    batch = tensors(toy_batch(2))
    sim, real = batch["sim"], batch["real"]
    args = (sim["image"], real["image"], sim["depth"], sim["depth_valid"], sim["labels"])
    model = make_model(**recipe_options("paper", eq14="unbiased_means", aux_input="mean",
                                        stage2_real="anchor", align_means="stage2"))
    total, terms = model.stage2_losses(*args)
    parts = ["kl_sim_loss", "kl_trans_loss", "rec_sim_loss", "rec_trans_loss", "mmd_s2r_loss",
             "mmd_r2s_loss", "depth_sim_loss", "depth_trans_loss", "seg_sim_loss",
             "seg_trans_loss", "mmd_align_loss", "kl_real_loss", "rec_real_loss",
             "mmd_real_loss"]
    assert float(total) == pytest.approx(sum(float(terms[k]) for k in parts), rel=1e-5)
    # aux_input mean: the depth of z_S's mean, which draws no noise: a second model with the
    # same weights gives the same depth term whatever its random stream did before
    twin = make_model(**recipe_options("paper", aux_input="mean"))
    twin.encode(twin.encoder_sim, sim["image"], False)          # moves the random stream
    _, terms2 = twin.stage2_losses(*args)
    assert float(terms2["depth_sim_loss"]) == pytest.approx(float(terms["depth_sim_loss"]),
                                                             rel=1e-6)
    # eq 14 unbiased on means equals the estimator on E_S(G_S(z_R)) and E_R(x_R) means
    off = make_model(**recipe_options("paper", eq14="off"))
    _, terms3 = off.stage2_losses(*args)
    assert float(terms3["mmd_r2s_loss"]) == 0.0
    # fixed variance: the KL is |mean|^2 / 2 per unit
    fixed = make_model(encoder_variance="fixed")
    _, terms4 = fixed.stage1_losses(sim["image"], real["image"])
    mean = fixed.encoder_sim(sim["image"], training=True)[0]
    assert float(terms4["kl_sim_loss"]) == pytest.approx(
        float(tf.reduce_mean(tf.square(mean))) / 2, rel=1e-4)
    with pytest.raises(ValueError, match="eq14: expected one of paper, unbiased_means, off"):
        recipe_options("paper", eq14="yes")
    with pytest.raises(ValueError, match="recipe: expected one of paper, transfer"):
        recipe_options("unit")
    assert set(RECIPES) == {"paper", "transfer"}


def test_probe_measures_the_real_codes_and_the_alarm_fires_once_on_a_collapse():
    """A worked probe: E_R's spread, sigma and reconstruction on the fixed batch match a
    direct computation; in stage 2 an alarm fires once when the spread falls under the stated
    fraction of stage 1's, and stays quiet above it."""
    batch = tensors(toy_batch(4))
    images = batch["real"]["image"]
    model = make_model()
    got = {k: float(v) for k, v in model.probe(images).items()}
    mean, log_var = (np.asarray(a) for a in model.encoder_real(images, training=False))
    assert got["spread"] == pytest.approx(float(mean.reshape(4, -1).std(0).mean()), rel=1e-4)
    assert got["sigma"] == pytest.approx(float(np.exp(0.5 * log_var).mean()), rel=1e-4)
    model.set_probe(images, every=1, fraction=0.5, offset=10)
    model.set_stage(1)
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["collapse_alarm_step"] == 0
    assert model.probe_state["reference"] == pytest.approx(logs["probe_spread_real"])
    model.set_stage(2)
    model.set_probe(images, every=1, fraction=0.5, offset=11)
    model.set_probe_reference(1e-9)                  # quiet: any spread is above it
    model.train_on_batch(batch, return_dict=True)
    assert model.probe_state["collapse_alarm_step"] == 0
    model.set_probe_reference(1e6)                   # a collapse against this reference
    logs = model.train_on_batch(batch, return_dict=True)
    assert logs["collapse_alarm_step"] == 13         # stage-2 iteration 2 + offset 11
    model.train_on_batch(batch, return_dict=True)
    assert model.probe_state["collapse_alarm_step"] == 13   # once
