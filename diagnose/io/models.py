"""Load a model for evaluation by what the file holds, not by its extension.

Recognized (first bytes and archive entries decide):
- TorchScript archive (`torch.jit.save`): a zip with `<name>/code/` and `constants.pkl`;
- `torch.export` program (`torch.export.save`, `.pt2`): a zip with `<name>/archive_format`;
- `torch.save` zip or legacy pickle holding a state dict, a training checkpoint that wraps one
  (`{"state_dict": ...}` as Lightning writes, `{"model": ...}`, `{"model_state_dict": ...}`), or a
  whole pickled module (only with `trust_pickle`);
- `.safetensors`: 8-byte little-endian header length, then a JSON header.

Everything except `trust_pickle=True` is read with `torch.load(weights_only=True)`, which refuses to
run code stored in the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import pickle
import re
import struct
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeGuard

import torch

from diagnose.exceptions import ModelLoadError, UsageError
from diagnose.io.digest import fingerprint_file, sha256_file

FORMATS = ("torchscript", "export", "state_dict", "checkpoint", "safetensors", "pickle", "arch")
# Keys under which training loops store the weights inside a checkpoint dict, most specific first.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
# Prefixes wrappers add to parameter names: Lightning (`model.`), DataParallel/DDP (`module.`),
# torch.compile (`_orig_mod.`).
_PREFIXES = ("model.", "module.", "_orig_mod.", "net.")

_CONVERT = (
    "convert it once where the model's class is importable: "
    "torch.save(model.state_dict(), 'weights.pt') and pass --arch, or "
    "torch.jit.save(torch.jit.script(model), 'model.pt'); or pass --trust-pickle if you trust the file"
)


@dataclass
class LoadedModel:
    """A module ready for inference. module(x) -> logits (N, C), or (N,) / (N, 1) for binary or regression."""

    module: torch.nn.Module
    format: str
    path: Path | None
    trainable: bool

    @cached_property
    def sha256(self) -> str | None:
        """The model file's sha256 (None for a fresh --arch model), read on first use: only a manifest
        with a full digest needs it, and hashing a 400 MB state dict took a third of its load."""
        return sha256_file(self.path) if self.path is not None else None

    @cached_property
    def fingerprint(self) -> str | None:
        """The model file's sampled fingerprint (io.digest; None for a fresh --arch model)."""
        return fingerprint_file(self.path) if self.path is not None else None


