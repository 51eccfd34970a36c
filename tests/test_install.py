"""`pip install` of the wheel into a clean virtualenv, as a cluster image or bootstrap action does it: the
package imports, fastText trains and predicts, lid.176 is there, and the CLI starts. No re-install step."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO_ROOT

CHECK = """
import fasttext
from udfs import classifier, fasttext_models
import jobs.cli, jobs.runner, jobs.core.tables

fasttext_models.require_training_build()
lines = [f"__label__{'good' if i % 2 else 'bad'} " + ("study method result analysis" if i % 2 else
         "buy cheap click now") + f" w{i % 7}" for i in range(400)]
model, params = classifier.fit(lines, classifier.FastTextParams(epoch=5, min_count=1))
labels, _ = model.predict("analysis of the study method")
assert labels[0] == "__label__good", labels
lid = fasttext_models.read_model(fasttext_models.packaged_lid_model())
assert lid.predict("the weather is lovely today and we walk to the park")[0][0] == "__label__en"
print("install ok", fasttext.__file__)
"""


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_virtualenv_and_trains_and_predicts(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(REPO_ROOT)], check=True, timeout=600)
    (wheel,) = wheels.glob("curate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jobs/core/log4j2.properties" in names and "jobs/run.py" in names and "udfs/minhash.py" in names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", str(wheel)], capture_output=True,
                               text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    checked = subprocess.run([python, "-c", CHECK], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path)  # not the checkout: the installed package only
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "install ok" in checked.stdout and str(venv) in checked.stdout
    started = subprocess.run([str(venv / "bin" / "curate"), "--help"], capture_output=True, text=True,
                             timeout=120)
    assert started.returncode == 0 and "run" in started.stdout
