"""results.py reads runs.csv and results.csv for every module: the header a resume checks (a
truncated or binary file is refused in one line before anything runs) and the divergence a resumed
sweep carries on, on hand-written files."""

import numpy as np
import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse.fields import ConfigError
from purejaxsparse.results import read_header
from purejaxsparse.results import SWEEP_FILES
from purejaxsparse.store import SweepDir

RESULTS_HEADER = "run,env,agent,method,sparsity,seed,step,eval_return,actual_sparsity,active_params,dormant_frac,finite,diverged_step"


@pytest.mark.parametrize("data, header", [
    (b"run,env,step\n0,a,200\n", ["run", "env", "step"]),
    (b"run,env,step\r\n0,a,200\r\n", ["run", "env", "step"]),
    (b'run,"a,b",step', ["run", "a,b", "step"]),  # no newline yet: the line so far
    (b"run,en", ["run", "en"]),  # cut short while written
    (b"", []),
    (bytes(range(128, 256)), []),  # not text
])
def test_read_header(tmp_path, data, header):
    (tmp_path / "t.csv").write_bytes(data)
    assert read_header(tmp_path / "t.csv") == header


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A sweep directory written by hand: config.yaml, runs.csv (3 runs), results.csv (header)."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "config.yaml").write_text(yaml.safe_dump(tiny_sweep_config(sweep={"seed": 1, "method": ["dense"]})))
    (d / "runs.csv").write_text("run,env,agent,method,sparsity,seed\n0,CartPole-v1,dqn,dense,0.0,0\n")
    (d / "results.csv").write_text(RESULTS_HEADER + "\n")
    return d


@pytest.mark.parametrize("name, text, says", [
    ("results.csv", RESULTS_HEADER[:30], "results.csv does not start with the header this sweep writes"),
    ("results.csv", "", "results.csv does not start with the header"),
    ("runs.csv", "", "runs.csv does not start with a header of runs"),
    ("runs.csv", "ru", "runs.csv does not start with a header of runs"),
])
def test_resume_refuses_a_truncated_header(sweep_dir, tmp_path, name, text, says):
    for f in SWEEP_FILES:
        (tmp_path / f).write_bytes((sweep_dir / f).read_bytes())
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=says):
        SweepDir(tmp_path).plan("resume", needs=SWEEP_FILES)


def test_resume_accepts_whole_headers_and_a_partial_row(sweep_dir, tmp_path):
    for f in SWEEP_FILES:
        (tmp_path / f).write_bytes((sweep_dir / f).read_bytes())
    with open(tmp_path / "results.csv", "a") as f:
        f.write("0,CartPole-v1,dqn,dense,0.0,0,200,9.5,0.0,1")  # a row cut short by a kill
    assert SweepDir(tmp_path).plan("resume", needs=SWEEP_FILES).num_runs == 1


def _row(run, step, finite):
    return f"{run},CartPole-v1,dqn,dense,0.0,{run},{step},1.5,0.0,100,0.0,{finite},{step if finite == 'False' else -1}\n"


def test_recorded_divergence(tmp_path):
    """Per run, the first evaluation step results.csv flags as not finite; -1 for a run never flagged,
    a run index outside the sweep and a malformed row ignored."""
    path = tmp_path / "results.csv"
    path.write_text(RESULTS_HEADER + "\n")
    assert SweepDir(tmp_path).recorded_divergence(3).tolist() == [-1, -1, -1]  # no row yet
    path.write_text(RESULTS_HEADER + "\n" + _row(0, 200, "True") + _row(1, 200, "True") + _row(0, 400, "False")
                    + _row(1, 400, "True") + _row(5, 200, "False") + "x,y\n" + _row(0, 600, "False")
                    + _row(2, 600, "False"))
    np.testing.assert_array_equal(SweepDir(tmp_path).recorded_divergence(3), [400, -1, 600])
