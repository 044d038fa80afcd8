"""ResNet-18 for small images (He, Zhang, Ren & Sun, "Deep residual learning for image
recognition", CVPR 2016), in the CIFAR variant used by SSL papers (SimCLR, VICReg and
solo-learn's CIFAR recipes): a 3×3 stride-1 stem without max-pooling, then four stages of
two basic blocks (64, 128, 256, 512 channels × ``width``/64; stride 2 from stage 2),
global average pooling. About 11.2 M parameters at ``width=64``.

    block(h) = ReLU(BN(conv3×3(ReLU(BN(conv3×3(h))))) + shortcut(h))
"""

from __future__ import annotations

from torch import Tensor, nn

from genoise._checks import check_image_batch, check_int


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 conv-BN projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, h: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(h)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(h))


class ResNet18Small(nn.Module):
    """CIFAR-style ResNet-18: (B, in_channels, H, W) → (B, feature_dim) or class scores.

    Parameters
    ----------
    in_channels : int
        3 for CIFAR-10, 1 for MNIST / digits. Any image side works (global pooling);
        8×8 inputs end at 1×1 in the last stage.
    num_classes : int or None
        ``None`` (default): ``forward`` returns the pooled representation (the SSL
        backbone); an int adds a linear classifier.
    width : int
        Channels of the first stage (64 in the paper).

    Examples
    --------
    >>> backbone = ResNet18Small()
    >>> backbone(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 512])
    """

    def __init__(self, in_channels: int = 3, num_classes: int | None = None, width: int = 64) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("width", width)
        if num_classes is not None:
            check_int("num_classes", num_classes)
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, channels = [], width
        for k in range(4):
            out = width * 2**k
            stride = 1 if k == 0 else 2
            stages.append(nn.Sequential(BasicBlock(channels, out, stride), BasicBlock(out, out)))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.feature_dim = channels
        self.fc = nn.Linear(channels, num_classes) if num_classes is not None else None

    def features(self, x: Tensor) -> Tensor:
        """Pooled representation (B, feature_dim)."""
        check_image_batch("ResNet18Small", x, self.in_channels)
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        h = self.features(x)
        return self.fc(h) if self.fc is not None else h
