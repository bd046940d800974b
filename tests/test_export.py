"""Exported policies (export_writer.py writes, export.py runs with numpy alone).

- the file format against scipy's own CSR and a hand-written float64 forward pass;
- a trained run's exported policy takes the JAX evaluation policy's actions on 10,000
  observations recorded from its own env (DQN, SAC, PPO), through `purejaxsparse export`;
- bad input is one line (exit 2) and writes nothing;
- the loader runs in a subprocess where jax (and flax, optax, orbax) cannot be imported, as a
  copied standalone file too, and without scipy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.sparse

from purejaxsparse import cli
from purejaxsparse.store import SweepCheckpoints
from purejaxsparse.config import load_config, plan_sweep
from purejaxsparse.export import load_policy
from purejaxsparse.export_writer import PolicyArrays, policy_file_arrays, write_policy
from purejaxsparse.sweep import run_sweep

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

ROOT = Path(__file__).resolve().parents[1]
DQN = {"name": "exp_dqn", "agent": "dqn", "env": {"name": "CartPole-v1", "max_steps_in_episode": 100},
       "total_steps": 600, "eval_every": 200, "eval_episodes": 2, "chunk_evals": 1,
       "agent_config": {"hidden": [64, 64], "batch_size": 16, "buffer_size": 600, "learning_starts": 100},
       "hparams": {"sparsity": 0.9, "update_interval": 50, "end": 400},
       "sweep": {"seed": 1, "method": ["dense", "rigl"]}}
SAC = {"name": "exp_sac", "agent": "sac", "env": "Pendulum-v1", "total_steps": 400, "eval_every": 200,
       "eval_episodes": 1, "chunk_evals": 2,
       "agent_config": {"hidden": [64, 64], "batch_size": 16, "buffer_size": 400, "learning_starts": 100},
       "hparams": {"sparsity": 0.9, "update_interval": 50, "end": 300, "learning_rate": 1e-3},
       "sweep": {"seed": 1, "method": ["rigl"]}}
PPO = {"name": "exp_ppo", "agent": "ppo", "env": "Pendulum-v1", "total_steps": 512, "eval_every": 256,
       "eval_episodes": 1, "chunk_evals": 2,
       "agent_config": {"hidden": [64, 64], "num_envs": 4, "rollout_steps": 32, "minibatch_size": 32, "epochs": 2,
                        "normalize_obs": True},
       "hparams": {"sparsity": 0.9, "update_interval": 4, "end": 24},
       "sweep": {"seed": 1, "method": ["rigl"]}}


# -- the format, against independent computations ----------------------------------------------

def test_csr_layout_is_scipys_csr_of_the_transpose_and_the_threshold_picks_the_format():
    kernel = np.zeros((5, 4), np.float32)
    kernel[[0, 2, 4], [1, 3, 0]] = [1.5, -2.0, 3.0]          # density 3/20 = 0.15
    arrays, layers = policy_file_arrays(PolicyArrays((5,), [(kernel, np.arange(4, dtype=np.float32), None)],
                                                     {"kind": "argmax"}), csr_max_density=0.15)
    ref = scipy.sparse.csr_matrix(kernel.T)
    assert layers[0]["format"] == "csr" and layers[0]["nnz"] == 3 and layers[0]["density"] == 0.15
    np.testing.assert_array_equal(arrays["layer0_data"], ref.data)
    np.testing.assert_array_equal(arrays["layer0_indices"], ref.indices)
    np.testing.assert_array_equal(arrays["layer0_indptr"], ref.indptr)
    _, layers = policy_file_arrays(PolicyArrays((5,), [(kernel, np.zeros(4, np.float32), None)],
                                                {"kind": "argmax"}), csr_max_density=0.14)
    assert layers[0]["format"] == "dense"


def _hand_forward(x, layers, norm, head):
    """float64, written out: normalise, then each layer h = act(sum_i x_i W_ij + b_j), then the head."""
    x = np.asarray(x, np.float64)
    if norm is not None:
        x = np.clip((x - norm["mean"]) / np.sqrt(norm["var"] + norm["eps"]), -norm["clip"], norm["clip"])
    for kernel, bias, act in layers:
        x = np.einsum("bi,ij->bj", x, kernel.astype(np.float64)) + bias
        x = {"relu": lambda v: np.where(v > 0, v, 0.0), "tanh": np.tanh, None: lambda v: v}[act](x)
    if head["kind"] == "argmax":
        return x, np.argmax(x, -1)
    a = x[:, :head["outputs"]]
    return x, (head["center"] + head["half"] * np.tanh(a)) if head["kind"] == "squash" else a


@pytest.mark.parametrize("kind", ["squash", "identity", "argmax"])
def test_loader_computes_the_written_network(tmp_path, kind):
    rng = np.random.default_rng(1)
    shapes = [(6, 40), (40, 40), (40, 6)]
    layers = []
    for i, (a, b) in enumerate(shapes):
        k = (rng.normal(size=(a, b)) * (rng.random((a, b)) < (0.08 if i == 1 else 0.9))).astype(np.float32)
        layers.append((k, rng.normal(size=b).astype(np.float32), ("tanh", "relu", None)[i]))
    norm = {"mean": rng.normal(size=(2, 3)).astype(np.float32), "var": rng.random((2, 3)).astype(np.float32),
            "eps": 1e-3, "clip": 1.5}
    head = {"kind": kind, "outputs": 3, "center": np.float32([0.5, -1.0, 0.0]), "half": np.float32([2.0, 1.0, 0.5])}
    policy = PolicyArrays((2, 3), layers, {"kind": kind, "outputs": 3},
                          {"head_center": head["center"], "head_half": head["half"]},
                          {**norm, "mean": norm["mean"], "var": norm["var"]})
    meta = write_policy(tmp_path / "p.npz", policy, {"note": "hand"})
    assert [layer["format"] for layer in meta["layers"]] == ["dense", "csr", "dense"]
    act = load_policy(tmp_path / "p.npz")
    obs = rng.normal(size=(50, 2, 3)).astype(np.float32) * 2
    flat_norm = {**norm, "mean": norm["mean"].reshape(-1), "var": norm["var"].reshape(-1)}
    out, want = _hand_forward(obs.reshape(50, -1), layers, flat_norm, head)
    np.testing.assert_allclose(act.outputs(obs), out, atol=1e-5)
    np.testing.assert_allclose(act(obs), want, atol=1e-5)
    singles = np.stack([np.asarray(act(o)) for o in obs])      # one observation at a time
    np.testing.assert_allclose(singles, want, atol=1e-5)
    with pytest.raises(ValueError, match="observation shape"):
        act(np.zeros(6, np.float32))


@pytest.mark.parametrize("broken", [lambda *a: None, None])  # silently wrong (y stays the bias); missing
def test_a_broken_private_matvec_falls_back_to_scipys_public_product(tmp_path, monkeypatch, broken):
    from purejaxsparse import export
    rng = np.random.default_rng(2)
    kernel = (rng.normal(size=(30, 30)) * (rng.random((30, 30)) < 0.05)).astype(np.float32)
    policy = PolicyArrays((30,), [(kernel, np.ones(30, np.float32), None)], {"kind": "identity", "outputs": 30})
    write_policy(tmp_path / "p.npz", policy, {})
    monkeypatch.setattr(export, "_csr_matvec", broken)
    x = rng.normal(size=30).astype(np.float32)
    np.testing.assert_allclose(load_policy(tmp_path / "p.npz")(x), x @ kernel + 1.0, atol=1e-5)


# -- trained runs against the JAX evaluation policy ------------------------------------------

def _sweep(tmp_path_factory, config) -> Path:
    out = tmp_path_factory.mktemp(config["name"]) / "sweep"
    run_sweep(plan_sweep(load_config(config)), out, progress=False, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def dqn_sweep(tmp_path_factory):
    return _sweep(tmp_path_factory, DQN)


@pytest.fixture(scope="module")
def sac_sweep(tmp_path_factory):
    return _sweep(tmp_path_factory, SAC)


@pytest.fixture(scope="module")
def ppo_sweep(tmp_path_factory):
    return _sweep(tmp_path_factory, PPO)


def _restored(sweep: Path, run: int):
    """(agent, run's state, run's hparams) restored in full, as the sweep engine does on resume."""
    plan = plan_sweep(load_config(sweep / "config.yaml"))
    checkpoints = SweepCheckpoints(sweep / "checkpoints")
    shapes = jax.eval_shape(jax.vmap(plan.agent.init), plan.keys, plan.hparams)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype) if s.size == 0 else
                        jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), shapes)
    states = checkpoints.restore(checkpoints.latest(), like)
    checkpoints.close()
    pick = lambda t: jax.tree.map(lambda x: x[run], t)  # noqa: E731
    return plan.agent, pick(states), pick(plan.hparams)


def record(agent, state, hp, num_envs=100, steps=100, seed=0):
    """(observations [steps * num_envs, ...], the JAX evaluation policy's actions on them), from
    stepping the run's own env with that policy."""
    env = agent.eval_env.with_num_envs(num_envs)
    policy = agent.eval_policy(state, hp)

    def step(carry, key):
        env_state, obs = carry
        k_act, k_env = jax.random.split(key)
        action = policy(k_act, obs)
        env_state, next_obs, *_ = env.step(k_env, env_state, action)
        return (env_state, next_obs), (obs, action)

    k_reset, k_steps = jax.random.split(jax.random.PRNGKey(seed))
    _, (obs, actions) = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks))(env.reset(k_reset),
                                                                          jax.random.split(k_steps, steps))
    flat = lambda x: np.asarray(x).reshape(steps * num_envs, *x.shape[2:])  # noqa: E731
    return flat(obs), flat(actions)


