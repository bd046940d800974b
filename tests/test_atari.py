"""EnvPool Atari: the adapter, the folded pool, the frame replay, and a sweep through the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from purejaxsparse import envs
from purejaxsparse import replay

pytestmark = pytest.mark.usefixtures("compile_cache")  # the same tiny programs, compiled once

pytest.importorskip("envpool")


def _rollout(env, runs: int, steps: int, seed: int = 0):
    """Reset then `steps` steps with fixed per-step actions, vmapped over `runs` runs."""
    actions = jnp.asarray(np.random.default_rng(seed).integers(0, env.action_space.n, (runs, steps, env.num_envs)),
                          jnp.int32)

    def one(key, acts):
        state, obs = env.reset(key)

        def body(state, a):
            state, obs, reward, terminated, truncated, info = env.step(key, state, a)
            return state, (obs, reward, terminated, truncated, info["valid"], state.step)

        _, out = jax.lax.scan(body, state, acts)
        return obs, out

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(seed), runs), actions), actions


def test_dopamine_preprocessing_shapes_and_dtypes():
    env = envs.make("Pong", num_envs=3, max_episode_steps=50)
    assert envs.make("Pong-v5").name == "Pong"
    assert env.obs_shape == (84, 84, 4) and env.pixel_obs and not env.checkpointable
    assert env.action_space.n == 6
    (obs0, (obs, reward, terminated, truncated, valid, step)), _ = _rollout(env, runs=2, steps=5)
    assert obs0.dtype == jnp.uint8 and obs0.shape == (2, 3, 84, 84, 4)
    assert obs.dtype == jnp.uint8 and obs.shape == (2, 5, 3, 84, 84, 4)
    assert reward.dtype == jnp.float32 and terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    # a reset stack repeats the first frame; each step pushes one new frame (newest last)
    first = np.asarray(obs0[0, 0])
    assert all(np.array_equal(first[..., 0], first[..., k]) for k in range(4))
    o = np.asarray(obs[0, :, 0])
    np.testing.assert_array_equal(o[1][..., :3], o[0][..., 1:])
    # the options that make it Dopamine's preprocessing
    opts = env.options
    assert (opts["frame_skip"], opts["stack_num"], opts["repeat_action_probability"]) == (4, 4, 0.25)
    assert opts["noop_max"] == 1 and not opts["episodic_life"] and not opts["use_fire_reset"]
    assert envs.make("Pong").max_episode_steps == 27_000 and not opts["reward_clip"]


def test_truncation_at_the_cap_is_not_termination():
    cap = 30
    env = envs.make("Breakout", num_envs=2, max_episode_steps=cap)
    _, (_, reward, terminated, truncated, valid, step) = _rollout(env, runs=1, steps=cap + 5)[0]
    trunc = np.asarray(truncated[0])
    assert trunc[cap - 1].all() and trunc.sum() == 2          # at the cap, once per env
    assert not np.asarray(terminated[0]).any()               # a 30-step Breakout does not end by itself
    # EnvPool's delayed reset: the next step is not a transition and starts the new episode
    v = np.asarray(valid[0])
    assert not v[cap].any() and v[:cap].all() and v[cap + 1:].all()
    assert (np.asarray(step[0])[cap] == 0).all() and (np.asarray(reward[0])[cap] == 0).all()


def test_termination_is_reported_apart_from_truncation():
    env = envs.make("Pong", num_envs=1, max_episode_steps=27_000)
    # Pong with a do-nothing policy ends when the opponent reaches 21, long before the cap
    _, (_, reward, terminated, truncated, valid, _) = _rollout(env, runs=1, steps=1100, seed=1)[0]
    term = np.asarray(terminated[0, :, 0])
    assert term.any() and not np.asarray(truncated).any()
    end = int(np.argmax(term))
    assert np.asarray(reward[0, : end + 1, 0]).sum() <= -21 + 5  # raw game score, not clipped per frame
    assert not bool(valid[0, end + 1, 0])


def test_runs_fold_into_one_pool_exactly():
    """Run r of a vmapped sweep is envs [r*E, (r+1)*E) of one pool: the same frames as a plain
    EnvPool of R*E envs with the same seed stepped with the flattened actions, and no two runs
    share episodes."""
    import envpool

    runs, e, steps = 3, 2, 12
    env = envs.make("Breakout", num_envs=e, seed=7)
    (obs0, (obs, reward, *_)), actions = _rollout(env, runs=runs, steps=steps, seed=3)
    ref = envpool.make("Breakout-v5", env_type="gymnasium", num_envs=runs * e, batch_size=runs * e, seed=7,
                       **env.options)
    ref.reset()                 # the adapter resets a new pool when it makes it ...
    ref_obs0, _ = ref.reset()   # ... and again at every env.reset
    np.testing.assert_array_equal(np.moveaxis(ref_obs0, 1, -1).reshape(runs, e, 84, 84, 4), obs0)
    acts = np.asarray(actions)
    for t in range(steps):
        o, r, *_ = ref.step(acts[:, t].reshape(runs * e))
        np.testing.assert_array_equal(np.moveaxis(o, 1, -1).reshape(runs, e, 84, 84, 4), obs[:, t])
        np.testing.assert_array_equal(r.reshape(runs, e), reward[:, t])
    flat = np.asarray(obs).transpose(0, 2, 1, 3, 4, 5).reshape(runs * e, -1)
    assert len({row.tobytes() for row in flat}) == runs * e


def test_evaluation_has_its_own_pool():
    env = envs.make("Pong", num_envs=2)
    eval_env = env.with_num_envs(2 + 1).with_num_envs(2)
    assert eval_env.stream != env.stream and eval_env.pool(1) is not env.pool(1)
    assert env.with_num_envs(2) is env


def test_noise_on_raw_pixels_stays_uint8():
    env = envs.make("Pong", num_envs=1, max_episode_steps=20)
    seen = []

    def policy(key, obs):
        seen.append(obs.dtype)
        return jnp.zeros(obs.shape[0], jnp.int32)

    clean = envs.evaluate(env, policy, jax.random.PRNGKey(0), 2, 0.0)
    noisy = envs.evaluate(env, policy, jax.random.PRNGKey(0), 2, 30.0)
    assert clean.shape == noisy.shape == (2,)
    assert all(dt == jnp.uint8 for dt in seen)


# ---- frame replay -------------------------------------------------------------------------

def _synthetic_stream(steps: int, num_envs: int, ends: dict[int, list[int]], restarts: dict[int, list[int]],
                      seed: int = 0):
    """An EnvPool-like stream: per env, observation stacks (first frame repeated on reset),
    episode ends at the given steps, each followed by a reset step (not a transition), and
    restarts (a resumed sweep: a real step whose next observation starts a new episode)."""
    rng = np.random.default_rng(seed)
    stacks = np.zeros((steps + 1, num_envs, 3, 2, 4), np.uint8)
    first = np.zeros((steps + 1, num_envs), bool)
    terminated = np.zeros((steps, num_envs), bool)
    valid = np.ones((steps, num_envs), bool)
    for e in range(num_envs):
        frame = rng.integers(0, 256, (3, 2), np.uint8)
        stack, first[0, e] = np.repeat(frame[..., None], 4, -1), True
        stacks[0, e] = stack
        for t in range(steps):
            if t in ends.get(e, []):
                terminated[t, e] = True
            if t > 0 and terminated[t - 1, e]:  # reset step: the action is ignored
                valid[t, e] = False
                frame = rng.integers(0, 256, (3, 2), np.uint8)
                stack, first[t + 1, e] = np.repeat(frame[..., None], 4, -1), True
            elif t in restarts.get(e, []):
                frame = rng.integers(0, 256, (3, 2), np.uint8)
                stack, first[t + 1, e] = np.repeat(frame[..., None], 4, -1), True
            else:
                frame = rng.integers(0, 256, (3, 2), np.uint8)
                stack = np.concatenate([stack[..., 1:], frame[..., None]], -1)
            stacks[t + 1, e] = stack
    return stacks, first, terminated, valid


@pytest.mark.parametrize("capacity", [64, 23])
def test_frame_replay_equals_naive_stacks_and_never_mixes_episodes(capacity):
    steps, e = 40, 2
    stacks, first, terminated, valid = _synthetic_stream(steps, e, {0: [5, 7, 20], 1: [1, 30]}, {0: [33], 1: [12]})
    buffer = replay.init_frames(capacity, e, (3, 2))
    for t in range(steps):
        buffer = replay.add(buffer, t, {
            "frame": jnp.asarray(stacks[t, :, :, :, -1]), "action": jnp.full(e, t, jnp.int32),
            "reward": jnp.full(e, float(t)), "terminated": jnp.asarray(terminated[t]),
            "valid": jnp.asarray(valid[t]), "first": jnp.asarray(first[t])})
    batch = replay.sample_frames(jax.random.PRNGKey(0), buffer, steps, 4096)
    rows, seen = np.asarray(batch["action"]), set()
    for b in range(4096):
        t = int(rows[b])
        env = next(i for i in range(e) if np.array_equal(stacks[t, i], np.asarray(batch["obs"][b])))
        seen.add((t, env))
        np.testing.assert_array_equal(batch["next_obs"][b], stacks[t + 1, env])
        assert bool(batch["terminated"][b]) == terminated[t, env]
        expected_weight = valid[t, env] and not first[t + 1, env]
        assert float(batch["weight"][b]) == float(expected_weight)
    oldest = max(0, steps - capacity)
    assert {t for t, _ in seen} == set(range(oldest + 3, steps - 1))  # every stored stack, nothing older


def test_frame_replay_stack_repeats_the_episode_start():
    frames = jnp.arange(5, dtype=jnp.uint8)[None, :, None, None] * jnp.ones((1, 5, 1, 1), jnp.uint8)
    first = jnp.asarray([[False, False, True, False, False]])
    got = np.asarray(replay._stack(frames[:, 1:], first[:, 1:]))[0, 0, 0]
    np.testing.assert_array_equal(got, [2, 2, 3, 4])  # frame 1 belongs to the previous episode


# ---- a whole Atari sweep: run, kill, resume, report, robustness ------------------------------

ATARI_SWEEP = {
    "name": "atari_tiny", "agent": "dqn", "env": {"name": "Pong", "max_episode_steps": 100},
    "total_steps": 300, "eval_every": 100, "eval_episodes": 2, "chunk_evals": 1,
    "agent_config": {"network": "nature_cnn", "batch_size": 4, "buffer_size": 150, "learning_starts": 50,
                     "train_every": 4, "dormant_batch": 16,
                     "width": 0.25},  # a quarter-width Nature CNN: the same code path, 7x faster to train
    "hparams": {"sparsity": 0.9, "update_interval": 10, "end": 50, "huber": True, "reward_clip": True,
                "epsilon_decay_steps": 100, "target_update_every": 20, "weight_decay": 0.0},
    "method_defaults": {"prune": {"start": 20}},
    "sweep": {"seed": 1, "method": ["rigl", "prune"]},
}


def test_atari_sweep_is_killed_resumed_reported_and_noised(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import pandas as pd
    import yaml

    from purejaxsparse.cli import main

    config, out = tmp_path / "atari.yaml", tmp_path / "out"
    config.write_text(yaml.safe_dump(ATARI_SWEEP))
    proc = subprocess.Popen([sys.executable, "-m", "purejaxsparse.cli", "run", str(config), "--out", str(out),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, ckpts = time.time() + 400, out / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if ckpts.exists() and any(p.name.isdigit() for p in ckpts.iterdir()):
            break
        time.sleep(0.05)
    was_running = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert was_running, f"the sweep ended before it could be killed: {err.decode()[-2000:]}"
    before = pd.read_csv(out / "results.csv")
    assert len(before) in (2, 4)  # one or two chunks landed (a kill may follow the 2nd checkpoint)

    assert main(["resume", str(out), "--no-progress"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 3 and sorted(results.step.unique()) == [100, 200, 300]
    pd.testing.assert_frame_equal(results.iloc[: len(before)].reset_index(drop=True), before)
    assert np.isfinite(results.eval_return).all() and (results.eval_return >= -21).all()
    last = results[results.step == 300]
    np.testing.assert_allclose(last.actual_sparsity, 0.9, atol=0.01)

    assert main(["report", str(out), "--reps", "50"]) == 0
    assert (out / "report" / "index.html").is_file() and (out / "report" / "summary.csv").is_file()
    assert main(["robustness", str(out), "--sigma", "0,30", "--episodes", "2"]) == 0
    rob = pd.read_csv(out / "report" / "robustness.csv")
    assert sorted(rob.sigma.unique()) == [0, 30] and len(rob) == 4
    assert (out / "report" / "robustness.png").is_file()


# ---- DQN's Atari settings -------------------------------------------------------------------

def test_epsilon_decays_as_dopamine():
    """Dopamine's linearly_decaying_epsilon(decay_period, step, warmup_steps, epsilon)."""
    from purejaxsparse.agents.dqn import DQNHParams, exploration_epsilon
    from purejaxsparse.fields import make_hparams

    def dopamine(decay, step, warmup, eps):
        bonus = np.clip((1.0 - eps) * (decay + warmup - step) / decay, 0.0, 1.0 - eps)
        return eps + bonus

    hp = make_hparams(DQNHParams, {"epsilon": 0.01, "epsilon_decay_steps": 250_000})
    for step in (0, 19_999, 20_000, 20_001, 145_000, 269_999, 270_000, 5_000_000):
        got = float(exploration_epsilon(hp, jnp.int32(step), 20_000))
        assert got == pytest.approx(dopamine(250_000, step, 20_000, 0.01), abs=1e-6)
    flat = make_hparams(DQNHParams, {"epsilon": 0.05})  # no decay: 1 in warm-up, then epsilon
    assert float(exploration_epsilon(flat, jnp.int32(999), 1000)) == 1.0
    assert float(exploration_epsilon(flat, jnp.int32(1000), 1000)) == pytest.approx(0.05)


def test_rewards_are_clipped_for_learning_only():
    """The replay holds clipped rewards while evaluation returns stay raw game scores."""
    import purejaxsparse as pjs

    # MsPacman scores 10 points a pellet: raw rewards are far outside [-1, 1]
    config = {**ATARI_SWEEP, "env": {"name": "MsPacman", "max_episode_steps": 300}, "total_steps": 300,
              "eval_every": 300, "eval_episodes": 2,
              "agent_config": {**ATARI_SWEEP["agent_config"], "learning_starts": 300,
                               "buffer_size": 300}}
    train = pjs.make_train(config)
    hp = pjs.stack_hparams([train.hparams(method="dense", reward_clip=clip) for clip in (True, False)])
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(jax.random.PRNGKey(0), 2), hp)
    rewards = np.asarray(state.buffer["reward"])
    assert set(np.unique(rewards[0])) <= {0.0, 1.0} and rewards[0].max() == 1.0
    assert rewards[1].max() >= 10.0 and np.all(np.mod(rewards[1], 10) == 0)
    returns = np.asarray(metrics["eval_return"])[:, 0]
    assert (returns >= 10).all() and np.all(np.mod(returns, 10) == 0)  # raw scores in both runs
