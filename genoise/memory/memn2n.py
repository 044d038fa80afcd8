"""End-to-end memory network (Sukhbaatar, Szlam, Weston, Fergus, "End-To-End Memory
Networks", NeurIPS 2015), fully batched.

One hop k (eq. 1–3 of the paper), with the soft read of :mod:`genoise.memory.kv`::

    m_i = Σ_j l_j ⊙ A^k x_ij + T_A^k(i)         memory keys   (B, M, d)
    c_i = Σ_j l_j ⊙ C^k x_ij + T_C^k(i)         memory values (B, M, d)
    p   = softmax(m_iᵀ u^k)  (identity under linear start)
    o^k = Σ_i p_i c_i ;   u^{k+1} = u^k + o^k   (or H u^k + o^k, layer-wise tying)
    â   = softmax(W u^{K+1})

with the question embedding u¹ = Σ_j l_j ⊙ B q_j. Encodings (§4.1): bag of words (l_j = 1)
or position encoding (PE). The paper's text writes PE as l_kj = (1 − j/J) − (k/d)(1 − 2j/J)
with J the words of *each* sentence (``encoding="pe-paper"``); the authors' released code
(MemN2N-babi-matlab, ``build_model.m``) uses l_kj = 1 + 4 (k − (d+1)/2)(j − (J+1)/2) / (dJ)
with one J for every sentence — the longest sentence or question plus one slot for the
time word, whose embedding is scaled by l_{·J} (``encoding="pe"``, the default). The two
are not equivalent in practice: with the text's form basic induction (task 16) is never
learned (0 of 11 runs here), with the code's form it is in most runs.
Temporal encoding: T_A, T_C indexed by the slot i, slot 0 = most recent sentence.
Empty slots (``empty_slots``): in the released code a memory holds ``memory_size`` slots
and the unused ones are nil sentences with a zero embedding, so they stay in the softmax
with score 0 and add nothing to o (``"zero"``, default); ``"masked"`` drops them from the
softmax (eq. 1 read over the real memories only).
Weight tying (§2.2): *adjacent* A^{k+1} = C^k, B = A¹, Wᵀ = C^K, T_A^{k+1} = T_C^k;
*layer-wise* A^k = A, C^k = C, and u^{k+1} = H u^k + o^k.
Random noise (RN, §4.2): during training, ~``noise`` of the time slots are empty
memories: each real memory's time index is shifted by the number of gaps drawn before it
(Bernoulli(noise) per slot, cumulative, clipped to the last index).

Inputs use a sentence table: ``sentences (S, L)`` token ids (0 = nil word; row 0 is the
empty sentence) and ``memories (B, M)`` row ids (0 = empty slot); see
:mod:`genoise.data.babi`. Each unique sentence of a batch is embedded once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_ndim, check_positive
from genoise.memory.kv import soft_read

ENCODINGS = ("bow", "pe", "pe-paper")
TYING = ("adjacent", "layerwise")
EMPTY_SLOTS = ("zero", "masked")


def position_encoding(sentence_len: int, dim: int, form: str = "paper", *,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """PE matrix (J, d). ``form="paper"``: l[j-1, k-1] = (1 − j/J) − (k/d)(1 − 2j/J)
    (Sukhbaatar et al. §4.1); ``form="code"``: l = 1 + 4 (k − (d+1)/2)(j − (J+1)/2) / (dJ)
    (the authors' released ``build_model.m``)."""
    if sentence_len < 1 or dim < 1:
        raise ValueError(f"sentence_len and dim must be >= 1, got {sentence_len}, {dim}")
    check_choice("form", form, ("paper", "code"))
    j = torch.arange(1, sentence_len + 1, dtype=dtype)[:, None]
    k = torch.arange(1, dim + 1, dtype=dtype)[None, :]
    J = float(sentence_len)
    if form == "code":
        return 1 + 4 * (k - (dim + 1) / 2) * (j - (J + 1) / 2) / (dim * J)
    return (1 - j / J) - (k / dim) * (1 - 2 * j / J)


def position_weights(tokens: Tensor, dim: int, encoding: str = "pe-paper") -> Tensor:
    """Per-word weights (…, L, d) for ``tokens`` (…, L): the paper-text PE of each
    sentence's own length J (or 1 for bag of words), 0 on padding. ``"pe"`` is kept as a
    name of the same paper-text form for existing callers; :class:`MemN2N`'s ``"pe"`` is
    the released code's form (:meth:`MemN2N.word_weights`)."""
    check_choice("encoding", encoding, ENCODINGS)
    present = (tokens > 0).float()[..., None]  # (…, L, 1)
    if encoding == "bow":
        return present.expand(*tokens.shape, dim)
    J = present.sum(dim=-2, keepdim=True).clamp_min(1.0)  # (…, 1, 1)
    j = torch.arange(1, tokens.shape[-1] + 1, dtype=torch.float32, device=tokens.device)[:, None]
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=tokens.device) / dim
    return ((1 - j / J) - k * (1 - 2 * j / J)) * present