def detect_format(path: Path) -> str:
    """'torchscript' | 'export' | 'torch_zip' | 'legacy_pickle' | 'safetensors', from the bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = path.stat().st_size
            if len(head) == 8 and not head.startswith(b"PK"):
                (n,) = struct.unpack("<Q", head)
                if 2 <= n <= size - 8:
                    first = fh.read(1)
                    if first == b"{":
                        return "safetensors"
    except PermissionError:
        raise ModelLoadError(f"{path}: expected a readable model file, got permission denied; check its permissions (ls -l {path})") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: expected a readable model file, got {exc.strerror or exc}; check the path") from None
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError):
            raise ModelLoadError(
                f"{path}: expected a complete model archive, got a truncated or damaged zip file; "
                "copy or save the model again"
            ) from None
        tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
        if "archive_format" in tails or any(t.startswith("models/") for t in tails):
            return "export"
        if "constants.pkl" in tails or any(t.startswith("code/") for t in tails):
            return "torchscript"
        if "data.pkl" in tails:
            return "torch_zip"
        raise ModelLoadError(
            f"{path}: expected a TorchScript, torch.export or torch.save archive, got a zip file with "
            f"{', '.join(sorted(tails)[:5])}; save the model with torch.save, torch.jit.save or torch.export.save"
        )
    if head[:1] == b"\x80":
        return "legacy_pickle"
    shown = "an empty file" if not head else f"a file starting with {head[:8]!r}"
    raise ModelLoadError(
        f"{path}: expected a PyTorch model (TorchScript, torch.export .pt2, state dict or .safetensors), "
        f"got {shown}; save the model with torch.save(model.state_dict(), ...) or torch.jit.save"
    )


class FixedBatch(torch.nn.Module):
    """Runs a program exported for exactly `size` items on any batch: pads the last chunk, drops the padding."""

    def __init__(self, inner: torch.nn.Module, size: int) -> None:
        super().__init__()
        self.inner = inner
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for start in range(0, x.shape[0], self.size):
            chunk = x[start : start + self.size]
            n = chunk.shape[0]
            if n < self.size:
                pad = chunk[:1].expand(self.size - n, *chunk.shape[1:])
                chunk = torch.cat([chunk, pad])
            out = self.inner(chunk)
            outs.append(out[:n])
        return torch.cat(outs)


def _static_batch(program: object) -> int | None:
    """The batch size an exported program was fixed to (its first input's dim 0 is an int), else None."""
    try:
        names = set(program.graph_signature.user_inputs)  # type: ignore[attr-defined]
        for node in program.graph.nodes:  # type: ignore[attr-defined]
            if node.op == "placeholder" and node.name in names:
                val = node.meta.get("val")
                if val is not None and getattr(val, "dim", lambda: 0)() >= 1 and isinstance(val.shape[0], int):
                    return int(val.shape[0])
                return None
    except AttributeError:  # a torch version that lays the program out differently: run it as it is
        return None
    return None


def use_app_dir(app_dir: str | os.PathLike[str] | None) -> Path | None:
    """Put `app_dir` first on sys.path (once), so `--arch mynet:MyNet` and pickled modules find the
    user's own code as `python -m` would, like uvicorn's and celery's --app-dir. Returns it resolved.

    The console script's sys.path holds its bin folder, not the current folder: without this a
    person's `mynet.py` beside the model was not importable.
    """
    if app_dir is None:
        return None
    folder = Path(app_dir).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--app-dir {app_dir}: expected a folder holding your modules, got "
                         f"{'a file' if folder.exists() else 'nothing at that path'}; pass the project folder")
    entry = str(folder)
    if entry in sys.path:
        sys.path.remove(entry)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    return folder


def _missing_module_hint(exc: ModuleNotFoundError, app_dir: Path | None, needs: str) -> str:
    """'expected the module X (needs), got none in FOLDER or the installed packages; fix'."""
    name = exc.name or str(exc)
    top = name.split(".")[0]
    where = f"{app_dir} or the installed packages" if app_dir else "the installed packages"
    return (f"expected the module {name} ({needs}), got none in {where}; run from the folder that holds "
            f"{top}.py (or the {top}/ package), pass --app-dir FOLDER, or pip install it")


def import_named(spec: str, *, flag: str, what: str, example: str, thing: str, app_dir: Path | None = None) -> Any:
    """The callable named by "package.module:name" or "path/to/file.py:name", from the user's own code.

    A file is imported with its folder on sys.path (as `python file.py` would run it); a module is looked
    up from app_dir (see `use_app_dir`). Every failure is one UsageError headed by `flag` (`--arch net.py:Net`):
    a missing module, the file's own error and line, a name that is not there. what: the words for the
    thing named ("the architecture"); example: its name in a file's form ("ClassName"); thing: what the
    name after the colon is ("class or function")."""
    if ":" not in spec:
        factory = "factory" if example == "ClassName" else example
        raise UsageError(f"{flag}: expected package.module:{factory} or path/to/file.py:{example}, got no ':'; "
                         f"add the {thing} name after a colon")
    where, _, name = spec.rpartition(":")
    if where.endswith(".py") or "/" in where or "\\" in where:
        file = Path(where)
        if not file.is_file():
            raise UsageError(f"{flag}: expected a Python file at {file}, got nothing there; check the path")
        kind = "arch" if what == "the architecture" else "code"
        mod_name = f"_diagnose_{kind}_{hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]}"
        module_spec = importlib.util.spec_from_file_location(mod_name, file)
        if module_spec is None or module_spec.loader is None:
            raise UsageError(f"{flag}: expected an importable Python file, got {file}; check the path")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module  # dataclasses and pickling look the module up by name
        # Let the file import its siblings, as `python file.py` would.
        sys.path.insert(0, str(file.resolve().parent))
        try:
            module_spec.loader.exec_module(module)
        except ModuleNotFoundError as exc:
            sys.modules.pop(mod_name, None)
            raise UsageError(f"{flag}: {_missing_module_hint(exc, app_dir, what)}") from None
        except Exception as exc:  # the user's file failed while importing: show its own error and line
            sys.modules.pop(mod_name, None)
            raise UsageError(f"{flag}: expected {file} to import, got {_user_error(exc, file)}; fix the file") from None
        finally:
            sys.path.remove(str(file.resolve().parent))
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise UsageError(f"{flag}: {_missing_module_hint(exc, app_dir, what)}") from None
        except ImportError as exc:
            raise UsageError(
                f"{flag}: expected an importable module {where}, got {type(exc).__name__}: {exc}; "
                f"install the package or pass path/to/file.py:{example}"
            ) from None
    found = getattr(module, name, None)
    if found is None or not callable(found):
        shown = f"a function {name}" if example == "function" else name
        raise UsageError(f"{flag}: expected {shown} in {where}, got no such callable; check the name")
    return found


