"""``convcalc.summary``: torchinfo's call shapes, numbers proven against torch and torchinfo, specs without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import convcalc
from convcalc.graph import ModelError
from convcalc.verify import VerifyError

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode


def _flop_macs(model: nn.Module, *args: object, **kwargs: object) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*args, **kwargs)
    return counter.get_total_flops() // 2


def _numel(model: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(16, 8, 3, stride=2), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(8 * 7 * 7, 10),
    )


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 8, 3)
        self.meta = nn.Linear(10, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.image(x).flatten(1).sum(1, keepdim=True) + self.meta(y)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.out = nn.Linear(16, 100, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids))


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.conv(x), 1))


def test_single_input_matches_torch_and_torchinfo() -> None:
    torchinfo = pytest.importorskip("torchinfo")
    model, size = _cnn(), (2, 3, 16, 16)
    result = convcalc.summary(model, size)  # positional, as torchinfo
    theirs = torchinfo.summary(model, input_size=size, verbose=0)
    assert result.total_params == _numel(model) == theirs.total_params
    assert result.trainable_params == _numel(model, trainable=True) == theirs.trainable_params
    assert result.total_mult_adds == _flop_macs(model, torch.zeros(size))
    # torchinfo adds the bias terms (one per output element of Conv2d/Linear); convcalc excludes them
    biases = 2 * 16 * 16 * 16 + 2 * 8 * 7 * 7 + 2 * 10
    assert theirs.total_mult_adds - result.total_mult_adds == biases
    assert result.ok is True and result.verdict.startswith("✓")
    real = model(torch.zeros(size))
    assert tuple(result.all_rows[-1].output_shape) == tuple(real.shape)
    assert result.as_dict()["totals"]["params"] == _numel(model)


def test_frozen_parameters_are_not_trainable() -> None:
    torchinfo = pytest.importorskip("torchinfo")
    model = _cnn()
    for p in model[0].parameters():
        p.requires_grad_(False)
    result = convcalc.summary(model, (1, 3, 16, 16))
    assert result.trainable_params == _numel(model, trainable=True) == torchinfo.summary(model, (1, 3, 16, 16), verbose=0).trainable_params
    assert result.total_params - result.trainable_params == 16 * 3 * 9 + 16


def test_several_inputs_as_sizes_and_as_data() -> None:
    model = TwoInputs()
    x, y = torch.zeros(1, 3, 8, 8), torch.zeros(1, 10)
    expected = _flop_macs(model, x, y)
    for result in (
        convcalc.summary(model, [(1, 3, 8, 8), (1, 10)]),
        convcalc.summary(model, input_data=[x, y]),
        convcalc.summary(model, input_data={"x": x, "y": y}),
    ):
        names = [c.name for c in result.all_rows]
        assert names[:2] == ["image", "meta"]
        shapes = {c.name: tuple(c.output_shape) for c in result.all_rows}
        assert shapes["image"] == tuple(model.image(x).shape)
        assert shapes["meta"] == tuple(model.meta(y).shape)
        assert result.total_params == _numel(model)
        assert result.total_mult_adds == expected
        assert result.totals.input_mb == (x.numel() + y.numel()) * 4 / 1024**2  # both inputs, not the first only


def test_dict_input_reaches_forward_by_name() -> None:
    model = TwoInputs()
    x, y = torch.zeros(1, 3, 8, 8), torch.zeros(3, 10)  # y's batch differs: only keywords can route it
    result = convcalc.summary(model, input_data={"y": y, "x": x})
    meta = next(c for c in result.all_rows if c.name == "meta")
    assert tuple(meta.input_shape) == (3, 10)
    assert result.total_mult_adds == _flop_macs(model, x=x, y=y)


def test_tied_weights_count_once() -> None:
    torchinfo = pytest.importorskip("torchinfo")
    model = Tied()
    result = convcalc.summary(model, (1, 5), dtypes=[torch.long])
    assert result.total_params == _numel(model) == 1600
    # torchinfo 1.8 counts the shared matrix once per module holding it: a documented difference
    assert torchinfo.summary(model, (1, 5), dtypes=[torch.long], verbose=0).total_params == 3200
    assert result.total_mult_adds == _flop_macs(model, torch.zeros(1, 5, dtype=torch.long))


def test_failing_model_raises_the_one_line_diagnosis(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(VerifyError) as caught:
        convcalc.summary(Broken(), (1, 3, 8, 8))
    message = str(caught.value)
    assert "\n" not in message
    assert "'fc'" in message and "in_features: 288" in message
    # no torch traceback chained under it: the notebook shows this line, not torch's internals
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)
    assert capsys.readouterr() == ("", "")


def test_invalid_spec_raises_with_the_rows_before_it() -> None:
    with pytest.raises(ModelError) as caught:
        convcalc.summary("broken_cnn")
    assert caught.value.summary.rows  # the rows up to the failing layer
    assert "\n" not in caught.value.message


def test_arguments_are_checked() -> None:
    with pytest.raises(convcalc.SpecError, match="nn.Module"):
        convcalc.summary(object(), (1, 3))
    with pytest.raises(convcalc.SpecError, match="input_size"):
        convcalc.summary(_cnn())
    with pytest.raises(convcalc.SpecError, match="not a shape"):
        convcalc.summary(_cnn(), (1, -3, 16, 16))
    with pytest.raises(convcalc.SpecError, match="max_memory"):
        convcalc.summary(_cnn(), (10**6, 3, 224, 224))
    with pytest.raises(convcalc.SpecError, match="batch and 3"):
        convcalc.summary("mnist_cnn", (1, 28, 28))


def test_depth_folds_rows_into_their_parent() -> None:
    model = _cnn()
    model[2].append(nn.BatchNorm2d(8))  # a block whose rows all hold parameters
    full = convcalc.summary(model, (1, 3, 16, 16), depth=None)
    folded = convcalc.summary(model, (1, 3, 16, 16), depth=1)
    assert [c.name for c in full.rows] == ["0", "1", "2.0", "2.1", "2.2", "3", "4"]
    assert [c.name for c in folded.rows] == ["0", "1", "2", "3", "4"]
    block = folded.rows[2]
    assert block.type == "Sequential"
    assert block.params == _numel(model[2])
    assert block.macs == _flop_macs(model[2], torch.zeros(1, 16, 16, 16))
    assert tuple(block.output_shape) == tuple(model[:3](torch.zeros(1, 3, 16, 16)).shape)
    assert block.confirmed is True
    assert folded.totals == full.totals and folded.as_dict() == full.as_dict()
    assert convcalc.summary(model, (1, 3, 16, 16), depth=0).rows == []
    spec = convcalc.summary("resnet18", depth=1)
    assert "layer1" in [r.name for r in spec.rows] and all("." not in r.name for r in spec.rows)
    assert sum(r.params for r in spec.rows) == spec.total_params


def test_a_folded_block_with_an_unknown_layer_is_not_a_check_mark() -> None:
    class Mystery(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2

    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), Mystery()))
    assert convcalc.summary(model, (1, 3, 8, 8), depth=1).rows[0].confirmed is None


def test_printing_is_the_plain_table_and_nothing_is_printed_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    result = convcalc.summary(_cnn(), (1, 3, 16, 16))
    assert capsys.readouterr() == ("", "")
    text = str(result)
    assert text.splitlines()[0].startswith("Sequential: input 1×3×16×16")
    assert "Total params:" in text and "\x1b" not in text and repr(result) == text
    convcalc.summary("mnist_cnn", verbose=1)
    printed = capsys.readouterr().out
    assert "MNIST CNN" in printed and "55,338" in printed


def test_as_dict_is_the_json_document() -> None:
    from convcalc.cli import main

    run = CliRunner().invoke(main, ["model", "mnist_cnn", "--json"])
    assert run.exit_code == 0
    assert convcalc.summary("mnist_cnn").as_dict() == json.loads(run.output)


def test_html_is_well_formed_and_escapes_user_text(tmp_path: object) -> None:
    model = nn.Sequential()
    model.add_module("<b>&x", nn.Conv2d(3, 4, 3))
    html = convcalc.summary(model, (1, 3, 8, 8))._repr_html_()
    ET.fromstring(html)
    assert "&lt;b&gt;&amp;x" in html and "<b>&x" not in html and "✓" in html
    spec = os.path.join(str(tmp_path), "evil.yaml")
    with open(spec, "w", encoding="utf-8") as handle:
        handle.write('name: "<script>alert(1)</script>"\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n')
    html = convcalc.summary(spec)._repr_html_()
    ET.fromstring(html)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_rich_console_renders_the_terminal_table() -> None:
    import io

    from rich.console import Console

    for result in (convcalc.summary(_cnn(), (1, 3, 16, 16)), convcalc.summary("mnist_cnn")):
        buffer = io.StringIO()
        Console(file=buffer, width=120).print(result)
        text = buffer.getvalue()
        assert "Conv2d" in text and "Total params" in text and f"{result.total_params:,}" in text


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
"""


