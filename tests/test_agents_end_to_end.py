"""Agent-level behaviours checked against independent computations: SAC's fixed alpha and its
truncation bootstrap (Pendulum physics and the TD target by hand), Brax bodies that fall and
reset, DQN's CNNs on pixels with exact RigL counts, and ER/uniform/param-matched/bias-off
sweeps whose active counts are worked out in numpy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from purejaxsparse import envs
import purejaxsparse as pjs
from conftest import tiny_sweep_config
from purejaxsparse import sparse as sp
from purejaxsparse import sweep
from purejaxsparse.config import plan_sweep
from conftest import checkpointed_state, mlp_np

# -- SAC: a 5-step Pendulum, so that 30 iterations hold 6 truncations and 21 updates ---------------

SAC_TINY = {"agent": "sac", "env": {"name": "Pendulum-v1", "max_steps_in_episode": 5}, "total_steps": 100,
            "eval_every": 50, "eval_episodes": 1,
            "agent_config": {"hidden": [16, 16], "batch_size": 4, "buffer_size": 100, "learning_starts": 10}}
SAC_ITERS = 30  # learning_starts 10: the first update at iteration 9
INIT_ALPHA = 0.3


@pytest.fixture(scope="module")
def sac_run():
    """(agent, hparams, initial state, state after SAC_ITERS iterations) of one run with
    `autotune: false` from alpha 0.3 (one run, not a vmapped pair: half the compile time)."""
    train = pjs.make_train(SAC_TINY)
    agent, hp = train.agent, train.hparams(autotune=False, init_alpha=INIT_ALPHA)

    @jax.jit
    def run(key, hp):
        state = agent.init(key, hp)
        return state, jax.lax.fori_loop(0, SAC_ITERS, lambda t, s: agent.iteration(s, hp, t), state)

    state0, state = jax.device_get(run(jax.random.PRNGKey(0), hp))
    return agent, hp, state0, state


def test_sac_without_autotune_keeps_alpha_fixed(sac_run):
    """21 updates later, log alpha is still log(init_alpha) and its Adam state untouched, while
    actor and critics trained."""
    agent, _, state0, state = sac_run
    assert SAC_ITERS - agent.schedule.first_train_iter >= 20  # gradient steps taken
    # iterations 9..29 update once each: 21 steps on every network's clock
    assert agent.schedule.rounds(SAC_ITERS) == 21 and int(state.actor_opt.count) == 21
    assert [int(o.count) for o in state.critic_opt] == [21, 21]
    assert np.asarray(state.log_alpha) == np.asarray(state0.log_alpha)
    np.testing.assert_allclose(np.asarray(state.log_alpha), math.log(INIT_ALPHA), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(state.alpha_opt), jax.tree.leaves(state0.alpha_opt)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for tree in ("actor_params", "critic_params"):
        w0, w = (np.asarray(jax.tree.leaves(getattr(s, tree))[1]) for s in (state0, state))
        assert not np.array_equal(w0, w), tree


def _pendulum_step(obs, action):
    """gymnax Pendulum-v1 in float64 numpy: (cos th, sin th, thdot) and a torque -> next obs."""
    th, thdot = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
    u = np.clip(action, -2.0, 2.0)
    thdot = np.clip(thdot + (3 * 10.0 / 2 * np.sin(th) + 3.0 * u) * 0.05, -8.0, 8.0)
    th = th + thdot * 0.05
    return np.stack([np.cos(th), np.sin(th), thdot], -1)


def _td_target_np(actor, targets, next_obs, reward, done, key, alpha):
    """TF-Agents' SAC target by hand: 0.1 r + 0.99 (1 - done) (min Q'(s', a') - alpha log pi(a'|s'))
    with a' = 2 tanh(mean + exp(raw) eps), eps the policy's N(0, 1) draw from `key`."""
    out = mlp_np(actor, next_obs)
    mean, raw = out[:, :1], out[:, 1:]
    eps = np.asarray(jax.random.normal(key, mean.shape), np.float64)
    u = mean + np.exp(raw) * eps
    logp = np.sum(-0.5 * eps ** 2 - raw - 0.5 * np.log(2 * np.pi) - np.log(1 - np.tanh(u) ** 2) - np.log(2.0), -1)
    x = np.concatenate([next_obs, 2.0 * np.tanh(u)], -1)
    q = np.minimum(mlp_np(targets[0], x)[:, 0], mlp_np(targets[1], x)[:, 0])
    return 0.1 * reward + 0.99 * (1.0 - done) * (q - alpha * logp)


def test_sac_bootstraps_on_truncation_not_on_termination(sac_run):
    """Replay rows at the 5-step time limit hold terminated False and, as next_obs, the last
    observation of the episode (Pendulum's physics from obs and action), not the reset one; the
    TD target of such a row bootstraps from it, while a terminated row gets 0.1 r alone."""
    agent, hp, _, state = sac_run
    buf = {k: np.asarray(v)[:SAC_ITERS, 0] for k, v in state.buffer.items()}  # env 0
    np.testing.assert_allclose(buf["next_obs"], _pendulum_step(buf["obs"], 2.0 * buf["action"][:, 0]), atol=2e-5)
    assert not buf["terminated"].any()  # Pendulum never terminates; it is only truncated
    limit = np.arange(4, SAC_ITERS - 1, 5)  # the 5th step of each episode
    for t in limit:
        assert not np.allclose(buf["next_obs"][t], buf["obs"][t + 1], atol=1e-3)  # t + 1 is a reset
    inner = np.setdiff1d(np.arange(SAC_ITERS - 1), limit)
    np.testing.assert_array_equal(buf["next_obs"][inner], buf["obs"][inner + 1])

    rows = np.array([limit[0], limit[1], limit[1]])
    batch = {"next_obs": jnp.asarray(buf["next_obs"][rows]), "reward": jnp.asarray(buf["reward"][rows]),
             "terminated": jnp.array([False, False, True])}  # the same truncated row, as if terminated
    key, alpha = jax.random.PRNGKey(5), 0.7
    actor, targets = state.actor_params, state.target_params
    got = np.asarray(jax.jit(agent._td_target)(key, hp, actor, targets, batch, alpha))
    want = _td_target_np(actor, targets, buf["next_obs"][rows], buf["reward"][rows], np.array([0.0, 0.0, 1.0]),
                         key, alpha)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert abs(want[1] - 0.1 * buf["reward"][rows[1]]) > 0.1  # the bootstrap term is not negligible
    # from the reset observation instead, the target would be another number
    reset = _td_target_np(actor, targets, buf["obs"][rows + 1], buf["reward"][rows], np.zeros(3), key, alpha)
    assert np.all(np.abs(reset[:2] - got[:2]) > 1e-3)


# -- Brax (MJX): bodies that fall end their episodes and restart from a fresh initial pose -------

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
BRAX_STEPS = 64
# brax's own health rules (brax/envs/{hopper,walker2d,ant}.py, defaults), read off the observation:
# obs[0] is the torso height z (x, y excluded), obs[1] hopper's and walker's torso angle q[2].
BRAX_HEALTHY = {
    "hopper": lambda o: (o[:, 0] > 0.7) & (np.abs(o[:, 1]) < 0.2) & np.all(np.abs(o[:, 1:]) < 100.0, -1),
    "walker2d": lambda o: (o[:, 0] > 0.8) & (o[:, 0] < 2.0) & (np.abs(o[:, 1]) < 1.0),
    "ant": lambda o: (o[:, 0] >= 0.2) & (o[:, 0] <= 1.0),
}
# (position entries of the observation, reset noise: qpos + U(+-noise); hopper and walker qvel too)
BRAX_RESET = {"hopper": (5, 5e-3), "walker2d": (8, 5e-3), "ant": (13, 0.1)}


def _brax_rollout(name):
    """Reset, then BRAX_STEPS uniformly random actions on 2 envs: one compiled program (XLA's
    cheapest settings: an MJX step otherwise takes minutes to compile on CPU)."""
    env = envs.make(name, num_envs=2)
    assert env.max_episode_steps == 1000
    actions = jax.random.uniform(jax.random.PRNGKey(1), (BRAX_STEPS, 2, *env.action_space.shape),
                                 minval=-1.0, maxval=1.0)

    def rollout(key):
        state, obs0 = env.reset(key)

        def body(state, xs):
            i, a = xs
            state, obs, _, terminated, truncated, info = env.step(jax.random.fold_in(key, i), state, a)
            return state, (obs, terminated, truncated, info["final_obs"], state.step)

        return obs0, jax.lax.scan(body, state, (jnp.arange(BRAX_STEPS), actions))[1]

    return jax.device_get(jax.jit(rollout, compiler_options=FAST_COMPILE)(jax.random.PRNGKey(0)))


@pytest.mark.slow
def test_brax_hopper_walker_ant_terminate_and_reset():
    """Random actions make each body fall within 64 steps: `terminated` holds exactly where brax's
    health rule fails on the final observation, long before the 1000-step limit (no truncation);
    that step already returns a fresh episode: step count 0, an observation within the reset
    noise of the initial pose, and not the first episode's start again (a new draw)."""
    for name, healthy in BRAX_HEALTHY.items():
        obs0, (obs, terminated, truncated, final_obs, count) = _brax_rollout(name)
        n_pos, noise = BRAX_RESET[name]
        assert terminated.any() and not truncated.any(), name
        for e in range(2):
            np.testing.assert_array_equal(terminated[:, e], ~healthy(final_obs[:, e]), err_msg=name)
            ends = np.flatnonzero(terminated[:, e])
            np.testing.assert_array_equal(count[ends, e], 0)
            lived = np.flatnonzero(~terminated[:, e])
            np.testing.assert_array_equal(obs[lived, e], final_obs[lived, e])
            for t in ends:
                start, fell = obs[t, e], final_obs[t, e]
                close = slice(None) if name != "ant" else slice(n_pos)  # ant's qvel noise is Gaussian
                assert np.all(np.abs(start[close] - obs0[e][close]) <= 2 * noise + 1e-4), (name, t)
                assert healthy(start[None])[0] and not np.allclose(start, fell), (name, t)
                assert not np.array_equal(start, obs0[e]), (name, t)
                if t + 1 < BRAX_STEPS:
                    assert count[t + 1, e] == 1 or terminated[t + 1, e]


# -- DQN's pixel networks at agent level: MinAtar Breakout's 10x10x4 frames ------------------------

CHEAP_COMPILE = {"xla_backend_optimization_level": 1, "xla_llvm_disable_expensive_passes": True}  # ~20% less
PIXEL = {"agent": "dqn", "env": {"name": "Breakout-MinAtar", "max_steps_in_episode": 100},
         "total_steps": 200, "eval_every": 100, "eval_episodes": 2,
         "agent_config": {"batch_size": 4, "buffer_size": 200, "learning_starts": 50, "dormant_batch": 16},
         "hparams": {"method": "rigl", "sparsity": 0.9, "update_interval": 25, "end": 125,
                     "target_update_every": 25}}  # the last target copy (150) after the last mask update


@pytest.mark.parametrize("network", ["nature_cnn", "impala"])
def test_dqn_pixel_networks_train_with_exact_rigl_counts(network):
    """200 env steps (150 updates, RigL every 25 until 125) through make_train: finite returns,
    every kernel mask (convs included) at its ERK count for 90% after RigL moved the masks,
    masked weights exactly zero in the online and target networks. (Compiling the network's
    sparse machinery is what costs here: ~20 s of CPU for the Nature CNN, ~45 s for Impala.)"""
    config = {**PIXEL, "agent_config": {**PIXEL["agent_config"], "network": network}}
    train = pjs.make_train(config)
    agent, hp = train.agent, train.hparams()
    assert agent.env.obs_shape == (10, 10, 4)  # an image (MinAtar: 4 object channels)
    # the initial masks in the same program: the init inside train is the same computation
    both = jax.jit(lambda k, h: (agent.init(k, h).masks, train(k, h)), compiler_options=CHEAP_COMPILE)
    initial, (state, metrics) = jax.device_get(both(jax.random.PRNGKey(0), hp))
    assert np.isfinite(metrics["eval_return"]).all() and metrics["eval_return"].shape == (2,)
    spec = agent.q.spec
    assert sum(len(s) == 4 for s in spec.shapes) >= 3  # the conv kernels are sparse layers too
    want = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.9)))
    masks = spec.kernel_leaves(state.masks)
    assert [int(m.sum()) for m in masks] == want.tolist()
    assert any(not np.array_equal(a, b) for a, b in zip(masks, spec.kernel_leaves(initial)))  # RigL moved them
    for tree in (state.params, state.target_params):
        for w, m in zip(spec.kernel_leaves(tree), masks):
            assert np.all(np.asarray(w)[~np.asarray(m)] == 0.0)
    assert metrics["active_params"][-1] == want.sum() + sum(s[-1] for s in spec.shapes)  # + biases


