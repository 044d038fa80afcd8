"""Memory-augmented networks: a soft key-value memory with dense and nearest-neighbour
top-k reads (:mod:`genoise.memory.kv`) and end-to-end memory networks
(:mod:`genoise.memory.memn2n`) trained on bAbI (:mod:`genoise.memory.training`)."""

from genoise.memory.kv import (
    INDEX_KINDS,
    KeyValueMemory,
    attention_weights,
    build_index,
    soft_read,
    topk_read,
)
from genoise.memory.memn2n import MemN2N, position_encoding, position_weights, random_noise_time

__all__ = [
    "INDEX_KINDS",
    "KeyValueMemory",
    "MemN2N",
    "attention_weights",
    "build_index",
    "position_encoding",
    "position_weights",
    "random_noise_time",
    "soft_read",
    "topk_read",
]
