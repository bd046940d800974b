"""Checkpoints round-trip every leaf, including zero-size ones (Brax states carry some), and one
run's leaves are read by key path."""

import jax
import jax.numpy as jnp
import numpy as np

from purejaxsparse.store import SweepCheckpoints, SweepDir, picked_by


def test_round_trip_with_zero_size_leaves(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "empty": jnp.zeros((2, 0)), "k": jnp.uint32(7),
             "nested": (jnp.ones(3, bool), jnp.zeros((0,), jnp.int32))}
    ckpt = SweepCheckpoints(tmp_path / "c")
    ckpt.save(1, state)
    ckpt.save(2, {**state, "w": state["w"] + 1})
    ckpt.save(3, {**state, "w": state["w"] + 2})
    assert ckpt.latest() == 3
    like = {**state, "w": jnp.zeros((2, 3))}
    back = ckpt.restore(3, like)
    ckpt.close()
    np.testing.assert_array_equal(back["w"], state["w"] + 2)
    assert back["empty"].shape == (2, 0) and back["nested"][1].shape == (0,)
    assert int(back["k"]) == 7 and bool(back["nested"][0].all())
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if p.name.isdigit()) == ["2", "3"]  # two kept


def test_restore_run_picks_leaves_by_key_path_not_by_object(tmp_path):
    """DQN's params and target_params start as the same arrays: asking for one reads that one."""
    w = jax.ShapeDtypeStruct((2, 3), jnp.float32)
    shapes = {"params": {"w": w}, "target_params": {"w": w}, "buffer": jax.ShapeDtypeStruct((2, 5), jnp.float32)}
    store = SweepDir(tmp_path)
    with store.checkpoints(shapes) as checkpoints:
        checkpoints.save(1, {"params": {"w": jnp.arange(6.0).reshape(2, 3)},
                             "target_params": {"w": -jnp.arange(6.0).reshape(2, 3)}, "buffer": jnp.ones((2, 5))})
    done, state = store.restore_run(shapes, picked_by(lambda s: s["target_params"], shapes), 1)
    assert done == 1 and state["params"]["w"] is None and state["buffer"] is None
    np.testing.assert_array_equal(state["target_params"]["w"], [-3.0, -4.0, -5.0])
    _, state = store.restore_run(shapes, picked_by(lambda s: s["params"], shapes), 0)
    assert state["target_params"]["w"] is None and state["buffer"] is None
    np.testing.assert_array_equal(state["params"]["w"], [0.0, 1.0, 2.0])
    _, state = store.restore_run(shapes, lambda path: path[0].key == "buffer", 0)  # a rule on the field name
    assert state["params"]["w"] is None and state["target_params"]["w"] is None
    np.testing.assert_array_equal(state["buffer"], np.ones(5))
