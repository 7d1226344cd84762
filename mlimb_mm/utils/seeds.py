"""Seed derivation shared by hooks, the training-set pass and losses (no
dependency on the rest of the package, so that any layer may import it)."""
import numpy as np


def derive_seed(seed: int, *keys: int) -> int:
    """A generator seed in ``[0, 2**63)`` derived from a run seed and integer
    keys (epoch, a salt naming the stream, a rank ...): independent streams
    for different keys, the same on every machine."""
    entropy = [int(seed) % (1 << 63)] + [int(k) for k in keys]
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])