def test_specs_need_no_torch(tmp_path: object) -> None:
    spec = os.path.join(str(tmp_path), "tiny.yaml")
    with open(spec, "w", encoding="utf-8") as handle:
        handle.write("name: tiny\ninput: [1, 8, 8]\nlayers:\n  - Conv2d: {out: 2, k: 3}\n  - Flatten\n  - Linear: {out: 3}\n")
    code = BLOCK_TORCH + textwrap.dedent(
        f"""
        import json, convcalc
        assert "torch" not in sys.modules
        a = convcalc.summary("mnist_cnn")
        b = convcalc.summary({spec!r}, (4, 1, 10, 10))
        c = convcalc.summary(convcalc.load_model({spec!r}))
        str(a); a._repr_html_(); b.as_dict()
        try:
            convcalc.summary("mnist_cnn", input_data=[1])
        except convcalc.SpecError:
            pass
        assert "torch" not in sys.modules
        print(json.dumps([a.total_params, a.total_mult_adds, b.total_params, list(b.summary.input_shape), c.total_params, a.ok]))
        """
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(convcalc.__file__))))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    params, macs, tiny, shape, loaded, ok = json.loads(run.stdout)
    mnist = convcalc.load_model(os.path.join(os.path.dirname(convcalc.__file__), "data", "models", "mnist_cnn.yaml")).summary()
    assert (params, macs) == (mnist.totals.params, mnist.totals.macs) and ok is None
    # tiny on 4×1×10×10: Conv2d 1→2 k3 (20 params), Linear 2·8·8 → 3 (387 params), as torch counts them
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    assert tiny == _numel(net) and shape == [4, 1, 10, 10]
    assert loaded == _numel(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)))


