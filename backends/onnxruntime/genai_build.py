"""Build a genai model (``onnxruntime_genai.models.builder``) from a Hugging Face folder, in its own venv.

The builder of onnxruntime-genai 0.18 imports classes that exist only in transformers 5.x, while the
optimum export path pins transformers < 4.58. So the build runs in a subprocess of a virtual environment
created on demand under ``~/.cache/tts-sim/genai-builder/<key>/`` that sees the main environment's
packages (``--system-site-packages`` for the base interpreter's, and a ``.pth`` file naming the main
environment's own site-packages when that is a venv: it reuses torch, onnx, onnx-ir, onnxruntime and
onnxruntime-genai from there; the key names the main environment) plus its own transformers 5. Cost
measured here: ~45 s and ~60 MB to create it once; each build then takes about as long as loading the
model (SmolLM2 int4: ~45 s on 2 shared cores).

The builder writes ``model.onnx`` (+ ``.data``) and ``genai_config.json``; this module then replaces its
tokenizer with the project's (see ``tokenizer_fix.py``) and sets the EOS ids to the manifest's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tts_sim.errors import ConfigError

#: transformers release the builder venv installs (onnxruntime-genai 0.18's builder needs 5.x)
BUILDER_TRANSFORMERS = "transformers==5.23.0"
#: genai builder precision per quantisation name; ``int4-b128`` is int4 with MatMulNBits blocks of 128 weights
PRECISIONS = {"fp32": "fp32", "fp16": "fp16", "int8": "int8", "int4": "int4", "int4-b128": "int4"}
#: builder block size per quantisation name where it is not the builder's default (32). Measured here
#: (docs/engine/README.md): blocks of 128 decode 1.15-1.25x faster than 32 single-stream (SmolLM2, Gemma-3-270M)
#: and up to 1.6x at batch 8, but a batch's int4 greedy rows no longer equal the same prompts decoded alone (they
#: do at 32) and greedy agreement with fp32 was lower; so it is a separate quantisation, not the default.
BLOCK_SIZES = {"int4-b128": 128}


def builder_options(quantization: str) -> list[str]:
    """``--extra_options`` of one build."""
    options = ["prune_lm_head=true", "hf_token=false"]
    if quantization in BLOCK_SIZES:
        options.append(f"block_size={BLOCK_SIZES[quantization]}")
    return options

#: patch run inside the venv before the builder: Gemma 3 configs saved by transformers 4.x load under 5.x
#: with nested ``rope_parameters`` that the 0.18 builder does not read; flatten them as 4.x had them for the
#: builder's own config reads (transformers' model loading keeps the nested form).
_DRIVER = r'''
import runpy, sys
import transformers

_orig = transformers.AutoConfig.from_pretrained.__func__


def _flatten(config):
    text = getattr(config, "text_config", None) or config
    rp = getattr(text, "rope_parameters", None)
    if isinstance(rp, dict) and "full_attention" in rp:
        full, local = rp["full_attention"], rp.get("sliding_attention", {})
        text.rope_parameters = full
        text.rope_theta = full.get("rope_theta", getattr(text, "rope_theta", 10000.0))
        if "rope_theta" in local:
            text.rope_local_base_freq = local["rope_theta"]
    return config


def _from_pretrained(cls, *args, **kwargs):
    out = _orig(cls, *args, **kwargs)
    if sys._getframe(1).f_globals.get("__name__", "").startswith("transformers"):
        return out  # transformers loading the weights wants its own (nested) layout
    if isinstance(out, tuple):
        return (_flatten(out[0]), *out[1:])
    return _flatten(out)


transformers.AutoConfig.from_pretrained = classmethod(_from_pretrained)
sys.argv = ["builder", *sys.argv[1:]]
runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__")
'''

Progress = Callable[[str], None]


def builder_root() -> Path:
    env = os.environ.get("TTS_SIM_GENAI_BUILDER")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tts-sim" / "genai-builder"


def _genai_version() -> str:
    try:
        return version("onnxruntime-genai")
    except PackageNotFoundError:
        raise ConfigError("the genai engine needs onnxruntime-genai (pip install onnxruntime-genai)") from None


def ensure_builder_venv(progress: Progress = print) -> Path:
    """The builder venv's python, creating the venv (temp folder + rename) when absent."""
    main_env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]  # the venv reads this environment's packages
    key = f"ortgenai{_genai_version()}-{BUILDER_TRANSFORMERS.replace('==', '')}-{main_env}"
    venv = builder_root() / key
    python = venv / "bin" / "python"
    if python.is_file() and (venv / "READY").is_file():
        return python
    builder_root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp", dir=builder_root()))
    log = builder_root() / f"{key}.log"
    progress(f"creating the genai builder venv {venv} (once; ~1 min; log: {log})")
    try:
        with log.open("w") as out:
            for cmd in ([sys.executable, "-m", "venv", "--system-site-packages", str(tmp)],
                        [str(tmp / "bin" / "python"), "-m", "pip", "install", "--quiet", BUILDER_TRANSFORMERS,
                         f"onnxruntime-genai=={_genai_version()}"]):
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    raise ConfigError(f"creating the genai builder venv failed (`{cmd[2]}` exit "
                                      f"{done.returncode}; log: {log})")
                if cmd[2] == "venv":  # the main environment's packages, after the builder venv's own
                    for purelib in (tmp / "lib").glob("python*/site-packages"):
                        (purelib / "tts-sim-main-env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        (tmp / "READY").write_text(BUILDER_TRANSFORMERS + "\n")
        if venv.exists():
            shutil.rmtree(venv)
        tmp.rename(venv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return python


def run_builder(hf_dir: Path, out: Path, quantization: str, execution_provider: str, progress: Progress) -> None:
    """Run the genai model builder on ``hf_dir`` into the (empty, temporary) folder ``out``."""
    if quantization not in PRECISIONS:
        raise ConfigError(f"the genai engine cannot prepare {quantization!r} (choose from {', '.join(PRECISIONS)})")
    python = ensure_builder_venv(progress)
    log = Path(tempfile.gettempdir()) / f"tts-sim-genai-builder-{hf_dir.parent.name}-{out.name}.log"
    with tempfile.TemporaryDirectory(prefix="tts-sim-genai-cache") as cache:
        cmd = [str(python), "-c", _DRIVER, "-i", str(hf_dir), "-o", str(out), "-p", PRECISIONS[quantization],
               "-e", execution_provider, "-c", cache, "--extra_options",
               *builder_options(quantization)]
        with log.open("w") as sink:
            done = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, check=False,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode != 0 or not (out / "genai_config.json").is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        raise ConfigError(f"the genai model builder failed on {hf_dir.name} ({quantization}, exit {done.returncode}): "
                          f"{last.strip()[:200]} (log: {log})")
    log.unlink(missing_ok=True)


def finish_genai_folder(out: Path, eos_ids: list[int], pad_id: int) -> None:
    """Make genai's config agree with the manifest's EOS and pad ids (the builder adds its own guesses)."""
    path = out / "genai_config.json"
    config = json.loads(path.read_text())
    config["model"]["eos_token_id"] = list(eos_ids)
    config["model"]["pad_token_id"] = int(pad_id)
    path.write_text(json.dumps(config, indent=4) + "\n")
