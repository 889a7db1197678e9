"""``convcalc draw``: every packaged example drawn in both styles, parsed back and checked as a
reader sees it (well-formed, every layer labelled, no text over other text, sane size), the
failing-model drawing, escaping, stdout, a torch module, and a real browser's rendering."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from convcalc import load_model
from convcalc.draw import Options, draw_layout, items_from_summary, to_svg
from convcalc.draw.layout import ASCENT, DESCENT, text_width
from convcalc.graph import ModelError

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"
EXAMPLES = sorted(MODELS.glob("*.yaml"))
NS = "{http://www.w3.org/2000/svg}"
VARIANTS = [
    ("layered", Options()),
    ("layered", Options(flat=True)),
    ("layered", Options(all_layers=True)),
    ("graph", Options()),
    ("graph", Options(all_layers=True)),
    ("graph", Options(direction="lr")),
]


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))  # raises on anything not well-formed


def texts_of(root: ET.Element) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Every <text>, with the box the monospace font gives it, read from the SVG's attributes."""
    found = []
    for el in root.iter(f"{NS}text"):
        text = el.text or ""
        x, y, size = float(el.get("x")), float(el.get("y")), float(el.get("font-size"))
        width = text_width(text, size)
        anchor = el.get("text-anchor", "start")
        x0 = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
        found.append((text, (x0, y - ASCENT * size, x0 + width, y + DESCENT * size)))
    return found


def overlapping(boxes: list[tuple[str, tuple[float, float, float, float]]], shrink: float = 0.0) -> list[tuple[str, str]]:
    pairs = []
    for i, (a, p) in enumerate(boxes):
        for b, q in boxes[i + 1 :]:
            if (
                p[0] + shrink < q[2] - shrink
                and q[0] + shrink < p[2] - shrink
                and p[1] + shrink < q[3] - shrink
                and q[1] + shrink < p[3] - shrink
            ):
                pairs.append((a, b))
    return pairs


def check_svg(svg: str, summary, *, all_layers: bool, style: str, failing=None) -> ET.Element:
    """The checks a reader's eye makes, done geometrically (``failing``: the node that fails)."""
    root = parse(svg)
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    assert 100 <= width <= 20_000 and 100 <= height <= 20_000, (width, height)
    texts = texts_of(root)
    words = [t for t, _ in texts]
    # every layer is named in the drawing, and every shape is there
    for row in summary.rows:
        assert any(row.type == w or w.startswith(row.type + " ") for w in words), f"{row.name} ({row.type}) is not labelled"
        if all_layers:
            assert shape_text(row.output_shape[1:]) in words, f"{row.name}'s shape is missing"
            if style == "graph":
                assert row.name in words
    assert shape_text(summary.input_shape[1:]) in words
    if failing is None:
        assert shape_text(summary.output_shape[1:]) in words
    else:
        assert "fails here" in words and any(w.startswith(failing.layer.type_name) for w in words)
    # no text over other text, all of it on the canvas
    assert overlapping(texts) == []
    for text, (x0, y0, x1, y1) in texts:
        assert 0 <= x0 and x1 <= width and 0 <= y0 and y1 <= height, f"{text!r} is off the canvas"
    for rect in root.iter(f"{NS}rect"):
        if rect.get("x") is not None:
            x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height
    return root


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize(("style", "options"), VARIANTS, ids=lambda v: v if isinstance(v, str) else "")
def test_every_example_draws_readably(path: Path, style: str, options: Options) -> None:
    try:
        summary, failing = load_model(str(path)).summary(), None
    except ModelError as error:  # broken_cnn: drawn up to the failing layer
        summary, failing = error.summary, error.node
    items = items_from_summary(summary, failing)
    svg = to_svg(draw_layout(items, style, Options(**{**options.__dict__, "title": summary.name})))
    check_svg(svg, summary, all_layers=options.all_layers, style=style, failing=failing)


def test_the_overlap_check_can_fail() -> None:
    """The geometric check sees text drawn over text (and the layout's own sweep agrees)."""
    from convcalc.draw.layout import Diagram, Label, overlaps

    labels = [
        Label(10, 20, "64×224×224", 11),
        Label(40, 24, "Conv2d", 10),
        Label(10, 60, "apart", 10),
    ]
    root = parse(to_svg(Diagram(200, 100, labels=labels)))
    assert overlapping(texts_of(root)) == [("64×224×224", "Conv2d")]
    assert [(a.text, b.text) for a, b in overlaps(labels)] == [("64×224×224", "Conv2d")]


