"""The names of the sparse-training choices, in id order: one jax-free definition that the
sparse core (traced ids index these tuples) and the analysis (ordering, colours) share."""

METHODS = ("dense", "dense_width", "static", "set", "rigl", "prune")
"""The built-in sparse-training methods, in id order (`hp.method` holds the index); methods
registered with `sparse.register_method` follow them (sparse/methods.py declares them all)."""

DISTRIBUTIONS = ("uniform", "er", "erk")
"""Per-layer sparsity distributions, in id order (`hp.distribution` holds the index)."""

START_MODES = ("delay_updates", "dense_then_cut")
"""What `start > 0` means for static/SET/RigL, in id order (`hp.start_mode` holds the index):
delay_updates: sparse random mask from initialisation, topology updates begin at `start`
(JaxPruner, which Ganaie et al. 2024 used); dense_then_cut: dense training until `start`, then
each layer cut to its share by magnitude."""
