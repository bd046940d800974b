"""`purejaxsparse merge`: sweeps of one study (one directory per seed or env) as one report."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from purejaxsparse.analysis import report
from purejaxsparse.cli import main
from purejaxsparse.merge import merge_sweeps

RUNS_HEADER = "run,env,agent,method,sparsity,seed,use_bias,total_params,active_params\n"
RESULTS_HEADER = "run,env,agent,method,sparsity,seed,step,eval_return,active_params,finite\n"


def sweep_dir(d: Path, env: str, seed: int, total_steps: int = 200, sparsity: float = 0.9) -> Path:
    """A finished two-run sweep (dense and RigL at `sparsity`) of one seed, written by hand."""
    d.mkdir(parents=True)
    config = {"name": f"study-{seed}", "agent": "dqn", "env": env, "total_steps": total_steps, "eval_every": 100,
              "eval_episodes": 5, "sweep": {"seed": [seed], "method": ["dense", "rigl"], "sparsity": [sparsity]}}
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    (d / "runs.csv").write_text(RUNS_HEADER + f"0,{env},dqn,dense,0.0,{seed},True,1000,1000\n"
                                              f"1,{env},dqn,rigl,{sparsity},{seed},True,1000,100\n")
    rows = "".join(f"{run},{env},dqn,{m},{s},{seed},{step},{-200 + 10 * seed + run + step / 1000:.7f},{n},True\n"
                   for run, m, s, n in ((0, "dense", "0.0", 1000), (1, "rigl", str(sparsity), 100)) for step in (100, 200))
    (d / "results.csv").write_text(RESULTS_HEADER + rows + "1,Acro")  # a partial last line (a write in progress)
    return d


def test_merge_renumbers_runs_and_copies_every_value(tmp_path):
    a, b = sweep_dir(tmp_path / "s0", "Acrobot-v1", 0), sweep_dir(tmp_path / "s1", "Acrobot-v1", 1)
    logged = yaml.safe_load((b / "config.yaml").read_text())  # logged live: no result differs
    (b / "config.yaml").write_text(yaml.safe_dump({**logged, "logging": {"tensorboard": True}}))
    merged = merge_sweeps(tmp_path / "m", [a, b])
    runs = (tmp_path / "m" / "runs.csv").read_text().splitlines()
    assert runs[0] + "\n" == RUNS_HEADER
    assert runs[1:] == ["0,Acrobot-v1,dqn,dense,0.0,0,True,1000,1000", "1,Acrobot-v1,dqn,rigl,0.9,0,True,1000,100",
                        "2,Acrobot-v1,dqn,dense,0.0,1,True,1000,1000", "3,Acrobot-v1,dqn,rigl,0.9,1,True,1000,100"]
    results = (tmp_path / "m" / "results.csv").read_text().splitlines()
    assert len(results) == 1 + 8 and "1,Acro" not in results[-1]
    # b's run 1 is run 3 now, its values copied as written (7 decimals kept)
    assert "3,Acrobot-v1,dqn,rigl,0.9,1,200,-188.8000000,100,True" in results
    config = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())
    assert config == merged and config["sweep"]["seed"] == [0, 1] and config["env"] == "Acrobot-v1"
    assert config["merged_from"] == [str(a), str(b)] and config["total_steps"] == 200 and "logging" not in config
    summary = pd.read_csv(Path(report.write_report(tmp_path / "m", reps=50)).parent / "summary.csv")
    assert summary.set_index("method")["n_scored"].to_dict() == {"dense": 2, "rigl": 2}


def test_merged_config_sweeps_every_value_of_its_sources(tmp_path):
    """Sources at other sparsities (and a method only one of them ran): the merged config's sweep
    lists every value, so the report's "Swept:" line says what the runs hold."""
    a = sweep_dir(tmp_path / "s90", "Acrobot-v1", 0, sparsity=0.9)
    b = sweep_dir(tmp_path / "s98", "Acrobot-v1", 1, sparsity=0.98)
    c = sweep_dir(tmp_path / "s80", "Acrobot-v1", 2, sparsity=0.8)
    cfg = yaml.safe_load((c / "config.yaml").read_text())
    cfg["sweep"]["method"] = ["rigl", "dense", "set"]  # a source that swept one more method
    (c / "config.yaml").write_text(yaml.safe_dump(cfg))
    merged = merge_sweeps(tmp_path / "m", [a, b, c])
    assert merged["sweep"] == {"seed": [0, 1, 2], "method": ["dense", "rigl", "set"], "sparsity": [0.8, 0.9, 0.98]}


def test_merge_of_envs_reports_one_panel_each(tmp_path):
    dirs = [sweep_dir(tmp_path / env, env, 0) for env in ("Acrobot-v1", "MountainCar-v0", "CartPole-v1")]
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs)]) == 0
    assert yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())["env"] == [
        "Acrobot-v1", "MountainCar-v0", "CartPole-v1"]
    report.write_report(tmp_path / "m", reps=50)
    summary = pd.read_csv(tmp_path / "m" / "report" / "summary.csv")
    assert sorted(summary["env"].unique()) == ["Acrobot-v1", "CartPole-v1", "MountainCar-v0"]
    for png in ("score_vs_sparsity.png", "score_vs_params.png", "learning_curves.png"):
        assert (tmp_path / "m" / "report" / png).stat().st_size > 1000