def test_vgg_boxes_are_scaled_monotonically_and_both_ends_fit() -> None:
    """224×224×64 and 7×7×512 in one picture: taller map for larger H, thicker for more channels."""
    summary = load_model(str(MODELS / "vgg16.yaml")).summary()
    diagram = draw_layout(items_from_summary(summary), "layered", Options(all_layers=True))
    maps = {b.name: b for b in diagram.boxes if b.kind == "map"}
    rows = {r.name: r for r in summary.rows}
    pairs = [(rows[n].output_shape[1:], maps[n]) for n in maps if n in rows]
    for (sa, a), (sb, b) in zip(pairs, pairs[1:]):
        if sa[1] < sb[1]:
            assert a.h < b.h
        if sa[0] < sb[0]:
            assert a.w < b.w
    heights = [b.h for _, b in pairs]
    assert min(heights) >= 12 and max(heights) <= 200 and max(heights) > 3 * min(heights)


def test_cli_writes_the_file_and_says_so(cli, tmp_path: Path) -> None:
    out = tmp_path / "mnist.svg"
    code, stdout, stderr = cli("draw", MODELS / "mnist_cnn.yaml", "-o", out)
    assert (code, stdout) == (0, "")
    assert stderr.strip() == f"wrote {out}"
    summary = load_model(str(MODELS / "mnist_cnn.yaml")).summary()
    check_svg(out.read_text(encoding="utf-8"), summary, all_layers=False, style="layered")


def test_dash_writes_svg_to_stdout_only(cli) -> None:
    code, stdout, stderr = cli("draw", MODELS / "lenet5.yaml", "-o", "-", "--style", "graph", "--theme", "dark")
    assert code == 0 and stderr == ""
    root = parse(stdout)
    assert root.tag == f"{NS}svg"
    background = next(root.iter(f"{NS}rect"))
    assert background.get("fill") == "#1b1d21"


def test_input_and_batch_change_the_drawing(cli) -> None:
    code, stdout, _ = cli(
        "draw",
        MODELS / "mnist_cnn.yaml",
        "-o",
        "-",
        "--input",
        "1x56x56",
        "--batch",
        "8",
    )
    assert code == 0
    words = [t for t, _ in texts_of(parse(stdout))]
    assert "1×56×56" in words and "16×28×28" in words  # conv 3 → 54, pool 2/2 p1 → 28
    assert any("batch 8" in w for w in words)
    code, _, stderr = cli("draw", MODELS / "mnist_cnn.yaml", "-o", "-", "--input", "28x28")
    assert code == 2 and "--input" in stderr


BROKEN = """\
name: Broken <CNN> & "friends" </text><script>
input: [1, 28, 28]
layers:
  - Conv2d: {out: 16, k: 3}
  - ReLU
  - {Conv2d: {out: 32, k: 5}, name: c2}
  - Flatten
  - Linear: {in_features: 1568, out: 10}
  - Linear: {out: 5}
"""


@pytest.mark.parametrize("style", ["layered", "graph"])
def test_a_broken_spec_draws_up_to_the_failing_layer_in_red(cli, tmp_path: Path, style: str) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN, encoding="utf-8")
    out = tmp_path / "broken.svg"
    code, stdout, stderr = cli("draw", spec, "-o", out, "--style", style)
    _, _, model_err = cli("model", spec)
    assert code == 1 and stdout == ""
    diagnosis = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert diagnosis == [model_err.strip()]  # the same one-line error as `model`
    assert "in_features = 15488" in diagnosis[0]
    root = parse(out.read_text(encoding="utf-8"))  # well-formed despite the name
    words = [t for t, _ in texts_of(root)]
    assert any(w.startswith('Broken <CNN> & "friends" </text><script>') for w in words)
    assert not list(root.iter(f"{NS}script"))
    assert "32×22×22" in words and "15488" in words  # the rows before the failure
    assert "fails here" in words
    failed = [el for el in root.iter() if el.get("stroke") == "#c62828"]
    assert failed, "the failing layer is not marked red"
    assert overlapping(texts_of(root)) == []
    # nothing after the failing layer is drawn: its Linear(5) never ran
    assert "5" not in words


def test_a_spec_error_writes_nothing(cli, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: x\ninput: [1, 8, 8]\nlayers:\n  - Conv2dd: {out: 4, k: 3}\n",
        encoding="utf-8",
    )
    out = tmp_path / "bad.svg"
    code, _, stderr = cli("draw", spec, "-o", out)
    assert code == 1 and not out.exists()
    assert len(stderr.strip().splitlines()) == 1 and "Conv2d" in stderr


