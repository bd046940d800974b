"""Bad input: one line naming the field, exit code 2, no traceback, no output directory."""

import pytest
import yaml

from conftest import tiny_sweep_config
from purejaxsparse.cli import main

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once


def run_cli(tmp_path, capsys, config=None, overrides=(), raw=None, out_name="out"):
    path = tmp_path / "c.yaml"
    if raw is not None:
        path.write_text(raw)
    elif config is not None:
        path.write_text(yaml.safe_dump(config))
    out = tmp_path / out_name
    code = main(["run", str(path), "--out", str(out), "--no-progress", *overrides])
    err = capsys.readouterr().err.strip()
    return code, err, out


BAD = [
    ({"colour": "red"}, (), "colour"),
    ({"agent": "ddpg"}, (), "agent"),
    ({"env": "Pong-v99"}, (), "env"),
    ({"env": {"name": "CartPole-v1", "gravity_x": 3}}, (), "env"),
    ({}, ("sweep.method=[dense,lottery]",), "sweep.method"),
    ({}, ("sweep.sparsity=[0.5,1.0]",), "sweep.sparsity"),
    ({}, ("hparams.sparsity=-0.1",), "hparams.sparsity"),
    ({"total_steps": 0}, (), "total_steps"),
    ({"total_steps": -5}, (), "total_steps"),
    ({"eval_every": 350}, (), "eval_every"),
    ({"eval_every": 5000}, (), "eval_every"),
    ({"eval_episodes": "ten"}, (), "eval_episodes"),
    ({}, ("total_steps=abc",), "total_steps"),
    ({}, ("agent_config.hidden=[16,x]",), "agent_config.hidden"),
    ({}, ("agent_config.batch_size=0",), "agent_config.batch_size"),
    ({}, ("sweep.batch_size=[16,32]",), "sweep.batch_size"),
    ({}, ("sweep.seed=0",), "sweep.seed"),
    ({}, ("hparams.use_bias=maybe",), "hparams.use_bias"),
    ({}, ("method_defaults.prune.start=5000",), "prune"),
    ({}, ("chunk_evals=4",), "chunk_evals"),
    ({}, ("sweep.learning_rate=[]",), "sweep.learning_rate"),
    ({}, ("not_an_override",), "override"),
]


@pytest.mark.parametrize("change, overrides, field", BAD)
def test_bad_config_values(tmp_path, capsys, change, overrides, field):
    config = tiny_sweep_config(**change)
    code, err, out = run_cli(tmp_path, capsys, config, overrides)
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert field in err and "allowed" in err or field in err and "must" in err, err
    assert not out.exists()


def test_malformed_yaml_and_missing_file(tmp_path, capsys):
    code, err, out = run_cli(tmp_path, capsys, raw="agent: dqn\nenv: [CartPole\n")
    assert code == 2 and "malformed YAML" in err and len(err.splitlines()) == 1 and not out.exists()
    code, err, out = run_cli(tmp_path, capsys, raw="- just\n- a list\n")
    assert code == 2 and "mapping" in err and not out.exists()
    code = main(["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no such file" in err and not (tmp_path / "o2").exists()


def test_existing_output_directory_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, err, _ = run_cli(tmp_path, capsys, tiny_sweep_config())
    assert code == 2 and "not empty" in err
    assert (out / "keep.txt").read_text() == "precious" and len(list(out.iterdir())) == 1


def test_resume_of_a_non_sweep_directory(tmp_path, capsys):
    code = main(["resume", str(tmp_path)])
    assert code == 2 and "not a sweep directory" in capsys.readouterr().err


def test_make_hparams_checks_the_pruning_schedule():
    import purejaxsparse as pjs
    config = tiny_sweep_config()
    with pytest.raises(pjs.ConfigError, match="prune: start"):
        pjs.make_hparams({**config, "method_defaults": {}}, method="prune", end=1000)  # agent default start 20k
    hp = pjs.make_hparams(config, method="prune")  # the config's own prune start (200) is below end
    assert int(hp.start) == 200


def test_run_and_resume_end_with_the_report(tmp_path, capsys):
    """A completed sweep prints its summary (with the diverged-run count) and writes its report;
    --no-report leaves it out; resuming a complete sweep writes it too."""
    path, out = tmp_path / "c.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(tiny_sweep_config(sweep={"seed": 1, "method": ["dense", "rigl"]})))
    index = out / "report" / "index.html"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"report:  {index}" and index.is_file()
    assert "src='learning_curves.png'" in index.read_text()
    assert any(line.startswith("diverged runs: ") for line in printed)
    for png in (out / "report").glob("*"):
        png.unlink()
    assert main(["resume", str(out), "--no-progress", "--no-report"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report:  purejaxsparse report {out}"
    assert not index.exists()
    assert main(["resume", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"report:  {index}" and index.is_file()