def with_width(d: Path, width: float, hidden=(64, 64)) -> Path:
    """A sweep_dir whose network is `width` times wider: agent_config and runs.csv's width column."""
    config = yaml.safe_load((d / "config.yaml").read_text())
    (d / "config.yaml").write_text(yaml.safe_dump({**config, "agent_config": {"hidden": list(hidden), "width": width}}))
    lines = (d / "runs.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines]
    (d / "runs.csv").write_text("".join(",".join(r[:-2] + [w] + r[-2:]) + "\n" for r, w in
                                        zip(rows, ["width"] + [f"{width}"] * (len(rows) - 1))))
    return d


def test_merge_of_widths_groups_each_width(tmp_path):
    narrow = with_width(sweep_dir(tmp_path / "x1", "Acrobot-v1", 0), 1.0)
    wide = [with_width(sweep_dir(tmp_path / f"x3s{seed}", "Acrobot-v1", seed), 3.0) for seed in (0, 1)]
    merged = merge_sweeps(tmp_path / "m", [narrow, *wide])
    assert merged["agent_config"] == {"hidden": [64, 64], "width": [1.0, 3.0]}
    runs = pd.read_csv(tmp_path / "m" / "runs.csv")
    assert runs[["method", "seed", "width"]].values.tolist() == [
        ["dense", 0, 1.0], ["rigl", 0, 1.0], ["dense", 0, 3.0], ["rigl", 0, 3.0], ["dense", 1, 3.0], ["rigl", 1, 3.0]]
    summary = pd.read_csv(Path(report.write_report(tmp_path / "m", reps=50)).parent / "summary.csv")
    assert sorted(zip(summary["method"], summary["width"], summary["n_scored"])) == [
        ("dense", 1.0, 1), ("dense", 3.0, 2), ("rigl", 1.0, 1), ("rigl", 3.0, 2)]
    # another network than a wider one is another study
    other = with_width(sweep_dir(tmp_path / "h", "Acrobot-v1", 2), 1.0, hidden=(32, 32))
    with pytest.raises(ValueError, match="in 'agent_config'"):
        merge_sweeps(tmp_path / "m2", [narrow, other])


@pytest.mark.parametrize("case, message", [
    ("other total_steps", "differs from .* in 'total_steps'"),
    ("same seed twice", "run 0 of .*s0b .*seed 0.* is also in"),
    ("one source", "at least two"),
    ("output not empty", "is not empty"),
    ("not a sweep", "config.yaml not found"),
])
def test_merge_refuses_what_is_not_one_study(tmp_path, capsys, case, message):
    a = sweep_dir(tmp_path / "s0", "Acrobot-v1", 0)
    other = {"other total_steps": lambda: sweep_dir(tmp_path / "s1", "Acrobot-v1", 1, total_steps=400),
             "same seed twice": lambda: sweep_dir(tmp_path / "s0b", "Acrobot-v1", 0),
             "not a sweep": lambda: (tmp_path / "empty").mkdir() or tmp_path / "empty"}.get(case)
    sources = [a] if case == "one source" else [a, other() if other else sweep_dir(tmp_path / "s1", "Acrobot-v1", 1)]
    out = tmp_path / "m"
    if case == "output not empty":
        out.mkdir()
        (out / "x").write_text("")
    assert main(["merge", str(out), *map(str, sources)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    import re
    assert re.search(message, err), err
    assert not (out / "runs.csv").exists()


def test_a_sweep_from_before_a_setting_existed_merges_with_its_default(tmp_path, capsys):
    """A source whose runs.csv and config lack a setting the others have (written before it
    existed) merges only with defaults: its runs take the setting's default, written as runs.csv
    writes it, and the merged config says which source was filled. The CLI takes the defaults
    from the agent's own declarations (DQN: skip_gradient False, width 1.0)."""
    old, new = sweep_dir(tmp_path / "old", "Acrobot-v1", 0), sweep_dir(tmp_path / "new", "Acrobot-v1", 1)
    runs = (new / "runs.csv").read_text().splitlines()
    (new / "runs.csv").write_text("\n".join([runs[0].replace("use_bias,", "use_bias,skip_gradient,width,")]
                                            + [r.replace(",True,1000,", ",True,False,1.0,1000,") for r in runs[1:]]) + "\n")
    config = yaml.safe_load((new / "config.yaml").read_text())
    (new / "config.yaml").write_text(yaml.safe_dump({**config, "hparams": {"skip_gradient": False},
                                                     "agent_config": {"width": 1.0}}))
    with pytest.raises(ValueError, match="differs from"):
        merge_sweeps(tmp_path / "refused", [new, old])
    merged = merge_sweeps(tmp_path / "m", [new, old], defaults={"skip_gradient": False, "width": 1.0, "gamma": 0.99})
    assert merged["filled"] == {str(old): ["skip_gradient", "width"]}
    assert merged["hparams"] == {"skip_gradient": False} and merged["agent_config"] == {"width": 1.0}
    rows = (tmp_path / "m" / "runs.csv").read_text().splitlines()
    assert rows[0] == "run,env,agent,method,sparsity,seed,use_bias,skip_gradient,width,total_params,active_params"
    assert rows[3:] == ["2,Acrobot-v1,dqn,dense,0.0,0,True,False,1.0,1000,1000",
                        "3,Acrobot-v1,dqn,rigl,0.9,0,True,False,1.0,1000,100"]
    assert main(["merge", str(tmp_path / "cli"), str(new), str(old)]) == 0
    assert f"merge: {old} predates skip_gradient, width; its runs take the default(s)" in capsys.readouterr().out
    assert (tmp_path / "cli" / "runs.csv").read_text() == (tmp_path / "m" / "runs.csv").read_text()
