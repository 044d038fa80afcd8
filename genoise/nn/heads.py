"""Projection heads for joint-embedding self-supervised methods.

SimCLR (Chen et al., ICML 2020), Barlow Twins (Zbontar et al., ICML 2021) and VICReg
(Bardes, Ponce & LeCun, ICLR 2022) put a small MLP, the *projector* (VICReg calls it
the expander), between the backbone representation h and the embedding z on which the
loss is computed:

    z = W_L ∘ (ReLU ∘ BN ∘ W_{L-1}) ∘ ... ∘ (ReLU ∘ BN ∘ W_1) (h)
"""

from __future__ import annotations

from torch import Tensor, nn

from genoise._checks import check_int, check_vector_batch


class Projector(nn.Sequential):
    """``nn.Sequential`` of the projector layers, checking its input is (B, in_dim)."""

    def __init__(self, in_dim: int, out_dim: int, *modules: nn.Module) -> None:
        super().__init__(*modules)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, h: Tensor) -> Tensor:
        check_vector_batch("projector", h, self.in_dim)
        return super().forward(h)


def projector(in_dim: int, hidden: int, out_dim: int, layers: int = 3, bn: bool = True) -> Projector:
    """An MLP head ``in_dim -> hidden -> ... -> out_dim`` with ``layers`` linear layers.

    Every linear layer but the last is followed by BatchNorm1d (if ``bn``) and ReLU, as in
    the VICReg expander (8192-8192-8192 there; smaller widths suit CPU runs). ``layers=1``
    is a single linear map. Input (B, in_dim), output (B, out_dim).

    Examples
    --------
    >>> head = projector(512, 2048, 2048)        # VICReg-style, 3 layers
    >>> head(torch.randn(8, 512)).shape
    torch.Size([8, 2048])
    """
    check_int("in_dim", in_dim)
    check_int("hidden", hidden)
    check_int("out_dim", out_dim)
    check_int("layers", layers)
    modules: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        modules.append(nn.Linear(width, hidden, bias=not bn))
        if bn:
            modules.append(nn.BatchNorm1d(hidden))
        modules.append(nn.ReLU(inplace=True))
        width = hidden
    modules.append(nn.Linear(width, out_dim))
    return Projector(in_dim, out_dim, *modules)