def _export(sweep: Path, run: int, out: Path, capsys) -> dict:
    assert cli.main(["export", str(sweep), "--run", str(run), "--out", str(out)]) == 0
    assert f"exported run {run}" in capsys.readouterr().out
    return load_policy(out)


def test_dqn_export_takes_the_jax_greedy_actions(dqn_sweep, tmp_path, capsys):
    agent, state, hp = _restored(dqn_sweep, 1)
    obs, jax_actions = record(agent, state, hp)
    assert obs.shape == (10_000, 4) and len(np.unique(obs, axis=0)) > 9_000
    act = _export(dqn_sweep, 1, tmp_path / "dqn.npz", capsys)
    assert act.meta["method"] == "rigl" and act.meta["step"] == 600 and act.meta["env"] == "CartPole-v1"
    assert [layer["format"] for layer in act.meta["layers"]] == ["dense", "csr", "dense"]
    q = np.asarray(agent.q.apply(state.params, obs))
    top2 = np.sort(q, -1)
    near_tie = top2[:, -1] - top2[:, -2] < 1e-5 * np.maximum(1.0, np.abs(top2[:, -1]))
    for actions in (act(obs), np.array([act(o) for o in obs])):        # batch, one at a time
        assert np.all((actions == jax_actions) | near_tie), f"{np.sum(actions != jax_actions)} actions differ"
    assert near_tie.sum() <= 5
    np.testing.assert_allclose(act.outputs(obs), q, rtol=1e-5, atol=1e-5)


