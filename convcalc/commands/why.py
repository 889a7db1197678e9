"""``convcalc why``: explain a pasted PyTorch shape error (argument or stdin), optionally located in a model."""

from __future__ import annotations

import sys

import click

from ..options import SIZE, json_option

#: Bytes read from stdin at most (a longer stream is cut there); of them, the tail is scanned.
MAX_READ = 64 << 20


def read_stdin(limit: int = MAX_READ) -> tuple[str, bool]:
    """The text piped in (its tail, as :func:`convcalc.why.clean` reads it) and whether it was cut."""
    from ..why import MAX_CHARS

    stream = sys.stdin.buffer
    kept = b""
    total = 0
    while total < limit:
        chunk = stream.read(min(1 << 20, limit - total))
        if not chunk:
            return kept.decode("utf-8", errors="replace"), False
        total += len(chunk)
        kept = (kept + chunk)[-4 * MAX_CHARS :]
    return kept.decode("utf-8", errors="replace"), bool(stream.read(1))


def locate(target: str, input_shape: tuple[int, ...] | None) -> str:
    """Run the model (a spec walk, or the user's module under verify) and say where it fails, in one line."""
    from .verify import _check_python_file, _is_python_target

    if _is_python_target(target):
        if input_shape is None:
            raise click.UsageError("--model with a Python model needs --input, one sample's C×H×W (e.g. --input 1x28x28)")
        _check_python_file(target)  # before torch is imported (seconds): a missing file, a FIFO, a device
        from .. import verify as engine

        engine.import_torch(freeze_gc=True)
        module = engine.load_python_model(target)
        try:
            engine.verify_python(module, input_shape, name=target.rpartition(":")[2])
        except engine.VerifyError as error:
            return error.message
        return f"{target} runs on input {'x'.join(map(str, input_shape))} without an error (the message comes from another input or code)"
    from ..graph import ModelError
    from ..packaged import load_named_model

    model = load_named_model(target)  # a spec file, or a packaged example's name, as for model and verify
    try:
        model.summary(input_shape=input_shape)
    except ModelError as error:
        return error.message
    shape = "x".join(map(str, input_shape or model.input_shape))
    return f"{target} fits together with input {shape} (the message comes from another input or code)"


@click.command()
@click.argument("message", nargs=-1)
@click.option("--explain", is_flag=True, help="Show the rule with the message's numbers put in.")
@click.option("--model", "model_target", default=None, metavar="SPEC|file.py:Net",
              help="Run this model (a spec, or your nn.Module with torch) to name the layer and file:line.")
@click.option("--input", "input_shape", type=SIZE, default=None, help="With --model: one sample's C×H×W (no batch).")
@json_option
@click.pass_context
def why(ctx: click.Context, message: tuple[str, ...], explain: bool, model_target: str | None,
        input_shape: tuple[int, ...] | None, as_json: bool) -> None:
    """Explain a PyTorch shape error: what its numbers are, which rule broke, and the number that fixes it.

    MESSAGE is torch's error text; without it (or with -) the text comes from stdin, and the last
    torch error in it is explained. Unrecognised text exits 1 and says so: nothing is guessed.

    It knows (torch 2's wording, and older torch's): mat1 and mat2 shapes cannot be multiplied
    (Linear in_features); expected input[...] to have C channels (Conv); kernel size can't be
    greater than actual input size; output size is too small (pooling); sizes of tensors must
    match (torch.cat); the size of tensor a must match the size of tensor b (+, *); shape '[...]'
    is invalid for input of size N (view/reshape); running_mean should contain n elements
    (BatchNorm); expected 3D (unbatched) or 4D (batched) input to conv2d; output padding must be
    smaller than either stride or dilation.

    \b
      convcalc why "mat1 and mat2 shapes cannot be multiplied (1x3872 and 1568x32)"
      python train.py 2>&1 | convcalc why
      convcalc why --explain "Calculated padded input size per channel: (3 x 3). Kernel size: (5 x 5)."
      convcalc why --model net.py:Net --input 1x28x28 --json
    """
    from ..render import why as render
    from ..render.output import Output
    from ..why import UnrecognisedMessage
    from ..why import explain as explain_text

    text = " ".join(message)
    cut = False
    if not message or text == "-":
        if sys.stdin.isatty() and model_target is None:
            raise click.UsageError("give torch's message as an argument, or pipe it in: python train.py 2>&1 | convcalc why")
        text, cut = ("", False) if sys.stdin.isatty() else read_stdin()
    if input_shape is not None and model_target is None:
        raise click.UsageError("--input applies with --model")
    located = locate(model_target, input_shape) if model_target is not None else None
    try:
        result = explain_text(text or (located or ""))
    except UnrecognisedMessage:
        if located is None or text:
            raise
        from ..errors import ConvcalcError

        raise ConvcalcError(located) from None  # the model's own diagnosis is the answer
    if cut:
        render.note(f"read the first {MAX_READ >> 20} MiB of stdin only")
    render.explanation(result, Output.for_stdout(as_json=as_json), explain=explain, model=located)