def build_arch(spec: str, kwargs: dict | None = None, *, app_dir: Path | None = None) -> torch.nn.Module:
    """Instantiate an architecture: "package.module:factory" or "path/to/file.py:ClassName".

    app_dir: the folder put on sys.path (see `use_app_dir`), named in the error when a module is missing.
    """
    factory = import_named(spec, flag=f"--arch {spec}", what="the architecture", example="ClassName",
                           thing="class or function", app_dir=app_dir)
    name = spec.rpartition(":")[2]
    try:
        model = factory(**(kwargs or {}))
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:  # the call itself: bad arguments
            raise UsageError(f"--arch {spec}: expected arguments that {name} accepts, got {exc}; fix --arch-kwargs") from None
        raise UsageError(f"--arch {spec}: expected {name}(...) to build a model, got {_user_error(exc, None)}; fix {name}") from None
    except Exception as exc:  # raised inside the user's __init__ or factory
        raise UsageError(f"--arch {spec}: expected {name}(...) to build a model, got {_user_error(exc, None)}; fix {name}") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"--arch {spec}: expected {name}(...) to return a torch.nn.Module, got {type(model).__name__}")
    return model


def _user_error(exc: BaseException, file: Path | None) -> str:
    """'ValueError: bad width (net.py:12)': the user's own message and the line it came from (the
    deepest frame in `file`, else the deepest frame outside diagnose and torch)."""
    import traceback

    if isinstance(exc, SyntaxError):
        where = f" ({Path(exc.filename or str(file)).name}:{exc.lineno})" if exc.lineno else ""
        return f"SyntaxError: {exc.msg}{where}"
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if file is not None and Path(f.filename).resolve() == Path(file).resolve()]
    if not mine:
        mine = [f for f in frames if "/diagnose/" not in f.filename and "/torch/" not in f.filename]
    where = f" ({Path(mine[-1].filename).name}:{mine[-1].lineno})" if mine else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def _is_state_dict(obj: object) -> TypeGuard[Mapping[str, torch.Tensor]]:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _unwrap_checkpoint(obj: object) -> tuple[Mapping[str, torch.Tensor], str] | None:
    """(state dict, format) from a bare state dict or a checkpoint dict that wraps one."""
    if _is_state_dict(obj):
        return obj, "state_dict"
    if isinstance(obj, Mapping):
        for key in _CHECKPOINT_KEYS:
            inner = obj.get(key)
            if _is_state_dict(inner):
                return inner, "checkpoint"
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict(), "checkpoint"
    return None