def test_png_without_cairosvg_is_a_one_line_error(cli, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError):
        pass
    else:
        pytest.skip("CairoSVG is installed")
    out = tmp_path / "net.png"
    code, stdout, stderr = cli("draw", MODELS / "mnist_cnn.yaml", "-o", out)
    assert code == 1 and stdout == "" and not out.exists()
    assert len(stderr.strip().splitlines()) == 1 and "pip install 'convcalc[draw]'" in stderr


def test_png_with_cairosvg(cli, tmp_path: Path) -> None:
    pytest.importorskip("cairosvg")
    out = tmp_path / "net.png"
    code, _, _ = cli("draw", MODELS / "mnist_cnn.yaml", "-o", out)
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unwritable_output_is_a_usage_error(cli, tmp_path: Path) -> None:
    code, _, stderr = cli("draw", MODELS / "mnist_cnn.yaml", "-o", tmp_path / "no" / "such" / "dir.svg")
    assert code == 2 and "cannot write" in stderr and "Traceback" not in stderr


NET = """\
import torch.nn as nn

class Net(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, classes))

    def forward(self, x):
        return self.head(self.features(x))
"""


def test_a_torch_module_draws_with_the_shapes_torch_gives(cli, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    (tmp_path / "net.py").write_text(NET, encoding="utf-8")
    code, stdout, stderr = cli(
        "draw",
        f"{tmp_path / 'net.py'}:Net",
        "--input",
        "1x28x28",
        "--kwargs",
        '{"classes": 7}',
        "-o",
        "-",
        "--all-layers",
    )
    assert code == 0, stderr
    words = [t for t, _ in texts_of(parse(stdout))]
    sys.path.insert(0, str(tmp_path))
    try:
        import net  # the oracle: the real module's outputs
    finally:
        sys.path.remove(str(tmp_path))
    model = net.Net(classes=7)
    x = torch.zeros(1, 1, 28, 28)
    for layer in [*model.features, *model.head]:
        x = layer(x)
        assert shape_text(tuple(x.shape[1:])) in words
    assert "7" in words
    code, _, stderr = cli("draw", f"{tmp_path / 'net.py'}:Net", "-o", "-")
    assert code == 2 and "--input" in stderr


def test_draw_is_not_imported_at_start_up() -> None:
    code = "import sys; from convcalc.cli import run; run(['conv', '--in', '227', '--k', '11']); print(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(done.stdout.split())
    assert not {m for m in modules if m.startswith("convcalc.draw") or m == "convcalc.commands.draw"}


def test_the_pure_modules_import_none_of_torch_rich_click() -> None:
    code = "import sys, convcalc.draw.layout, convcalc.draw.svg, convcalc.draw.model; print(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert not {"torch", "rich", "click"} & set(done.stdout.split())


# -- a real browser ---------------------------------------------------------------------------
BROWSER = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
SEEN = ["lenet5", "alexnet", "vgg16", "resnet18", "unet"]


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "profile"
    command = [
        BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", *args,
    ]  # fmt: skip
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
@pytest.mark.parametrize("style", ["layered", "graph"])
@pytest.mark.parametrize("stem", SEEN)
def test_rendered_in_a_browser(tmp_path: Path, stem: str, style: str) -> None:
    """Chromium renders the SVG to PNG (the size the SVG asks for), and the text boxes it really
    measures (getBBox, with the font it really used) overlap nowhere."""
    summary = load_model(str(MODELS / f"{stem}.yaml")).summary()
    svg = to_svg(draw_layout(items_from_summary(summary), style, Options(title=summary.name)))
    path = tmp_path / f"{stem}.svg"
    path.write_text(svg, encoding="utf-8")
    root = parse(svg)
    width, height = (int(float(root.get(k))) + 1 for k in ("width", "height"))
    png = tmp_path / f"{stem}_{style}.png"
    _chromium(
        tmp_path,
        f"--window-size={width},{height}",
        f"--screenshot={png}",
        path.as_uri(),
    )
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")) == (
        width,
        height,
    )

    page = tmp_path / "measure.html"
    body = svg.split("\n", 1)[1]
    page.write_text(
        f'<!DOCTYPE html><html><body style="margin:0">{body}<pre id="out"></pre><script>'
        "document.getElementById('out').textContent = JSON.stringify([...document.querySelectorAll('svg text')]"
        ".map(t => { const b = t.getBBox(); return [t.textContent, b.x, b.y, b.x + b.width, b.y + b.height]; }));"
        "</script></body></html>",
        encoding="utf-8",
    )
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the browser did not run the measuring script"
    import html

    measured = [(t, (x0, y0, x1, y1)) for t, x0, y0, x1, y1 in json.loads(html.unescape(found.group(1)))]
    assert len(measured) == len(texts_of(root))
    assert overlapping(measured, shrink=0.5) == []
    for (text, real), (_, estimate) in zip(measured, texts_of(root)):  # the layout's font metric holds
        assert real[2] - real[0] <= (estimate[2] - estimate[0]) * 1.02 + 1, text


