"""Sweep checkpoints with orbax: the whole batched training state after every chunk.

Saves are synchronous and atomic (orbax commits a finished checkpoint by renaming it), the two
newest are kept, so a kill at any moment leaves at least one complete checkpoint. The state is
stored as its flat list of non-empty leaves.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import orbax.checkpoint as ocp

logging.getLogger("absl").setLevel(logging.ERROR)


class SweepCheckpoints:
    """Checkpoints of one sweep directory, indexed by the number of chunks done."""

    def __init__(self, directory: Path):
        options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(Path(directory).absolute(), options=options,
                                             item_handlers=ocp.StandardCheckpointHandler())

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def save(self, chunks_done: int, state) -> None:
        self.manager.save(chunks_done, args=ocp.args.StandardSave(_stored_leaves(state)))
        self.manager.wait_until_finished()

    def saved_runs(self, chunks_done: int) -> int:
        """Leading (runs) dimension of the checkpoint: the run count padded for its device count."""
        meta = self.manager.item_metadata(chunks_done)
        tree = getattr(meta, "tree", meta)
        return int(tree["0"].shape[0])

    def restore(self, chunks_done: int, like):
        """State saved after `chunks_done` chunks, shaped and placed like `like` (arrays)."""
        leaves, treedef = jax.tree.flatten(like)
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                                _stored_leaves(like))
        stored = self.manager.restore(chunks_done, args=ocp.args.StandardRestore(abstract))
        return treedef.unflatten([stored.get(str(i), leaf) for i, leaf in enumerate(leaves)])

    def close(self) -> None:
        self.manager.close()


def _stored_leaves(state) -> dict:
    """The leaves worth storing, by flat index. orbax refuses zero-size arrays (Brax states hold
    some); they carry no data, so restore takes them from the freshly initialised state."""
    return {str(i): x for i, x in enumerate(jax.tree.leaves(state)) if x.size > 0}
