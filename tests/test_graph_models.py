"""The example graph models against hand-written torch twins of torchvision's ResNet-18/50,
MobileNetV2 and a U-Net: parameter totals (the published numbers), every row's output shape and
parameters (forward hooks, matched by module path), and total MACs (FlopCounterMode ÷ 2).

torchvision is not a dependency: the modules below mirror its BasicBlock, Bottleneck and
InvertedResidual (same module paths, same parameters). They differ only where a torchvision
module is reused or an operation is a call in ``forward``: each ReLU use is its own module
(relu, relu2, relu3), and ``out += identity`` / ``torch.cat`` / ``flatten`` are modules
(``add``, ``cat``, ``flatten``) so that a hook sees every row of the spec.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from convcalc.graph import load_model  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "..", "examples", "models")


class Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Cat(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1)


# -- ResNet (torchvision.models.resnet) -----------------------------------------------------


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def downsample(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample(cin, planes, stride)
        self.add = Add()
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu2(self.add(out, identity))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        planes = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.downsample = downsample(cin, planes, stride)
        self.add = Add()
        self.relu3 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(self.add(out, identity))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for number in range(count):
                stride = 2 if index > 0 and number == 0 else 1
                blocks.append(block(cin, planes, stride))
                cin = planes * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


# -- MobileNetV2 (torchvision.models.mobilenetv2) -------------------------------------------


def conv_norm_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision.ops.Conv2dNormActivation with BatchNorm2d and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = round(cin * expand)
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_norm_act(cin, hidden, k=1))
        layers += [
            conv_norm_act(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        if self.use_res_connect:
            self.add = Add()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add(self.conv(x), x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        features: list[nn.Module] = [conv_norm_act(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in self.SETTING:
            for number in range(n):
                features.append(InvertedResidual(cin, c, s if number == 0 else 1, t))
                cin = c
        features.append(conv_norm_act(cin, 1280, k=1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


# -- U-Net ----------------------------------------------------------------------------------


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))


class UNet(nn.Module):
    def __init__(self, channels: int = 1, classes: int = 2) -> None:
        super().__init__()
        widths = (64, 128, 256, 512)
        cin = channels
        for level, width in enumerate(widths, start=1):
            setattr(self, f"enc{level}", DoubleConv(cin, width))
            setattr(self, f"pool{level}", nn.MaxPool2d(2))
            cin = width
        self.bottleneck = DoubleConv(512, 1024)
        for level, width in reversed(list(enumerate(widths, start=1))):
            setattr(self, f"up{level}", nn.ConvTranspose2d(width * 2, width, 2, stride=2))
            setattr(self, f"cat{level}", Cat())
            setattr(self, f"dec{level}", DoubleConv(width * 2, width))
        self.head = nn.Conv2d(64, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in range(1, 5):
            x = getattr(self, f"enc{level}")(x)
            skips.append(x)
            x = getattr(self, f"pool{level}")(x)
        x = self.bottleneck(x)
        for level in range(4, 0, -1):
            up = getattr(self, f"up{level}")(x)
            x = getattr(self, f"dec{level}")(getattr(self, f"cat{level}")(skips[level - 1], up))
        return self.head(x)


# -- the comparison -------------------------------------------------------------------------

CASES: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), 11_689_512),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), 25_557_032),
    "mobilenet_v2": (MobileNetV2, 3_504_872),
    "unet": (UNet, 31_036_546),  # milesial/Pytorch-UNet's 31,037,698 with 3 input channels
}


def leaf_outputs(module: nn.Module, shape: tuple[int, ...]) -> tuple[dict[str, tuple[int, ...]], int]:
    """Every leaf module's output shape by path (one call each), and FlopCounterMode's flops;
    the model's own output under ``""``."""
    from torch.utils.flop_counter import FlopCounterMode

    seen: dict[str, tuple[int, ...]] = {}
    for name, child in module.named_modules():
        if name and not list(child.children()):
            def hook(_: nn.Module, __: object, out: torch.Tensor, name: str = name) -> None:
                assert name not in seen, f"{name} runs twice; give each use its own module"
                seen[name] = tuple(out.shape)

            child.register_forward_hook(hook)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        seen[""] = tuple(module(torch.zeros(shape, device="meta")).shape)
    return seen, counter.get_total_flops()


