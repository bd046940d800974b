"""ReDo (sparse/redo.py, DQN's redo_every/redo_tau): a hand-built network recycled exactly as
the rule says (worked out here in numpy), masks kept, and ReDo off changes no result."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import purejaxsparse as pjs
from purejaxsparse import sparse as sp
from purejaxsparse.nets import MLP

TAU = 0.1


def hand_built():
    """A 3 -> 4 -> 3 -> 2 ReLU MLP with dormant units 2 (never active) and 3 (active, score
    ~0.05) in layer 0 and unit 0 in layer 1, masks with holes in the rows and columns ReDo
    touches, and Adam moments of 0.5 (mu) and 0.25 (nu) wherever the mask is on."""
    rng = np.random.default_rng(0)
    w0 = rng.uniform(0.5, 1.0, (3, 4)).astype(np.float32)
    w0[:, 3] = 0.02
    b0 = np.array([0.1, -0.5, -10.0, 0.0], np.float32)
    w1 = rng.uniform(0.2, 1.0, (4, 3)).astype(np.float32)
    b1 = np.array([-100.0, 0.1, 0.2], np.float32)
    w2 = rng.uniform(-1.0, 1.0, (3, 2)).astype(np.float32)
    b2 = np.array([0.3, -0.3], np.float32)
    m0, m1, m2 = np.ones((3, 4), bool), np.ones((4, 3), bool), np.ones((3, 2), bool)
    m0[1, 2] = m0[0, 3] = m0[2, 0] = False
    m1[2, 1] = m1[3, 0] = False
    m2[0, 1] = False
    layer = lambda w, b, m: {"kernel": jnp.asarray(np.where(m, w, 0.0)), "bias": jnp.asarray(b)}  # noqa: E731
    params = {"params": {"layer_0": layer(w0, b0, m0), "layer_1": layer(w1, b1, m1), "layer_2": layer(w2, b2, m2)}}
    ones = lambda b: np.ones(b.shape, bool)  # noqa: E731
    masks = {"params": {f"layer_{i}": {"kernel": jnp.asarray(m), "bias": jnp.asarray(ones(b))}
                        for i, (m, b) in enumerate(((m0, b0), (m1, b1), (m2, b2)))}}
    adam = optax.adam(1e-3).init(params)
    moment = lambda v: jax.tree.map(lambda m: jnp.where(m, v, 0.0), masks)  # noqa: E731
    adam = (adam[0]._replace(count=jnp.int32(7), mu=moment(0.5), nu=moment(0.25)),) + tuple(adam[1:])
    x = rng.uniform(0.0, 1.0, (64, 3)).astype(np.float32)
    return params, masks, adam, x


def numpy_dormant(params, x):
    """Dormant units per hidden layer, from Sokar et al.'s Definition 3.1 in float64."""
    p = {k: {n: np.asarray(v, np.float64) for n, v in layer.items()} for k, layer in params["params"].items()}
    h0 = np.maximum(x.astype(np.float64) @ p["layer_0"]["kernel"] + p["layer_0"]["bias"], 0.0)
    h1 = np.maximum(h0 @ p["layer_1"]["kernel"] + p["layer_1"]["bias"], 0.0)
    out = []
    for h in (h0, h1):
        mean_abs = np.abs(h).mean(0)
        out.append(mean_abs / (mean_abs.mean() + 1e-9) <= TAU)
    return out