# -- ER, uniform, param-matched dense and bias off through a sweep: counts worked out in numpy ------

# MinAtar's network (Young & Tian 2019): 3x3 VALID conv of 16 channels on 10x10x4, fc 128 on the
# 8x8x16 flatten, one output per action (Breakout: 3). A conv layer makes ER differ from ERK.
MINATAR_KERNELS = [(3, 3, 4, 16), (1024, 128), (128, 3)]
MINATAR_BIASES = 16 + 128 + 3
# at 50% counting biases only in the budget, at 80% leaving them out on both sides, changes the width
COUNTS_SPARSITIES = [0.5, 0.8]


def _er_counts_np(shapes, s):
    """ER as in docs/reference.md: density_l = eps (n_in + n_out) / (n_in n_out), eps solved for (1 - S) N
    active weights; layers above density 1 made dense and eps solved again. Rounded half to even."""
    sizes = np.array([math.prod(sh) for sh in shapes], np.float64)
    raw = np.array([(sh[-2] + sh[-1]) / (sh[-2] * sh[-1]) for sh in shapes])
    dense = np.zeros(len(shapes), bool)
    while True:
        eps = ((1 - s) * sizes.sum() - sizes[dense].sum()) / (raw * sizes)[~dense].sum()
        more = dense | (eps * raw > 1.0)
        if (more == dense).all():
            break
        dense = more
    return np.round(np.where(dense, 1.0, eps * raw) * sizes).astype(int)