@pytest.mark.parametrize("spec", list(CASES))
def test_example_model_matches_torch(spec: str) -> None:
    build, published = CASES[spec]
    model = load_model(os.path.join(MODELS, f"{spec}.yaml"))
    summary = model.summary()
    with torch.device("meta"):
        twin = build().eval()
    torch_params = sum(p.numel() for p in twin.parameters())
    assert torch_params == published
    assert summary.totals.params == published
    assert summary.totals.trainable_params == published

    outputs, flops = leaf_outputs(twin, summary.input_shape)
    assert summary.output_shape == outputs.pop("")
    rows = {row.name: row for row in summary.rows}
    assert set(rows) == set(outputs), f"rows without a module: {set(rows) - set(outputs)}; modules without a row: {set(outputs) - set(rows)}"
    assert list(rows) == list(outputs)  # rows in torch's execution order
    modules = dict(twin.named_modules())
    for row in summary.rows:
        assert row.output_shape == outputs[row.name], row.name
        assert row.params == sum(p.numel() for p in modules[row.name].parameters()), row.name
    assert summary.totals.macs == flops // 2


@pytest.mark.parametrize(("spec", "size"), [("resnet18", 97), ("resnet50", 64), ("mobilenet_v2", 45), ("unet", 48)])
def test_other_input_sizes_match_torch(spec: str, size: int) -> None:
    """Small and odd inputs (strided layers round down) give the same shapes as torch."""
    model = load_model(os.path.join(MODELS, f"{spec}.yaml"))
    channels = model.input_shape[0]
    summary = model.summary(batch=2, input_shape=(channels, size, size))
    with torch.device("meta"):
        twin = CASES[spec][0]().eval()
    outputs, _ = leaf_outputs(twin, (2, channels, size, size))
    for row in summary.rows:
        assert row.output_shape == outputs[row.name], row.name


def test_rows_are_in_execution_order_with_block_paths() -> None:
    rows = load_model(os.path.join(MODELS, "resnet50.yaml")).summary().rows
    names = [row.name for row in rows]
    assert names[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert names.index("layer1.0.downsample.0") < names.index("layer1.0.add") < names.index("layer1.1.conv1")
    assert [n for n in names if n.startswith("layer3.") and n.endswith(".conv1")] == [f"layer3.{i}.conv1" for i in range(6)]
    add = rows[names.index("layer2.0.add")]
    assert add.inputs == ("layer2.0.bn3", "layer2.0.downsample.1")
    for row in rows:  # every input is computed before it is used
        assert all(source == "input" or names.index(source) < row.index for source in row.inputs)


def test_receptive_field_follows_the_largest_path_and_stops_at_upsampling() -> None:
    rows = {row.name: row for row in load_model(os.path.join(MODELS, "resnet18.yaml")).summary().rows}
    add = rows["layer2.0.add"]
    main, shortcut = rows["layer2.0.bn2"].receptive_field, rows["layer2.0.downsample.1"].receptive_field
    assert main is not None and shortcut is not None and main[0].size > shortcut[0].size
    assert add.receptive_field == main
    assert rows["fc"].receptive_field is None  # Flatten/Linear: not a sliding window
    unet = {row.name: row for row in load_model(os.path.join(MODELS, "unet.yaml")).summary().rows}
    assert unet["bottleneck.conv2"].receptive_field is not None
    assert unet["bottleneck.conv2"].receptive_field[0].size == 140  # 4 levels of 2 convs + 4 pools
    assert unet["up4"].receptive_field is None and unet["cat4"].receptive_field is None
