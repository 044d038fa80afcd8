"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998), the convolutional network of Section II.

Layout on a 32×32 input (MNIST's 28×28 digits are padded by 2 pixels, as in the paper):

    C1  6 maps 5×5 conv          32→28   params 6·(25+1)              =    156
    S2  2×2 subsampling          28→14   params 6·(1 coefficient+1 bias) =  12
    C3 16 maps 5×5 conv          14→10   params 60·25+16 (Table I)     =  1,516
    S4  2×2 subsampling          10→5    params 16·2                  =     32
    C5 120 maps 5×5 conv          5→1    params 120·(16·25+1)         = 48,120
    F6 84 units                          params 84·(120+1)            = 10,164
    output 10 units                      params 10·(84+1)             =    850

C1…F6 hold exactly the paper's 60,000 trainable parameters. Choices, stated:

* **C3 connectivity**: the paper's partial connection table (Table I: maps 0–5 see 3
  contiguous S2 maps, 6–11 see 4 contiguous, 12–14 see 4 non-contiguous, 15 sees all 6),
  stored compactly as 60 kernels → 1,516 parameters. ``c3_table=False`` gives the usual
  full connection, 16·(6·25+1) = 2,416 parameters.
* **Width** (``width=k``, default 1: the paper's): C1, C3 and C5 get k times the maps
  (6k, 16k, 120k); F6 keeps its 84 units. With the table, C3 is k groups side by side, group
  g's 16 maps connected by Table I to S2's maps 6g … 6g + 5 (a grouped convolution), so the
  table's sparsity and its symmetry breaking are kept; C5 sees all 16k maps. Parameters grow
  about as k² (C5): 0.22 M at k = 2 against 0.06 M.
* **Subsampling** S2/S4: the paper's unit is 2×2 sum × trainable coefficient + trainable
  bias, then the squashing function; we use the 2×2 *average* (a constant rescaling of
  the sum) times a per-map coefficient plus a per-map bias, then the activation.
* **Activation**: ``"tanh"`` (default) or ``"scaled_tanh"``, the paper's
  f(a) = A·tanh(S·a) with A = 1.7159, S = 2/3 (Appendix A); ``"relu"`` is the modern variant
  whose exact zeros event-driven inference can skip (:mod:`genoise.deploy.sparsity`).
* **Output layer**: a linear layer (10 scores, higher = more likely, for cross-entropy)
  instead of the paper's Euclidean RBF units y_i = Σ_j (x_j − w_ij)², which are energies
  (840 parameters). :meth:`LeNet5.features` returns the F6 output for anyone who wants RBF
  energies on top.
* **Input sizes**: ``image_size`` ≤ 32. Images are upsampled (bilinear) by the integer
  factor ⌊28 / image_size⌋ when it is ≥ 2, then zero-padded (centred) to 32×32. So 28×28
  MNIST is padded by 2 as in the paper, 32×32 is used as is, and scikit-learn's 8×8
  digits become 24×24 (×3) padded by 4 — a digit filling most of a 32×32 field, like
  MNIST's 20×20 digit box inside the paper's field.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genoise._checks import check_choice, check_image_batch, check_int

# Table I of the paper: for each of the 16 C3 maps, the S2 maps it is connected to.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class ScaledTanh(nn.Module):
    """f(a) = 1.7159 · tanh(2a/3), LeCun et al. 1998, Appendix A (f(±1) = ±1)."""

    def forward(self, a: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(a * (2.0 / 3.0))


class Subsampling(nn.Module):
    """S2/S4 of LeNet-5: 2×2 average pooling, then a per-map coefficient and bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SparseConnectedConv(nn.Module):
    """C3: a 5×5 convolution where output map o sees only the input maps ``table[o]``.

    Only the connected kernels are parameters (``weight`` is (connections, k, k)); the
    dense (out, in, k, k) kernel is scattered from them at each call, so the parameter
    count is exactly the paper's. With ``groups`` = g the table is repeated g times side by
    side: group j's ``len(table)`` output maps see input maps ``table[o] + j · in_channels``
    (``in_channels`` is per group), computed as one grouped convolution.
    """

    def __init__(
        self, in_channels: int, table: tuple[tuple[int, ...], ...], kernel_size: int = 5, groups: int = 1
    ) -> None:
        super().__init__()
        # the weight rows are ordered by group, then as the table (group 0 alone is the paper's)
        maps = [o for o, inputs in enumerate(table) for _ in inputs]
        out_index = [g * len(table) + o for g in range(groups) for o in maps]
        in_index = [i for inputs in table for i in inputs] * groups  # within the group's inputs
        self.groups = groups
        self.in_channels, self.out_channels, self.kernel_size = in_channels, len(table) * groups, kernel_size
        self.register_buffer("out_index", torch.tensor(out_index), persistent=False)
        self.register_buffer("in_index", torch.tensor(in_index), persistent=False)
        fan_in = torch.bincount(self.out_index).float()[self.out_index] * kernel_size**2
        bound = (1.0 / fan_in).sqrt().view(-1, 1, 1)  # PyTorch's default conv init, per-map fan-in
        self.weight = nn.Parameter((torch.rand(len(in_index), kernel_size, kernel_size) * 2 - 1) * bound)
        fan_in_map = torch.bincount(self.out_index).float() * kernel_size**2
        self.bias = nn.Parameter((torch.rand(self.out_channels) * 2 - 1) / fan_in_map.sqrt())

    def dense_weight(self) -> Tensor:
        """The (out, in per group, k, k) kernel with zeros where the table has no connection."""
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return dense.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias, groups=self.groups)


class LeNet5(nn.Module):
    """LeNet-5 of LeCun et al. (1998); see the module docstring for the layout and choices.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for MNIST/digits; C1 then has in_channels·25+1 weights per map).
    num_classes : int
        Output units (10 in the paper).
    image_size : int
        Side of the square input, ≤ 32 (28 for MNIST, 8 for scikit-learn digits).
    activation : {"tanh", "scaled_tanh", "relu"}
    c3_table : bool
        Use the paper's partial C3 connection table (default) or full connection.
    width : int
        Multiplier of the C1, C3 and C5 maps (1: the paper's; module docstring, "Width").

    Examples
    --------
    >>> net = LeNet5(image_size=8)
    >>> net(torch.rand(4, 1, 8, 8)).shape, net.features(torch.rand(4, 1, 8, 8)).shape
    (torch.Size([4, 10]), torch.Size([4, 84]))
    """

    feature_dim = 84

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 activation: str = "tanh", c3_table: bool = True, width: int = 1) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("width", width)
        check_int("num_classes", num_classes)
        check_int("image_size", image_size)
        if image_size > 32:
            raise ValueError(f"LeNet5 takes images of side <= 32 (the paper's field), got {image_size}")
        check_choice("activation", activation, ("tanh", "scaled_tanh", "relu"))
        self.in_channels, self.num_classes, self.image_size = in_channels, num_classes, image_size
        self.upsample = max(1, 28 // image_size) if image_size * 2 <= 28 else 1
        side = image_size * self.upsample
        before = (32 - side) // 2
        self.padding = (before, 32 - side - before, before, 32 - side - before)  # left, right, top, bottom

        self.width = width
        c1, c3, c5 = 6 * width, 16 * width, 120 * width
        self.c1 = nn.Conv2d(in_channels, c1, 5)
        self.s2 = Subsampling(c1)
        self.c3 = SparseConnectedConv(6, C3_TABLE, groups=width) if c3_table else nn.Conv2d(c1, c3, 5)
        self.s4 = Subsampling(c3)
        self.c5 = nn.Conv2d(c3, c5, 5)
        self.f6 = nn.Linear(c5, 84)
        self.output = nn.Linear(84, num_classes)
        # Every unit up to F6 squashes its weighted sum (Section II-B), subsampling included:
        # six squashing stages, one module each (graph tools such as pt2e quantisation pair an
        # operator with the module that called it, so a module is not reused).
        make = {"scaled_tanh": ScaledTanh, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        self.acts = nn.ModuleList(make() for _ in range(6))

    def to_field(self, x: Tensor) -> Tensor:
        """(B, C, image_size, image_size) → (B, C, 32, 32): upsample, then zero-pad."""
        check_image_batch("LeNet5", x, self.in_channels, self.image_size)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return F.pad(x, self.padding)

    def features(self, x: Tensor) -> Tensor:
        """The F6 representation, (B, C, image_size, image_size) → (B, 84)."""
        a1, a2, a3, a4, a5, a6 = self.acts
        h = a2(self.s2(a1(self.c1(self.to_field(x)))))
        h = a4(self.s4(a3(self.c3(h))))
        h = a5(self.c5(h)).flatten(1)
        return a6(self.f6(h))

    def forward(self, x: Tensor) -> Tensor:
        """Class scores (B, num_classes)."""
        return self.output(self.features(x))