def _match_keys(sd: Mapping[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    """Strip a wrapper prefix (`model.`, `module.`) when that makes the names fit the architecture."""
    if set(sd) >= wanted or not wanted:
        return dict(sd)
    for prefix in _PREFIXES:
        stripped = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
        if stripped and set(stripped) >= wanted:
            return stripped
    return dict(sd)


def _load_into(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], path: Path, spec: str) -> None:
    own = model.state_dict()  # built once: it walks every submodule
    wanted = set(own)
    sd = _match_keys(sd, wanted)
    missing = sorted(wanted - set(sd))
    if missing:
        raise ModelLoadError(
            f"{path}: expected the weights of --arch {spec} ({len(wanted)} tensors), got a state dict missing "
            f"{len(missing)} of them (first: {missing[0]}; the file has {', '.join(sorted(sd)[:3])}...); "
            "pass the architecture the weights were trained with"
        )
    shape_bad = [k for k in wanted if tuple(sd[k].shape) != tuple(own[k].shape)]
    if shape_bad:
        k = sorted(shape_bad)[0]
        raise ModelLoadError(
            f"{path}: expected {k} of shape {tuple(own[k].shape)} for --arch {spec}, got "
            f"{tuple(sd[k].shape)}; pass the --arch-kwargs the model was trained with"
        )
    # Extra entries (an EMA copy, a loss module's buffers) are left out, not an error.
    model.load_state_dict({k: sd[k] for k in wanted}, strict=True)


def _torch_load(path: Path, *, trust_pickle: bool, app_dir: Path | None = None) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except ModuleNotFoundError as exc:  # a pickled module whose class lives in the user's code
        raise ModelLoadError(f"{path}: {_missing_module_hint(exc, app_dir, 'code the pickled model is made of')}") from None
    except pickle.UnpicklingError as exc:
        if trust_pickle:
            raise ModelLoadError(f"{path}: expected a loadable pickle, got {exc}; save the model again") from None
        found = _first_line(str(exc))
        raise ModelLoadError(
            f"{path}: expected tensors only (weights_only=True), got a pickle that runs code to load "
            f"({found}); {_CONVERT}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: expected a complete torch.save file, got {type(exc).__name__}: {_first_line(str(exc))}; "
            "the file is truncated or damaged, save it again"
        ) from None


def _first_line(text: str) -> str:
    """The informative part of a long torch error: the unsupported global, else the first line."""
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if m:
        return f"it needs {m.group(1)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else "no detail"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{path}: expected a complete .safetensors file, got {_first_line(str(exc))}; save it again"
        ) from None