def random_noise_time(mask: Tensor, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Time indices (B, M) with ~``noise`` empty memories inserted (RN); mask (B, M) bool.
    The draws are made on ``generator``'s device (a CUDA generator for CUDA masks)."""
    batch, slots = mask.shape
    time = torch.arange(slots, device=mask.device).expand(batch, slots)
    if noise <= 0:
        return time
    device = generator.device if generator is not None else mask.device
    gaps = (torch.rand(batch, slots, generator=generator, device=device).to(mask.device) < noise) & mask
    return (time + gaps.long().cumsum(dim=1)).clamp_max(slots - 1)


class MemN2N(nn.Module):
    """End-to-end memory network (module docstring).

    Parameters
    ----------
    vocab_size : V (index 0 = nil word); memory_size : M (time slots)
    embedding_dim : d; hops : K
    encoding : "bow" | "pe" (released code's PE) | "pe-paper" (the text's PE); temporal : add T_A / T_C
    tying : "adjacent" | "layerwise"; init_std : N(0, init_std²) initialisation (paper: 0.1)
    sentence_length : J of ``encoding="pe"`` without the time word (the longest sentence or
        question); default: the wider of the sentence and query tensors at each call
    empty_slots : "zero" (in the softmax with score 0, as the released code) | "masked"

    Examples
    --------
    >>> model = MemN2N(vocab_size=20, memory_size=5, embedding_dim=8, hops=3)
    >>> sentences = torch.tensor([[0, 0], [3, 4], [5, 6]])   # row 0 = empty sentence
    >>> logits = model(torch.tensor([[7, 8]]), sentences, torch.tensor([[2, 1, 0, 0, 0]]))
    >>> logits.shape
    torch.Size([1, 20])
    """

    def __init__(self, vocab_size: int, memory_size: int = 50, embedding_dim: int = 50, hops: int = 3,
                 *, encoding: str = "pe", temporal: bool = True, tying: str = "adjacent",
                 init_std: float = 0.1, generator: torch.Generator | None = None,
                 sentence_length: int | None = None, empty_slots: str = "zero") -> None:
        super().__init__()
        check_choice("encoding", encoding, ENCODINGS)
        check_choice("tying", tying, TYING)
        check_choice("empty_slots", empty_slots, EMPTY_SLOTS)
        if sentence_length is not None:
            check_int("sentence_length", sentence_length, min=1)
        for name, value in (("vocab_size", vocab_size), ("memory_size", memory_size),
                            ("embedding_dim", embedding_dim), ("hops", hops)):
            check_int(name, value, min=1)
        check_positive("init_std", init_std)
        self.vocab_size, self.memory_size, self.embedding_dim, self.hops = (
            vocab_size, memory_size, embedding_dim, hops)
        self.encoding, self.temporal, self.tying = encoding, temporal, tying
        self.sentence_length, self.empty_slots = sentence_length, empty_slots

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * init_std)

        # adjacent: K+1 matrices E_0..E_K with A^k = E_{k-1}, C^k = E_k, B = E_0, W = E_K.
        # layer-wise: [A, C, B, W] (A, C shared by every hop) and H.
        n_words = hops + 1 if tying == "adjacent" else 4
        self.words = nn.ParameterList([param(vocab_size, embedding_dim) for _ in range(n_words)])
        n_time = hops + 1 if tying == "adjacent" else 2
        self.time = nn.ParameterList([param(memory_size, embedding_dim) for _ in range(n_time)])
        self.H = nn.Linear(embedding_dim, embedding_dim, bias=False) if tying == "layerwise" else None
        if self.H is not None:
            with torch.no_grad():
                self.H.weight.copy_(torch.randn(embedding_dim, embedding_dim, generator=generator) * init_std)

    def _roles(self, hop: int) -> tuple[int, int]:
        """Indices in ``self.words`` / ``self.time`` of A^hop and C^hop (hop from 0)."""
        return (hop, hop + 1) if self.tying == "adjacent" else (0, 1)

    @property
    def query_embedding(self) -> Tensor:
        return self.words[0] if self.tying == "adjacent" else self.words[2]

    @property
    def output_embedding(self) -> Tensor:
        return self.words[self.hops] if self.tying == "adjacent" else self.words[3]

    def pe_length(self, *token_tensors: Tensor) -> int:
        """J of ``encoding="pe"``: ``sentence_length`` (or the widest token tensor) plus
        one position for the time word when the model is temporal (released code)."""
        words = self.sentence_length or max(t.shape[-1] for t in token_tensors)
        return words + int(self.temporal)

    def word_weights(self, tokens: Tensor, J: int | None = None, *,
                     dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor | None]:
        """Per-word weights (a, b) of each sentence (N, L): every PE weight splits as
        l_kj = a_j + (k/d)·b_j, so Σ_j l_j ⊙ E x_j = Σ_j a_j E x_j + (k/d) ⊙ Σ_j b_j E x_j:
        two weighted bags of words (``embedding_bag``, fast on CPU).
        "pe-paper": a_j = 1 − j/J, b_j = 2j/J − 1, J = words in the sentence;
        "pe": a_j = 1 − 2(d+1)(j − c)/(dJ), b_j = 4(j − c)/J, c = (J+1)/2, J fixed;
        bag of words: a_j = 1, no b. Padding (token 0) gets weight 0. Weights in ``dtype``."""
        present = (tokens > 0).to(dtype)
        if self.encoding == "bow":
            return present, None
        j = torch.arange(1, tokens.shape[1] + 1, dtype=dtype, device=tokens.device)
        if self.encoding == "pe":
            J = float(J if J is not None else self.pe_length(tokens))
            d, c = self.embedding_dim, (J + 1) / 2
            return (1 - 2 * (d + 1) * (j - c) / (d * J)) * present, (4 * (j - c) / J) * present
        J = present.sum(dim=1, keepdim=True).clamp_min(1.0)
        return (1 - j / J) * present, (2 * j / J - 1) * present

    def time_scale(self, J: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Scale of the temporal embeddings: the released code's time word sits at position J
        and gets its PE weight l_{·J} under ``encoding="pe"``; 1 otherwise."""
        if self.encoding != "pe":
            return torch.ones(self.embedding_dim, dtype=dtype)
        return position_encoding(J, self.embedding_dim, form="code", dtype=dtype)[-1]

    def attention(self, scores: Tensor, mask: Tensor, linear: bool) -> Tensor:
        """Memory weights p (B, M) from scores (B, M): softmax (or identity under linear
        start); empty slots get p = 0 on the output side, and in the softmax either score 0
        (``empty_slots="zero"``) or no share at all (``"masked"``)."""
        if linear:
            return scores * mask
        if self.empty_slots == "zero":
            return torch.softmax(scores.masked_fill(~mask, 0.0), dim=1) * mask
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1).nan_to_num(0.0)

    def embed(self, matrix: Tensor, tokens: Tensor, J: int | None = None) -> Tensor:
        """Σ_j l_j ⊙ E x_j for every row of ``tokens`` (N, L) → (N, d') (l: PE or 1);
        ``matrix`` (V, d') may hold several d-wide embeddings side by side."""
        a, b = self.word_weights(tokens, J, dtype=matrix.dtype)
        out = F.embedding_bag(tokens, matrix, per_sample_weights=a, mode="sum")
        if b is None:
            return out
        scale = self._pe_scale(out).repeat(matrix.shape[1] // self.embedding_dim)
        return out + scale * F.embedding_bag(tokens, matrix, per_sample_weights=b, mode="sum")

    def forward(self, queries: Tensor, sentences: Tensor, memories: Tensor, *, time: Tensor | None = None,
                linear: bool = False, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Answer logits (B, V).

        queries (B, Lq) token ids; sentences (S, L) token ids; memories (B, M') row ids of
        ``sentences`` with M' ≤ memory_size, 0 = empty; time (B, M') temporal indices
        (default: the slot number); linear: linear-start attention (no softmax in hops).
        ``return_attention`` also returns the attention of every hop (K, B, M')."""
        check_ndim("queries", queries, 2)
        check_ndim("sentences", sentences, 2)
        check_ndim("memories", memories, 2)
        if memories.shape[0] != queries.shape[0]:
            raise ValueError(f"batch sizes differ (queries: {queries.shape[0]}, "
                             f"memories: {memories.shape[0]})")
        if memories.shape[1] > self.memory_size:
            raise ValueError(f"memories has {memories.shape[1]} slots > memory_size={self.memory_size}")
        mask = memories > 0
        if time is None:
            time = torch.arange(memories.shape[1], device=memories.device).expand_as(memories)
        J = self.pe_length(sentences, queries)
        rows, inverse = torch.unique(memories, return_inverse=True)
        tokens = sentences[rows]  # each distinct sentence of the batch once: (U, L)
        # Factored read: scores and outputs are computed per distinct sentence / time index
        # and gathered / scattered as (B, M) scalars — no (B, M, d) tensor is built.
        # Equal to the plain soft read of eq. 1–2 (see ``forward_reference``).
        n_mem = len(self.time)
        words = torch.cat([self.words[i] for i in range(n_mem)], dim=1)  # (V, n·d)
        emb = self.embed(words, tokens, J).view(-1, n_mem, self.embedding_dim)  # (U, n, d)
        times = torch.cat(list(self.time), dim=1).view(-1, n_mem, self.embedding_dim)  # (M, n, d)
        times = times * self.time_scale(J, times.dtype).to(times.device)
        u = self.embed(self.query_embedding, queries, J)
        attention = []
        for hop in range(self.hops):
            a_index, c_index = self._roles(hop)
            scores = (u @ emb[:, a_index].T).gather(1, inverse)  # (B, M')
            if self.temporal:
                scores = scores + (u @ times[:, a_index].T).gather(1, time)
            p = self.attention(scores, mask, linear)
            attention.append(p)
            o = p.new_zeros(p.shape[0], emb.shape[0]).scatter_add(1, inverse, p) @ emb[:, c_index]
            if self.temporal:
                o = o + p.new_zeros(p.shape[0], times.shape[0]).scatter_add(1, time, p) @ times[:, c_index]
            u = (self.H(u) if self.H is not None else u) + o
        logits = u @ self.output_embedding.T
        return (logits, torch.stack(attention)) if return_attention else logits

    def _pe_scale(self, like: Tensor) -> Tensor:
        """k/d for k = 1..d, in ``like``'s dtype and device."""
        d = self.embedding_dim
        return torch.arange(1, d + 1, dtype=like.dtype, device=like.device) / d

    def forward_reference(self, queries: Tensor, sentences: Tensor, memories: Tensor, *,
                          time: Tensor | None = None, linear: bool = False) -> Tensor:
        """The same network written plainly with (B, M, d) memories and :func:`soft_read`
        (slower; kept as the readable definition and as a test reference)."""
        mask = memories > 0
        if time is None:
            time = torch.arange(memories.shape[1], device=memories.device).expand_as(memories)
        J = self.pe_length(sentences, queries)
        sides = []
        for index in range(len(self.time)):
            emb = self.embed(self.words[index], sentences, J)[memories]
            scale = self.time_scale(J, emb.dtype).to(emb.device)
            sides.append(emb + (self.time[index] * scale)[time] * mask[..., None]
                         if self.temporal else emb)
        u = self.embed(self.query_embedding, queries, J)
        for hop in range(self.hops):
            a_index, c_index = self._roles(hop)
            # "zero" empty slots: zero vectors inside the softmax (no mask); "masked": excluded.
            slot_mask = None if self.empty_slots == "zero" and not linear else mask
            o = soft_read(u, sides[a_index], sides[c_index], slot_mask, linear=linear)
            u = (self.H(u) if self.H is not None else u) + o
        return u @ self.output_embedding.T