def test_a_hand_built_network_is_recycled_as_the_rule_says():
    params, masks, adam, x = hand_built()
    net = MLP(hidden=(4, 3), out_dim=2)
    spec = sp.SparseSpec.from_params(params)  # Glorot uniform kernels
    dead = sp.dormant_units(net.apply(params, x, return_activations=True)[1], TAU)
    expect_dead = numpy_dormant(params, x)
    assert [d.tolist() for d in expect_dead] == [[False, False, True, True], [True, False, False]]
    assert [np.asarray(d).tolist() for d in dead] == [d.tolist() for d in expect_dead]

    hp = sp.SparseHParams.make("prune", 0.5)  # a layer dense at the start: the network's own init
    layers = sp.recyclable_layers(spec, net)
    assert layers == (0, 1)
    new, new_adam = sp.recycle_dormant(jax.random.PRNGKey(1), spec, hp, params, masks, adam, dead, layers)

    old = jax.tree.map(np.asarray, params["params"])
    got = jax.tree.map(np.asarray, new["params"])
    mask = {k: np.asarray(v["kernel"]) for k, v in masks["params"].items()}
    shapes = {name: m.shape for name, m in mask.items()}
    redrawn = {name: np.zeros(shape, bool) for name, shape in shapes.items()}
    zeroed = {name: np.zeros(shape, bool) for name, shape in shapes.items()}
    redrawn["layer_0"][:, 2:] = True          # incoming weights of layer-0 units 2, 3
    redrawn["layer_1"][:2, 0] = True          # of layer-1 unit 0 (rows 2, 3 are zeroed below)
    zeroed["layer_1"][2:, :] = True           # outgoing weights of layer-0 units 2, 3
    zeroed["layer_2"][0, :] = True            # outgoing weights of layer-1 unit 0
    for name in ("layer_0", "layer_1"):       # redrawn where the mask is on, exactly 0 where off
        k, on = got[name]["kernel"], redrawn[name] & mask[name]
        assert np.all(k[redrawn[name] & ~mask[name]] == 0.0)
        assert np.all(k[on] != old[name]["kernel"][on]) and np.all(k[on] != 0.0)
        assert np.all(np.abs(k[on]) <= np.sqrt(6 / 7))  # Glorot uniform on the full fans (3+4, 4+3)
    for name in shapes:
        kept = ~redrawn[name]
        expect = np.where(zeroed[name], 0.0, old[name]["kernel"])
        np.testing.assert_array_equal(got[name]["kernel"][kept], expect[kept])
        for moment, value in ((new_adam[0].mu, 0.5), (new_adam[0].nu, 0.25)):
            m = np.asarray(moment["params"][name]["kernel"])
            np.testing.assert_array_equal(m, np.where(redrawn[name] | zeroed[name] | ~mask[name], 0.0, value))
            np.testing.assert_array_equal(np.asarray(moment["params"][name]["bias"]), value)  # as Dopamine
    np.testing.assert_array_equal(got["layer_0"]["bias"], np.float32([0.1, -0.5, 0.0, 0.0]))
    np.testing.assert_array_equal(got["layer_1"]["bias"], np.float32([0.0, 0.1, 0.2]))
    np.testing.assert_array_equal(got["layer_2"]["bias"], old["layer_2"]["bias"])
    assert int(new_adam[0].count) == 7


def test_a_recycled_channel_silences_its_rows_of_the_flattened_dense_layer():
    """NHWC flatten: channel c of a 2x2x2 conv output is read by rows c, c + 2, c + 4, c + 6."""
    from purejaxsparse.nets import MinAtarCNN
    net = MinAtarCNN(out_dim=2, channels=2, hidden=3)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))
    spec = sp.SparseSpec.from_params(params)
    masks = jax.tree.map(lambda p: jnp.ones(p.shape, bool), params)
    dead = [jnp.array([False, True]), jnp.zeros(3, bool)]
    hp = sp.SparseHParams.make("dense")
    new, _ = sp.recycle_dormant(jax.random.PRNGKey(1), spec, hp, params, masks, optax.adam(1e-3).init(params),
                                dead, sp.recyclable_layers(spec, net))
    old, got = (jax.tree.map(np.asarray, t["params"]) for t in (params, new))
    assert np.all(got["layer_0"]["kernel"][..., 1] != old["layer_0"]["kernel"][..., 1])
    np.testing.assert_array_equal(got["layer_0"]["kernel"][..., 0], old["layer_0"]["kernel"][..., 0])
    np.testing.assert_array_equal(got["layer_1"]["kernel"][1::2], 0.0)
    np.testing.assert_array_equal(got["layer_1"]["kernel"][0::2], old["layer_1"]["kernel"][0::2])