def test_sac_export_takes_the_jax_deterministic_action(sac_sweep, tmp_path, capsys):
    agent, state, hp = _restored(sac_sweep, 0)
    obs, jax_actions = record(agent, state, hp)
    assert obs.shape == (10_000, 3)
    act = _export(sac_sweep, 0, tmp_path / "sac.npz", capsys)
    assert act.meta["agent"] == "sac" and act.meta["head"] == {"kind": "squash", "outputs": 1}
    assert "csr" in [layer["format"] for layer in act.meta["layers"]]
    np.testing.assert_allclose(act(obs), jax_actions, atol=1e-5, rtol=0)
    singles = np.stack([act(o) for o in obs[:2000]])
    np.testing.assert_allclose(singles, jax_actions[:2000], atol=1e-5, rtol=0)
    assert np.abs(jax_actions).max() > 0.1  # Pendulum's box is [-2, 2]: the scaling is exercised


def test_ppo_export_normalises_and_takes_the_jax_squashed_mean(ppo_sweep, tmp_path, capsys):
    agent, state, hp = _restored(ppo_sweep, 0)
    assert agent.static.normalize_obs and agent.static.squash_mean
    obs, jax_actions = record(agent, state, hp)
    act = _export(ppo_sweep, 0, tmp_path / "ppo.npz", capsys)
    assert act.meta["agent"] == "ppo" and act.meta["head"] == {"kind": "squash", "outputs": 1}
    assert act.meta["normalize"] == {"eps": 1e-3, "clip": 5.0}
    stats = state.obs_stats
    assert np.abs(np.asarray(stats.mean)).max() > 0.1 and np.abs(np.asarray(stats.var) - 1).max() > 0.1
    np.testing.assert_allclose(act(obs), jax_actions, atol=1e-5, rtol=0)
    singles = np.stack([act(o) for o in obs[:2000]])
    np.testing.assert_allclose(singles, jax_actions[:2000], atol=1e-5, rtol=0)
    assert np.abs(jax_actions).max() > 0.1