def load_model(
    path: Path | None,
    *,
    arch: str | None = None,
    arch_kwargs: dict | None = None,
    trust_pickle: bool = False,
    device: str = "cpu",
    app_dir: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Load `path` (any recognized format) and put it in eval mode on `device`.

    path None and arch given -> a freshly initialised model. Weights-only files need `arch`.
    app_dir: a folder put first on sys.path for `arch` module specs and pickled modules (the
    commands pass the current folder, or --app-dir).
    """
    folder = use_app_dir(app_dir)
    if path is None:
        if arch is None:
            raise UsageError("MODEL: expected a model file or --arch, got neither; pass one")
        model = build_arch(arch, arch_kwargs, app_dir=folder)
        return _ready(LoadedModel(model, "arch", None, True), device)
    path = Path(path)
    from diagnose.io.paths import require_file

    what = "pass the file inside it" if os.path.isdir(path) else "check the path"
    require_file(path, "a model file", what, ModelLoadError)  # a FIFO or a device would block, a loop would fail late
    kind = detect_format(path)

    if kind == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise ModelLoadError(
                f"{path}: expected a complete TorchScript archive, got {_first_line(str(exc))}; save it again"
            ) from None
        return _ready(LoadedModel(module, "torchscript", path, True), device)
    if kind == "export":
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # torch.export raises many types for damaged archives
            raise ModelLoadError(
                f"{path}: expected a complete torch.export program, got {type(exc).__name__}: "
                f"{_first_line(str(exc))}; export and save it again"
            ) from None
        module = program.module()
        fixed = _static_batch(program)
        if fixed is not None:
            module = FixedBatch(module, fixed)
        return _ready(LoadedModel(module, "export", path, False), device, eval_mode=False)

    if kind == "safetensors":
        sd: Mapping[str, torch.Tensor] = _load_safetensors(path)
        fmt = "safetensors"
    else:
        obj = _torch_load(path, trust_pickle=trust_pickle, app_dir=folder)
        if isinstance(obj, torch.nn.Module):
            return _ready(LoadedModel(obj, "pickle", path, True), device)
        unwrapped = _unwrap_checkpoint(obj)
        if unwrapped is None:
            got = type(obj).__name__
            if isinstance(obj, Mapping):
                got = f"a dict with keys {', '.join(map(str, list(obj)[:6]))}"
            raise ModelLoadError(
                f"{path}: expected a state dict, a checkpoint with 'state_dict' or 'model', or a module, "
                f"got {got}; save model.state_dict() instead"
            )
        sd, fmt = unwrapped
    if arch is None:
        raise UsageError(
            f"{path}: expected --arch with weights-only files, got a {fmt.replace('_', ' ')} of "
            f"{len(sd)} tensors; pass --arch package.module:factory or --arch path/to/file.py:ClassName"
        )
    model = build_arch(arch, arch_kwargs, app_dir=folder)
    _load_into(model, sd, path, arch)
    return _ready(LoadedModel(model, fmt, path, True), device)


def _ready(loaded: LoadedModel, device: str, *, eval_mode: bool = True) -> LoadedModel:
    module = loaded.module
    if eval_mode:
        module.eval()
    else:
        # Exported programs do not support .eval(); they were exported in the mode they run in.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            module.eval()
    if device != "cpu":
        module.to(device)
    return loaded


def _first_weighted(module: torch.nn.Module) -> tuple[str, torch.nn.Module, torch.Tensor] | None:
    """(layer kind, layer, weight) of the first submodule holding a weight tensor, else None.

    torch.export keeps the weights but not the layer types: such layers come back as kind "generic"
    and are judged by the weight's rank.
    """
    for _, sub in module.named_modules():
        weight = getattr(sub, "weight", None)
        if isinstance(weight, torch.Tensor):
            kind = getattr(sub, "original_name", type(sub).__name__)
            return ("generic" if kind in ("Module", "InterpreterModule") else kind), sub, weight
    return None


def _input_channels(sub: torch.nn.Module, weight: torch.Tensor) -> int:
    return int(weight.shape[1]) * int(getattr(sub, "groups", 1) or 1)


def describe_input(module: torch.nn.Module) -> tuple[str, int | None]:
    """What the model's first weighted layer takes, e.g. ('(N, 64)', 1) or ('(N, 3, H, W)', 3).

    Returns (shape text, image channels or None). For error messages and to pick grayscale vs RGB.
    """
    first = _first_weighted(module)
    if first is None:
        return "an unknown shape", None
    kind, sub, weight = first
    if kind in ("Linear", "generic") and weight.dim() == 2:
        return f"(N, {weight.shape[1]})", None
    if (kind.startswith("Conv") or kind == "generic") and weight.dim() >= 3:
        c = _input_channels(sub, weight)
        spatial = ", ".join("HWD"[i] for i in range(weight.dim() - 2)) if weight.dim() < 5 else "D, H, W"
        return f"(N, {c}, {spatial})", c
    return f"a first layer {kind} with weight {tuple(weight.shape)}", None


def image_channels(module: torch.nn.Module, image_hw: tuple[int, int]) -> int | None:
    """1 or 3 when the first layer tells (Conv in_channels, or Linear in_features = C*H*W), else None."""
    first = _first_weighted(module)
    if first is None:
        return None
    kind, sub, weight = first
    if (kind.startswith("Conv") or kind == "generic") and weight.dim() == 4:
        c = _input_channels(sub, weight)
        return c if c in (1, 3) else None
    if kind in ("Linear", "generic") and weight.dim() == 2:
        hw = image_hw[0] * image_hw[1]
        return {hw: 1, 3 * hw: 3}.get(int(weight.shape[1]))
    return None


def arch_kwargs_from_json(text: str | None) -> dict | None:
    """--arch-kwargs text -> dict (None when empty); kept here for callers, parsed without torch."""
    from diagnose.io.settings import parse_arch_kwargs

    return parse_arch_kwargs(text)
