"""Multi-layer perceptron: the default network for vectors (2-D toys, embeddings, energy
heads).

    h_0 = x,   h_{l+1} = dropout(act(norm(W_l h_l + b_l))),   out = W_L h_L + b_L
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from genoise._checks import check_choice, check_int, check_positive

ACTIVATIONS = ("relu", "silu", "tanh", "elu")
NORMS = (None, "batch", "layer")


def make_activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of :data:`ACTIVATIONS`)."""
    check_choice("activation", name, ACTIVATIONS)
    return {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}[name]()


class MLP(nn.Module):
    """Fully connected network ``in_dim -> hidden[0] -> ... -> hidden[-1] -> out_dim``.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths. Inputs (B, in_dim); inputs (B, ...) whose trailing
        sizes multiply to ``in_dim`` (e.g. images) are flattened first.
    hidden : sequence of int
        Hidden widths (may be empty: a linear map).
    activation : {"relu", "silu", "tanh", "elu"}
    norm : {None, "batch", "layer"}
        Normalisation after each hidden linear layer, before the activation.
    dropout : float in [0, 1)
        Dropout after each hidden activation.

    Examples
    --------
    >>> net = MLP(2, [64, 64], 1, activation="silu")
    >>> net(torch.randn(5, 2)).shape
    torch.Size([5, 1])
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, activation: str = "relu",
                 norm: str | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_int("in_dim", in_dim)
        check_int("out_dim", out_dim)
        for width in hidden:
            check_int("hidden width", width)
        check_choice("activation", activation, ACTIVATIONS)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of None, 'batch', 'layer'; got {norm!r}")
        check_positive("dropout", dropout, allow_zero=True)
        if dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {dropout}")
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = []
        width_in = in_dim
        for width in hidden:
            layers.append(nn.Linear(width_in, width))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width_in = width
        layers.append(nn.Linear(width_in, out_dim))
        self.net = nn.Sequential(*layers)

    @property
    def feature_dim(self) -> int:
        return self.out_dim

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_dim) or (B, ...) with prod(...) = in_dim  ->  (B, out_dim)."""
        if x.ndim > 2 and x[0].numel() == self.in_dim:
            x = x.flatten(1)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"MLP expects input of shape (B, {self.in_dim}), got {tuple(x.shape)}")
        return self.net(x)