# -- bad input ----------------------------------------------------------------------------------

def _one_line_error(argv, capsys, match: str):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_input_is_one_line_and_writes_nothing(dqn_sweep, tmp_path, capsys):
    out = tmp_path / "p.npz"
    _one_line_error(["export", str(dqn_sweep), "--run", "2", "--out", str(out)], capsys, "no such run")
    _one_line_error(["export", str(dqn_sweep), "--run", "-1", "--out", str(out)], capsys, "no such run")
    _one_line_error(["export", str(tmp_path), "--run", "0", "--out", str(out)], capsys, "not a sweep directory")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(dqn_sweep / "config.yaml", fresh / "config.yaml")
    _one_line_error(["export", str(fresh), "--run", "0", "--out", str(out)], capsys, "no checkpoint")
    assert not (fresh / "checkpoints").exists()
    partial = tmp_path / "partial"
    shutil.copytree(dqn_sweep, partial)
    shutil.rmtree(partial / "checkpoints" / "3")  # the last chunk's checkpoint: 2 of 3 chunks left
    _one_line_error(["export", str(partial), "--run", "0", "--out", str(out)], capsys, "incomplete (2/3 chunks)")
    _one_line_error(["export", str(dqn_sweep), "--run", "0", "--out", str(tmp_path)], capsys, "is a directory")
    _one_line_error(["export", str(dqn_sweep), "--run", "0", "--out", str(out), "--csr-max-density", "1.5"], capsys,
                    "--csr-max-density")
    assert not out.exists()


def test_only_mlp_policies_export():
    from purejaxsparse.config import build_agent
    from purejaxsparse.fields import ConfigError
    agent = build_agent({"agent": "dqn", "env": "Breakout-MinAtar", "total_steps": 100, "eval_every": 100,
                         "eval_episodes": 1, "agent_config": {"network": "minatar", "buffer_size": 100}})
    with pytest.raises(ConfigError, match="only MLP policies"):
        agent.policy_arrays({}, None)


# -- without JAX --------------------------------------------------------------------------------

HIDE = textwrap.dedent("""
    import sys
    HIDDEN = {hidden}
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ImportError(f"{{name}} is not installed here")
    sys.meta_path.insert(0, Hide())
""")


def _run_hidden(code: str, hidden, cwd: Path) -> str:
    prelude = HIDE.format(hidden=set(hidden))
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_loader_runs_without_jax_as_the_package_module_and_as_a_copied_file(dqn_sweep, tmp_path, capsys):
    act = _export(dqn_sweep, 1, tmp_path / "p.npz", capsys)
    obs = np.random.default_rng(3).normal(size=(200, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    shutil.copy(ROOT / "purejaxsparse" / "export.py", tmp_path / "copied_policy.py")
    code = """
        import json, numpy as np
        try:
            import jax
            raise SystemExit("jax was importable")
        except ImportError:
            pass
        import purejaxsparse.export as pkg
        import copied_policy
        assert not any(m.split(".")[0] in HIDDEN for m in sys.modules), sorted(sys.modules)
        obs = np.load("obs.npy")
        out = {name: [int(a) for a in m.load_policy("p.npz")(obs)] for name, m in
               (("package", pkg), ("copy", copied_policy))}
        out["single"] = [copied_policy.load_policy("p.npz")(o) for o in obs]
        out["scipy"] = "scipy" in sys.modules
        print(json.dumps(out))
    """
    want = act(obs).tolist()
    for hidden, scipy_loaded in (({"jax", "jaxlib", "flax", "optax", "orbax", "chex"}, True),
                                 ({"jax", "jaxlib", "flax", "optax", "orbax", "chex", "scipy"}, False)):
        got = json.loads(_run_hidden(code, hidden, tmp_path).strip().splitlines()[-1])
        assert got["package"] == want and got["copy"] == want and got["single"] == want
        assert got["scipy"] is scipy_loaded


def test_benchmark_quick_prints_the_table(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import export_latency
        rows = export_latency.main(["--quick", "--calls", "20", "--rounds", "2"])
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = capsys.readouterr().out
    assert "| DQN 2x512 (CartPole) | 0.95 |" in out and "(b) / (c)" in out
    assert rows[0]["formats"] == "D/C/D" and rows[0]["sparse_kb"] < rows[0]["dense_kb"] / 5