def test_the_readme_picture_is_what_the_command_draws(cli, tmp_path: Path) -> None:
    """docs/mnist_cnn.svg (shown in the README) is the current output of its README command."""
    out = tmp_path / "mnist_cnn.svg"
    assert cli("draw", MODELS / "mnist_cnn.yaml", "-o", out)[0] == 0
    committed = MODELS.parent.parent / "docs" / "mnist_cnn.svg"
    assert committed.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    readme = (MODELS.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "convcalc draw examples/models/mnist_cnn.yaml -o docs/mnist_cnn.svg" in readme


def test_a_packaged_example_by_name(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("draw", "vgg16", "-o", "-")
    assert code == 0, stderr
    assert "512×7×7" in [t for t, _ in texts_of(parse(stdout))]
    code, _, stderr = cli("draw", "mnist_cnn")  # the default file: the name, .svg
    assert code == 0 and (tmp_path / "mnist_cnn.svg").exists() and "wrote mnist_cnn.svg" in stderr
    code, _, stderr = cli("draw", "vgg61")  # neither a file nor a packaged name: usage (exit 2)
    assert code == 2 and "vgg16" in stderr and len(stderr.strip().splitlines()) == 1



@pytest.mark.parametrize(
    ("spec", "labels"),
    [
        ("input: [2, 100]\nlayers:\n  - Conv1d: {out: 8, k: 5, s: 2}\n  - Flatten\n", ["2×100", "8×48", "384"]),  # C×L
        (
            "input: [3, 16, 112, 112]\nlayers:\n  - Conv3d: {out: 64, k: 3, p: 1}\n  - MaxPool3d: {k: [1, 2, 2]}\n",
            ["3×16×112×112", "64×16×56×56"],  # C×D×H×W
        ),
    ],
)
@pytest.mark.parametrize("style", ["layered", "graph"])
def test_one_and_three_dimensional_maps_are_labelled_with_every_axis(cli, tmp_path: Path, spec: str, labels: list[str], style: str) -> None:
    path = tmp_path / "net.yaml"
    path.write_text("name: dims\n" + spec, encoding="utf-8")
    code, stdout, stderr = cli("draw", path, "-o", "-", "--style", style)
    assert code == 0, stderr
    words = [t for t, _ in texts_of(parse(stdout))]
    for label in labels:
        assert label in words
    assert overlapping(texts_of(parse(stdout))) == []


def test_kernels_are_written_between_the_boxes() -> None:
    """AlexNet's figure: 11×11 stride 4, then 5×5, then 3×3 … over the arrows; --all-layers adds the pools."""
    summary = load_model(str(MODELS / "alexnet.yaml")).summary()
    diagram = draw_layout(items_from_summary(summary), "layered", Options())
    kernels = [label.text for label in sorted(diagram.labels, key=lambda l: l.x) if label.role == "kernel"]
    assert kernels == ["11×11 s4", "5×5", "3×3", "3×3", "3×3"]
    boxes = [b for b in diagram.boxes if b.kind == "map"]
    for label in (l for l in diagram.labels if l.role == "kernel"):  # each between two boxes' edges
        x0, _, x1, _ = label.bbox()
        assert any(a.x + a.w + a.dx <= x0 and x1 <= b.x for a, b in zip(boxes, boxes[1:]))
    every = draw_layout(items_from_summary(summary), "layered", Options(all_layers=True))
    assert [l.text for l in every.labels if l.role == "kernel"].count("3×3 s2") == 3  # the three MaxPool2d(3, 2)


def test_a_torch_module_that_raises_is_one_line_and_no_file(cli, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "bad.py").write_text(
        "import torch.nn as nn\n\nclass Bad(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(10, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n",
        encoding="utf-8",
    )
    out = tmp_path / "bad.svg"
    code, stdout, stderr = cli("draw", f"{tmp_path / 'bad.py'}:Bad", "--input", "3x8x8", "-o", out)
    assert code == 1 and stdout == "" and not out.exists()
    assert len(stderr.strip().splitlines()) == 1 and "fc" in stderr and "Traceback" not in stderr
