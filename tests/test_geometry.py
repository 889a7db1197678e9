"""The per-axis geometry (formulas.SlidingAxis / ScatterAxis), proven against torch: which input
index each tap of each window reads, where each input of a transposed conv scatters to, and the
inverses (smallest input, padding that fits, padding that gives a size)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcalc
from convcalc import formulas

torch = pytest.importorskip("torch")
F = torch.nn.functional

axes = st.tuples(
    st.integers(1, 12),  # size
    st.integers(1, 4),  # kernel
    st.integers(1, 3),  # stride
    st.integers(0, 3),  # padding
    st.integers(1, 3),  # dilation
)


@settings(max_examples=150, deadline=None)
@given(axes, st.data())
def test_conv_taps_read_what_torch_reads(axis, data):
    size, kernel, stride, padding, dilation = axis
    same = data.draw(st.booleans())  # padding='same': the odd pad goes on the right
    if same:
        stride = 1
    layer = convcalc.layer("Conv1d", in_channels=1, out_channels=1, kernel_size=kernel, stride=stride,
                           padding="same" if same else padding, dilation=dilation)
    (geometry,) = layer.geometry((1, size))
    padding = "same" if same else padding
    if geometry.output < 1:
        with pytest.raises(RuntimeError):
            F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride, padding=padding, dilation=dilation)
        return
    tap = data.draw(st.integers(0, kernel - 1))
    weight = torch.zeros(1, 1, kernel, dtype=torch.float64)
    weight[0, 0, tap] = 1
    signal = torch.arange(1, size + 1, dtype=torch.float64).view(1, 1, size)  # index + 1; padding reads 0
    out = F.conv1d(signal, weight, stride=stride, padding=padding, dilation=dilation)[0, 0].tolist()
    assert len(out) == geometry.output
    expected = [geometry.taps(i)[tap] + 1 if 0 <= geometry.taps(i)[tap] < size else 0 for i in range(geometry.output)]
    assert out == expected


@settings(max_examples=150, deadline=None)
@given(axes, st.booleans())
def test_pool_windows_read_what_torch_reads(axis, ceil_mode):
    size, kernel, stride, padding, dilation = axis
    padding = min(padding, kernel // 2)
    geometry = formulas.sliding_axis("L", size, kernel, stride, padding, padding, dilation, ceil_mode)
    signal = torch.arange(1, size + 1, dtype=torch.float64).view(1, 1, size)
    if geometry.output < 1:
        with pytest.raises(RuntimeError):
            F.max_pool1d(signal, kernel, stride, padding, dilation, ceil_mode)
        return
    out = F.max_pool1d(signal, kernel, stride, padding, dilation, ceil_mode)[0, 0].tolist()
    assert len(out) == geometry.output
    assert out == [max((t + 1 for t in geometry.taps(i) if 0 <= t < size), default=float("-inf")) for i in range(geometry.output)]
    assert geometry.uncovered == (0 if ceil_mode else formulas.uncovered(size, kernel, stride, padding, padding, dilation, geometry.output))


@settings(max_examples=150, deadline=None)
@given(axes, st.integers(0, 2), st.data())
def test_tconv_scatters_where_torch_writes(axis, output_padding, data):
    size, kernel, stride, padding, dilation = axis
    output_padding = min(output_padding, max(stride, dilation) - 1)
    geometry = formulas.scatter_axis("L", size, kernel, stride, padding, dilation, output_padding)
    if geometry.output < 1:
        with pytest.raises(RuntimeError):
            F.conv_transpose1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation)
        return
    index, tap = data.draw(st.integers(0, size - 1)), data.draw(st.integers(0, kernel - 1))
    signal = torch.zeros(1, 1, size, dtype=torch.float64)
    signal[0, 0, index] = 1
    weight = torch.zeros(1, 1, kernel, dtype=torch.float64)
    weight[0, 0, tap] = 1
    out = F.conv_transpose1d(signal, weight, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)[0, 0]
    assert len(out) == geometry.output
    target = geometry.targets(index)[tap]
    written = [i for i, v in enumerate(out.tolist()) if v]
    assert written == ([target] if 0 <= target < geometry.output else [])


@settings(max_examples=200, deadline=None)
@given(axes, st.booleans())
def test_smallest_input_is_the_smallest_that_fits(axis, ceil_mode):
    _, kernel, stride, padding, dilation = axis
    smallest = formulas.smallest_input(kernel, stride, padding, padding, dilation, ceil_mode)
    fits = [formulas.sliding_axis("L", n, kernel, stride, padding, padding, dilation, ceil_mode).output >= 1 for n in range(1, smallest + 1)]
    assert fits[-1] and not any(fits[:-1])


@settings(max_examples=200, deadline=None)
@given(axes, st.integers(1, 20))
def test_padding_for_gives_the_wanted_size(axis, want):
    size, kernel, _, _, dilation = axis
    geometry = formulas.sliding_axis("L", size, kernel, 1, 0, 0, dilation)
    found = geometry.padding_for(want)
    sizes = {p: formulas.conv_out(size, kernel, 1, p, p, dilation) for p in range(0, 40)}
    if found is None:
        assert want not in sizes.values()
    else:
        assert sizes[found] == want
        assert found == geometry.padding_to_fit() or sizes[found] >= 1


@settings(max_examples=200, deadline=None)
@given(axes, st.integers(0, 2), st.integers(-6, 6))
def test_tconv_adjust_changes_the_output_by_diff(axis, output_padding, diff):
    size, kernel, stride, padding, dilation = axis
    output_padding = min(output_padding, max(stride, dilation) - 1)
    geometry = formulas.scatter_axis("L", size, kernel, stride, padding, dilation, output_padding)
    found = geometry.adjust(diff)
    if found is not None:
        pad, op = found
        assert op < max(stride, dilation) and pad >= 0
        assert formulas.tconv_out(size, kernel, stride, pad, dilation, op) == geometry.output + diff


def test_every_layer_answers_from_its_geometry():
    conv = convcalc.layer("Conv2d", in_channels=1, out_channels=1, kernel_size=4, padding="same")
    axes = conv.geometry((1, 8, 9))
    assert [(a.name, a.pad_left, a.pad_right, a.output) for a in axes] == [("H", 1, 2, 8), ("W", 1, 2, 9)]
    assert conv.output_shape((1, 8, 9)) == (1, *(a.output for a in axes))
    pool = convcalc.layer("MaxPool2d", kernel_size=2, stride=2, padding=1, ceil_mode=True)
    assert [a.output for a in pool.geometry((1, 5, 5))] == [3, 3]
    tconv = convcalc.layer("ConvTranspose2d", in_channels=1, out_channels=1, kernel_size=3, stride=3, output_padding=1)
    assert [a.output for a in tconv.geometry((1, 3, 3))] == [10, 10]


def test_families_declare_what_they_can_do():
    """PRESERVES_SHAPE and SLIDING_WINDOW are declared by the families, and true."""
    from convcalc.layers import base, catalog

    for name in catalog.CATALOG:
        base.lookup(name)
    samples = {"Softmax": {"dim": 1}, "GLU": {}, "PReLU": {}, "Identity": {}, "ReLU": {}, "BatchNorm2d": {},
               "GroupNorm": {"num_groups": 2}, "LayerNorm": {"normalized_shape": [4, 4]}, "ChannelShuffle": {"groups": 2}}
    for type_name, kwargs in samples.items():
        layer = convcalc.layer(type_name, **kwargs).bind((1, 4, 4, 4))
        assert layer.PRESERVES_SHAPE == (layer.output_shape((1, 4, 4, 4)) == (1, 4, 4, 4)), type_name
    for _, cls in base._FOUND.values():
        assert cls.SLIDING_WINDOW == hasattr(cls, "geometry"), cls
