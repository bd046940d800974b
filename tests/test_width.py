"""agent_config.width: which layers each network scales, width 1 is the original network, and
ERK, param-matched dense, the memory-relevant shapes and export follow the scaled network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.config import build_agent
from purejaxsparse.export import load_policy
from purejaxsparse.export_writer import write_policy
from purejaxsparse.fields import ConfigError
from purejaxsparse.nets import ImpalaResNet, MinAtarCNN, NatureCNN, scaled

from conftest import train_runs


def kernel_shapes(module, input_shape, dtype=jnp.uint8):
    """Kernel shapes (forward order) of a module, from shapes only."""
    x = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    return sp.SparseSpec.from_params(jax.eval_shape(module.init, jax.random.PRNGKey(0), x)).shapes


def test_width_one_is_the_original_networks():
    """The shapes the networks had before width existed (Nature: SAME padding, a 7744 flatten)."""
    assert kernel_shapes(NatureCNN(out_dim=6), (84, 84, 4)) == (
        (8, 8, 4, 32), (4, 4, 32, 64), (3, 3, 64, 64), (7744, 512), (512, 6))
    assert kernel_shapes(MinAtarCNN(out_dim=3), (10, 10, 4)) == ((3, 3, 4, 16), (1024, 128), (128, 3))
    impala = kernel_shapes(ImpalaResNet(out_dim=6), (84, 84, 4))
    assert [s[-1] for s in impala] == [32] * 5 + [64] * 10 + [256, 6] and impala[15] == (11 * 11 * 64, 256)


def test_width_three_scales_channels_and_dense_layers_and_impala_channels_only():
    assert kernel_shapes(NatureCNN(out_dim=6, width=3), (84, 84, 4)) == (
        (8, 8, 4, 96), (4, 4, 96, 192), (3, 3, 192, 192), (11 * 11 * 192, 1536), (1536, 6))
    assert kernel_shapes(MinAtarCNN(out_dim=3, width=3), (10, 10, 4)) == (
        (3, 3, 4, 48), (8 * 8 * 48, 384), (384, 3))
    impala = kernel_shapes(ImpalaResNet(out_dim=6, width=3), (84, 84, 4))
    assert [s[-1] for s in impala] == [96] * 5 + [192] * 10 + [256, 6] and impala[15] == (11 * 11 * 192, 256)
    assert [scaled(n, w) for n, w in ((512, 1.0), (100, 0.07), (64, 1.5), (3, 0.1))] == [512, 7, 96, 1]


@pytest.mark.parametrize("agent, hidden, width, expect", [
    ("dqn", [8, 6], 3, (24, 18)), ("sac", [8, 6], 2, (16, 12)), ("ppo", [8, 6], 0.5, (4, 3))])
def test_every_agents_mlps_scale(agent, hidden, width, expect):
    env = {"dqn": "CartPole-v1", "sac": "Pendulum-v1", "ppo": "CartPole-v1"}[agent]
    config = {"agent": agent, "env": env, "total_steps": 2048, "eval_every": 2048, "eval_episodes": 1,
              "agent_config": {"hidden": hidden, "width": width}}
    for net in build_agent(config).networks().values():
        assert tuple(s[-1] for s in net.spec.shapes[:-1]) == expect


def test_width_is_a_positive_static_setting():
    config = {"agent": "dqn", "env": "CartPole-v1", "total_steps": 100, "eval_every": 100, "eval_episodes": 1,
              "agent_config": {"width": 0}, "sweep": {}}
    with pytest.raises(ConfigError, match=r"agent_config.width: got 0.0; allowed: > 0.0"):
        build_agent(config)
    with pytest.raises(ConfigError, match="sweep.width: a static setting"):
        pjs.config.plan_sweep({**config, "agent_config": {}, "sweep": {"width": [1, 3]}})


def test_erk_and_param_matched_dense_follow_the_scaled_network():
    one, three = (build_agent({"agent": "dqn", "env": "Breakout-MinAtar", "total_steps": 100, "eval_every": 100,
                               "eval_episodes": 1, "agent_config": {"network": "minatar", "width": w}}).q.spec
                  for w in (1, 3))
    for spec in (one, three):  # ERK on the scaled shapes: (1 - S) of the scaled network's kernels
        counts = np.asarray(sp.active_counts(spec.shapes, sp.layer_sparsities(spec.shapes, 0.95)))
        assert abs(counts.sum() - 0.05 * spec.num_kernel_params) <= spec.num_layers
    hp = sp.SparseHParams.make("dense_width", 0.95)
    budget = 0.05 * three.num_kernel_params + sum(s[-1] for s in three.shapes)
    units = [int(u.sum()) for u in sp.hidden_unit_masks(three, hp)]
    active = int(sp.final_active_params(three, hp))
    assert 0.9 * budget < active <= budget  # the scaled network's budget, nearly all of it
    assert units[0] < 48 and units[1] < 384
    assert units[1] > [int(u.sum()) for u in sp.hidden_unit_masks(one, hp)][1]


def test_export_of_a_scaled_mlp_computes_the_q_network(tmp_path):
    config = {"agent": "dqn", "env": "CartPole-v1", "total_steps": 400, "eval_every": 200, "eval_episodes": 1,
              "agent_config": {"hidden": [8, 8], "width": 2, "batch_size": 8, "learning_starts": 100},
              "hparams": {"sparsity": 0.8, "update_interval": 50, "end": 250}}
    train, _, state, _ = train_runs(config, [{"method": "rigl"}])
    agent = train.agent
    # the mask schedules' clock: an update at each of env steps 100..400, 301 in all
    assert agent.optimizer_steps()[0] == 301 and int(np.asarray(state.opt_state.count)[0]) == 301
    inputs = jax.device_get(jax.tree.map(lambda x: x[0], agent.policy_inputs(state)))
    arrays = agent.policy_arrays(inputs, None)
    assert [k.shape for k, _, _ in arrays.layers] == [(4, 16), (16, 16), (16, 2)]
    write_policy(tmp_path / "p.npz", arrays, {})
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    q = np.asarray(agent.q.apply(inputs["params"], obs))
    np.testing.assert_allclose(load_policy(tmp_path / "p.npz").outputs(obs), q, rtol=1e-5, atol=1e-5)
    assert math.isclose(1 - sum(int(m.sum()) for m in agent.q.spec.kernel_leaves(inputs["masks"]))
                        / agent.q.spec.num_kernel_params, 0.8, abs_tol=0.01)