def test_impala_recycles_only_layers_outside_the_residual_stream():
    from purejaxsparse.nets import ImpalaResNet
    net = ImpalaResNet(out_dim=4, channels=(4, 4, 4))
    x = jax.ShapeDtypeStruct((1, 84, 84, 4), jnp.uint8)
    spec = sp.SparseSpec.from_params(jax.eval_shape(net.init, jax.random.PRNGKey(0), x))
    assert sp.recyclable_layers(spec, net) == (1, 3, 6, 8, 11, 13, 15)


CONFIG = {
    "agent": "dqn", "env": {"name": "CartPole-v1", "max_steps_in_episode": 100}, "total_steps": 600,
    "eval_every": 300, "eval_episodes": 2,
    "agent_config": {"hidden": [16, 16], "batch_size": 16, "buffer_size": 600, "learning_starts": 100,
                     "dormant_batch": 64},
    "hparams": {"sparsity": 0.8, "update_interval": 50, "start": 50, "end": 400, "redo_tau": 1.0},
}
METHODS = ("dense_width", "static", "rigl", "prune")


def run(agent, runs):
    """Final state and metrics of `runs` (make_hparams keyword dicts) of `agent`, vmapped; run i
    has the key of METHODS[i % len(METHODS)], so ReDo on and off start from the same network."""
    hparams = pjs.make_train(CONFIG).hparams
    hps = pjs.stack_hparams([hparams(**r) for r in runs])
    keys = jax.random.split(jax.random.PRNGKey(0), len(METHODS))[np.arange(len(runs)) % len(METHODS)]
    train = lambda k, hp: agent.run(agent.init(k, hp), hp, 0, agent.num_evals)  # noqa: E731
    state, metrics = jax.jit(jax.vmap(train))(keys, hps)
    return jax.device_get(state), jax.device_get(metrics)


@pytest.fixture(scope="module")
def runs():
    """Every method with ReDo off, then on (every 20 steps, tau 1: about half the units each
    time), in one program; and the off runs by an agent that has no ReDo step at all."""
    agent = pjs.make_train(CONFIG).agent
    plain = copy.copy(agent)
    plain._maybe_recycle = lambda params, opt_state, *rest: (params, opt_state)
    offs = [{"method": m, "redo_every": 0} for m in METHODS]
    ons = [{"method": m, "redo_every": 20} for m in METHODS]
    return agent, run(agent, offs + ons), run(plain, offs)


def at(tree, r):
    return jax.tree.map(lambda x: x[r], tree)


def test_redo_off_leaves_every_result_bit_identical(runs):
    _, (state, metrics), (plain_state, plain_metrics) = runs
    n = len(METHODS)
    for key, value in plain_metrics.items():
        np.testing.assert_array_equal(metrics[key][:n], value, err_msg=key)
    for a, b in zip(jax.tree.leaves(at(state, slice(0, n))), jax.tree.leaves(plain_state)):
        np.testing.assert_array_equal(a, b)


def test_recycling_keeps_masks_and_masked_weights_stay_zero(runs):
    agent, (state, metrics), _ = runs
    n = len(METHODS)
    spec = agent.q.spec
    for r in range(n):
        off, on = at(state, r), at(state, n + r)
        assert not np.array_equal(off.params["params"]["layer_0"]["kernel"],
                                  on.params["params"]["layer_0"]["kernel"])  # ReDo changed the run
        counts = [[int(m.sum()) for m in spec.kernel_leaves(s.opt_state.masks)] for s in (off, on)]
        assert counts[0] == counts[1], METHODS[r]
        for tree in (on.params, on.target_params, on.opt_state.inner_state.mu):
            for w, m in zip(jax.tree.leaves(tree), jax.tree.leaves(on.opt_state.masks)):
                assert np.all(w[~m] == 0.0), METHODS[r]
    for a, b in zip(jax.tree.leaves(at(state, 1).opt_state.masks), jax.tree.leaves(at(state, n + 1).opt_state.masks)):
        np.testing.assert_array_equal(a, b)  # static: the same mask throughout
    np.testing.assert_array_equal(metrics["actual_sparsity"][:n], metrics["actual_sparsity"][n:])