def _matched_width_count_np(s, use_bias):
    """Param-matched dense on the MinAtar net: the widest network (c = floor(16 w) channels, h =
    floor(128 w) units, at least 1) whose parameters, biases counted as the original's
    get_total_params does, fit (1 - S) N_kernels (+ all biases); every w = k/128 is a candidate."""
    budget = (1 - s) * sum(math.prod(sh) for sh in MINATAR_KERNELS) + (MINATAR_BIASES if use_bias else 0)
    best = 0
    for k in range(1, 129):
        c, h = max(1, (16 * k) // 128), k
        count = 9 * 4 * c + 64 * c * h + 3 * h + ((c + h + 3) if use_bias else 0)
        if count <= budget:
            best = count
    return best


def test_er_uniform_dense_width_and_bias_off_hit_their_counts_through_a_sweep(tmp_path):
    """A tiny DQN sweep on Breakout-MinAtar (RigL with ER and uniform, param-matched dense, each
    with and without biases, at 50% and 80%): results.csv's final and runs.csv's active_params
    equal the numpy counts, RigL's kernel masks hold them per layer, and runs without biases end
    with every bias exactly zero (masks off) in the online and target networks."""
    config = tiny_sweep_config(
        name="counts", env={"name": "Breakout-MinAtar", "max_steps_in_episode": 100},
        total_steps=400, eval_every=200, eval_episodes=1, chunk_evals=2,
        agent_config={"network": "minatar", "batch_size": 8, "buffer_size": 400, "learning_starts": 100,
                      "dormant_batch": 16},
        hparams={"update_interval": 50, "end": 300}, method_defaults={},
        sweep={"seed": 1, "sparsity": COUNTS_SPARSITIES, "method": ["rigl", "dense_width"],
               "distribution": ["er", "uniform"], "use_bias": [True, False]})
    plan = plan_sweep(config)
    assert plan.num_runs == 12 and plan.duplicates == 4  # dense_width ignores the distribution
    assert [tuple(s) for s in plan.agent.q.spec.shapes] == MINATAR_KERNELS
    sweep.run_sweep(plan, tmp_path, progress=False, log=lambda *_: None)

    sizes = np.array([math.prod(s) for s in MINATAR_KERNELS])
    kernels = {(d, s): np.round((1 - s) * sizes).astype(int) if d == "uniform" else _er_counts_np(MINATAR_KERNELS, s)
               for d in ("er", "uniform") for s in COUNTS_SPARSITIES}
    for s in COUNTS_SPARSITIES:
        assert kernels["er", s][0] == sizes[0] != kernels["uniform", s][0]  # ER keeps the small conv dense
    runs = pd.read_csv(tmp_path / "runs.csv").set_index("run")
    final = pd.read_csv(tmp_path / "results.csv").query("step == 400").set_index("run")
    state = checkpointed_state(tmp_path, plan)
    spec = plan.agent.q.spec
    for r, run in enumerate(plan.runs):
        bias = run["use_bias"]
        if run["method"] == "dense_width":
            want = _matched_width_count_np(run["sparsity"], bias)
        else:
            per_layer = kernels[run["distribution"], run["sparsity"]]
            assert [int(np.asarray(m)[r].sum()) for m in spec.kernel_leaves(state.masks)] == per_layer.tolist()
            want = per_layer.sum() + (MINATAR_BIASES if bias else 0)
        assert runs.loc[r, "active_params"] == want == final.loc[r, "active_params"], run
        for tree in (state.params, state.target_params, state.masks):
            biases = [np.asarray(leaf)[r] for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
                      if "bias" in jax.tree_util.keystr(path)]
            assert len(biases) == 3
            assert all(b.any() for b in biases) if bias else not any(b.any() for b in biases), (run, tree)