def test_import_convcalc_stays_torch_free() -> None:
    code = BLOCK_TORCH + "import convcalc\nassert callable(convcalc.summary)\nassert 'torch' not in sys.modules\nassert 'convcalc.summarize' not in sys.modules\n"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(convcalc.__file__))))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, timeout=60)
    assert run.returncode == 0, run.stderr


def test_readme_notebook_example_prints_what_the_readme_shows(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    after = readme.split("<!-- summary-example", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    shown = after.split("```text\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  the repository's own README
    printed = capsys.readouterr().out
    version = re.compile(r"torch \d+\.\d+\S*")
    # The memory estimate counts what estimating on meta left resident in this process (torch._dynamo's
    # import: ~75 MiB in a fresh process, already paid when an earlier test imported it), so it is
    # compared as a number above verify's fixed 128 MiB, not as text.
    estimate = re.compile(r"(Memory estimate \(convcalc\): +)([\d.]+) MiB")
    found = estimate.search(printed)
    assert found and float(found.group(2)) >= 128, printed
    def same(text: str) -> str:
        return estimate.sub(r"\1… MiB", version.sub("torch", text))
    assert same(printed) == same(shown)


def test_the_header_names_every_input() -> None:
    """Several inputs: the header shows each one's shape, not the first one's only."""
    model = TwoInputs()
    text = str(convcalc.summary(model, [(1, 3, 8, 8), (1, 10)]))
    assert text.splitlines()[0].startswith("TwoInputs: inputs 1×3×8×8, 1×10 (float32)")
    data = convcalc.summary(model, input_data={"x": torch.zeros(1, 3, 8, 8), "y": torch.zeros(2, 10)}).as_dict()
    assert data["input_shapes"] == [[1, 3, 8, 8], [2, 10]]
