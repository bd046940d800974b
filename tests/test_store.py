"""Checkpoints round-trip every leaf, including zero-size ones (Brax states carry some)."""

import jax.numpy as jnp
import numpy as np

from purejaxsparse.store import SweepCheckpoints


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
