"""The sparse core inside your own optax training loop: RigL at 90% sparsity on a small
regression, with the sparse transform chained after a gradient clip as any optax transform.

    python examples/optax_loop.py [--steps 300]

Prints the loss as it trains, and at the end the optimizer-step count, each layer's active
fraction and how many masked weights are nonzero (always 0).
"""

import argparse

import jax
import jax.numpy as jnp
import optax

from purejaxsparse import sparse as sp
from purejaxsparse.nets import MLP


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    args = parser.parse_args(argv)

    # a teacher network to imitate: 8 inputs -> 2 outputs
    teacher = MLP(hidden=(32,), out_dim=2)
    teacher_params = teacher.init(jax.random.PRNGKey(10), jnp.zeros((1, 8)))

    net = MLP(hidden=(256, 256), out_dim=2)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 8)))
    spec = sp.SparseSpec.from_params(params)
    hp = sp.SparseHParams.make("rigl", sparsity=0.9, update_interval=50, end=int(args.steps * 0.75))
    params, masks = sp.init_sparse(jax.random.PRNGKey(1), spec, params, hp)
    tx = optax.chain(optax.clip_by_global_norm(1.0), sp.sparse(spec, optax.adam(3e-3)))
    opt_state = sp.with_masks(tx.init(params), masks)

    def loss_fn(p, x):
        return jnp.mean((net.apply(p, x) - teacher.apply(teacher_params, x)) ** 2)

    @jax.jit
    def train_step(key, params, opt_state):
        k_data, k_mask = jax.random.split(key)
        x = jax.random.normal(k_data, (64, 8))
        loss, grads = jax.value_and_grad(loss_fn)(params, x)
        updates, opt_state = tx.update(grads, opt_state, params, key=k_mask, hparams=hp)
        return optax.apply_updates(params, updates), opt_state, loss

    key = jax.random.PRNGKey(2)
    for step in range(args.steps):
        key, k = jax.random.split(key)
        params, opt_state, loss = train_step(k, params, opt_state)
        if step % max(1, args.steps // 6) == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {float(loss):.5f}")

    masks = sp.sparse_masks(opt_state)
    print(f"optimizer steps: {int(sp.sparse_count(opt_state))}")
    kernels = [layer["kernel"] for layer in masks["params"].values()]
    for name, k in zip(masks["params"], kernels):  # ERK: the small first and last layers stay dense
        print(f"{name}: {float(jnp.mean(k)):.3f} of its kernel active")
    active = sum(int(jnp.sum(k)) for k in kernels) / sum(k.size for k in kernels)
    print(f"all kernels: {active:.3f} active (target {1 - float(hp.sparsity):.3f})")
    off = jax.tree.map(lambda p, m: int(jnp.sum((p != 0) & ~m)), params, masks)
    print(f"masked weights that are nonzero: {sum(jax.tree.leaves(off))}")


if __name__ == "__main__":
    main()
