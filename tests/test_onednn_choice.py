"""The per-mode oneDNN choice: set before TensorFlow loads, by mode, never over the user's."""
import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
import tfgan3d
{action}
print(json.dumps({{"flag": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                   "tf_loaded": "tensorflow" in sys.modules}}))
"""


def probe(action: str, user_value=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_value
    out = subprocess.run([sys.executable, "-c", PROBE.format(action=action)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode,expected", [("pix2pix", "0"), ("fcr_alphagan", "1"),
                                           ("simgan", "1"), ("sim2real", "1")])
def test_mode_choice(mode, expected):
    assert probe(f"tfgan3d.prefer_onednn_for({mode!r})")["flag"] == expected


def test_import_alone_turns_it_on_and_user_value_wins():
    assert probe("")["flag"] == "1"
    assert probe("tfgan3d.prefer_onednn_for('pix2pix')", user_value="1")["flag"] == "1"
    assert probe("tfgan3d.prefer_onednn_for('fcr_alphagan')", user_value="0")["flag"] == "0"


def test_too_late_once_tensorflow_is_loaded():
    got = probe("import tensorflow\ntfgan3d.prefer_onednn_for('pix2pix')")
    assert got == {"flag": "1", "tf_loaded": True}


def test_training_command_chooses_before_tensorflow_loads():
    # parse_args imports the pix2pix trainer (and TensorFlow) after setting the flag.
    got = probe("from tfgan3d import train\ntrain.parse_args(['--mode', 'pix2pix'])")
    assert got == {"flag": "0", "tf_loaded": True}
