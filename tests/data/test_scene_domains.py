"""What each scene domain stands for: Regime V vs R content, and sim2real's appearance-only gap."""
import dataclasses

import numpy as np
import pytest

from tfgan3d.data import scenes

N = 30


def _specs(real, n=N, seed=0):
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1 if real else 0, i])
        out.append(scenes._sample_real_spec(rng) if real else scenes._sample_spec(rng, "virtual"))
    return out


def test_regime_r_is_cluttered_furniture_of_thin_parts_and_regime_v_is_a_few_primitives():
    virtual, real = _specs(False), _specs(True)
    n_v = [len(s.primitives) for s in virtual]
    n_r = [len(s.primitives) for s in real]
    assert max(n_v) <= 4 and min(n_v) >= 1
    assert np.median(n_r) >= 12  # tables have legs, shelves have books
    thin = lambda s: any(p.kind == "cylinder" and p.size[0] < 0.05 for p in s.primitives)
    assert np.mean([thin(s) for s in real]) > 0.5 and not any(thin(s) for s in virtual)
    # real-world materials: glossy and textured parts in R, none in V
    assert all(p.gloss == 0 and p.texture == "flat" for s in virtual for p in s.primitives)
    assert np.mean([any(p.gloss > 0 for p in s.primitives) for s in real]) > 0.5


def test_regime_r_has_several_coloured_lights_and_regime_v_one_white_light():
    virtual, real = _specs(False), _specs(True)
    assert all(s.extra_lights == [] and s.light_colour == (1.0, 1.0, 1.0) for s in virtual)
    assert np.mean([len(s.extra_lights) >= 1 for s in real]) > 0.6
    assert np.mean([np.ptp(s.light_colour) > 0.05 for s in real]) > 0.9  # warm or cool


def test_a_second_light_adds_light_and_its_own_shadow():
    box = scenes.Primitive("box", center=(3.0, 0.5, 4.0), size=(0.4, 0.5, 0.4))
    base = scenes.SceneSpec(room=(6.0, 3.0, 8.0), camera=scenes.Camera((3.0, 1.5, 0.5)),
                            primitives=[box], light_position=(3.0, 2.8, 2.0))
    two = dataclasses.replace(base, extra_lights=[((0.3, 1.5, 6.0), (0.8, 0.8, 1.0))])
    one_img, two_img = (scenes._render(s, 48, 64)["rgb"].astype(int) for s in (base, two))
    np.testing.assert_array_equal(scenes._render(base, 48, 64)["depth"],
                                  scenes._render(two, 48, 64)["depth"])
    assert (two_img >= one_img - 1).all() and (two_img - one_img).mean() > 5


def test_sim2real_domains_share_content_and_differ_in_appearance_only():
    rng = np.random.default_rng([0, 9, 3])
    spec = scenes._sample_real_spec(rng)
    engine = scenes._as_engine_render(spec)
    for a, b in zip(spec.primitives, engine.primitives):
        assert (a.kind, a.center, a.size, a.yaw, a.colour) == (b.kind, b.center, b.size, b.yaw,
                                                              b.colour)
    assert (spec.room, spec.camera) == (engine.room, engine.camera)
    sim = scenes._render(engine, 40, 56)
    real = scenes._render(spec, 40, 56, np.random.default_rng(1))
    np.testing.assert_array_equal(sim["depth"], real["depth"])      # same geometry
    np.testing.assert_array_equal(sim["labels"], real["labels"])
    assert np.abs(sim["rgb"].astype(int) - real["rgb"]).mean() > 10  # other rendering
    np.testing.assert_array_equal(sim["sensor_depth"], sim["depth"])  # exact depth in sim
    assert (real["sensor_depth"] == 0).mean() > 0.01                  # sensor holes in real


def test_sim2real_domains_are_unpaired_but_equally_distributed():
    sim = [scenes.render_scene(i, "rooms-sim", 24, 32) for i in range(N)]
    real = [scenes.render_scene(i, "rooms-real", 24, 32) for i in range(N)]
    assert not any(np.array_equal(s["depth"], r["depth"]) for s, r in zip(sim, real))
    # one content distribution: the class frequencies and depth statistics agree
    for stat in (lambda r: np.bincount(r["labels"].ravel(), minlength=6) / r["labels"].size,
                 lambda r: np.array([r["depth"].mean()])):
        a, b = np.mean([stat(r) for r in sim], 0), np.mean([stat(r) for r in real], 0)
        assert np.abs(a - b).max() < 0.1 * max(1.0, np.abs(a).max())


@pytest.mark.parametrize("domain", scenes.SIM2REAL_DOMAINS)
def test_sim2real_domains_are_built_in_sets(domain):
    from tfgan3d.data import builtin

    assert builtin.BUILTIN_SETS[domain] == domain
