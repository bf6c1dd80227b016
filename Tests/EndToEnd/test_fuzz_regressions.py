"""Every saved fuzz input (seeds and past crashes) replays cleanly through each target's
replayer: the fuzzed code paths, in a normal debug build with its runtime checks."""
import glob
import os
import subprocess

import pytest

from conftest import ROOT

TARGETS = ["FuzzALS", "FuzzHTTP1", "FuzzTapQuery", "FuzzHTTP2", "FuzzNotice", "FuzzOTLP", "FuzzCapture"]


@pytest.mark.parametrize("target", TARGETS)
def test_saved_inputs_replay(target):
    binary = os.path.join(os.path.dirname(os.environ.get("ALSTAP_BIN", os.path.join(ROOT, ".build", "debug", "x"))),
                          target)
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing; build with `swift build --build-tests`", pytrace=False)
    inputs = sorted(glob.glob(os.path.join(ROOT, "Tests", "Fuzz", "corpus", target, "*"))
                    + glob.glob(os.path.join(ROOT, "Tests", "Fuzz", "regressions", target, "*")))
    inputs = [i for i in inputs if os.path.isfile(i)]
    assert inputs, "every target has seeds"
    result = subprocess.run([binary, *inputs], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"replayed {len(inputs)} inputs" in result.stdout
