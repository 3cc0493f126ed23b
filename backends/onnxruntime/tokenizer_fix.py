"""Rebuild a SentencePiece-BPE ``tokenizer.json`` from GGUF vocabulary fields.

transformers 4.57 turns the Gemma GGUF vocabulary (SentencePiece BPE whose scores are negative merge
ranks) into a *Unigram* model, so a Gemma 3 model converted from GGUF reads nonsense. llama.cpp tokenizes
such vocabularies by repeatedly merging the adjacent pair whose merged piece has the highest score; a
``tokenizers`` BPE model whose merges are every (left, right) split of a vocabulary piece, ordered by that
piece's score, does the same. Spaces become ``▁``, unknown characters fall back to ``<0xNN>`` byte pieces,
control tokens are special, user-defined pieces (newline runs, space runs, HTML tags) match verbatim.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tts_sim.errors import ConfigError

from .gguf_meta import read_gguf_fields

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# GGUF token types (llama.cpp's llama_token_type)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def spm_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Every (left, right) split of a normal piece into two normal pieces, best-scored merged piece first."""
    normal = {tok: score for tok, score, typ in zip(tokens, scores, types, strict=True) if typ == NORMAL}
    ranked: list[tuple[float, float, float, str, str]] = []
    for piece, score in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                ranked.append((-score, -normal[left], -normal[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def spm_bpe_tokenizer(fields: dict) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` equivalent to llama.cpp's SPM tokenizer for these GGUF fields."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE

    try:
        tokens = list(fields["tokenizer.ggml.tokens"])
        scores = [float(s) for s in fields["tokenizer.ggml.scores"]]
        types = [int(t) for t in fields["tokenizer.ggml.token_type"]]
    except KeyError as exc:
        raise ConfigError(f"GGUF vocabulary lacks field {exc.args[0]!r}") from None
    vocab = {tok: i for i, tok in enumerate(tokens)}
    unk_id = fields.get("tokenizer.ggml.unknown_token_id")
    model = BPE(vocab, spm_merges(tokens, scores, types), unk_token=tokens[unk_id] if unk_id is not None else None,
                fuse_unk=True, byte_fallback=True)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Replace(" ", "▁")
    if fields.get("tokenizer.ggml.add_space_prefix", False):
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    added = [AddedToken(t, special=(typ in (CONTROL, UNKNOWN)), normalized=False)
             for t, typ in zip(tokens, types, strict=True) if typ in (CONTROL, UNKNOWN, USER_DEFINED)]
    tok.add_tokens(added)
    bos_id = fields.get("tokenizer.ggml.bos_token_id")
    if bos_id is not None and fields.get("tokenizer.ggml.add_bos_token", True):
        bos = tokens[bos_id]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, bos_id)])
    return tok


def write_spm_tokenizer(gguf_path: Path, out_path: Path) -> None:
    """Write the rebuilt ``tokenizer.json`` of ``gguf_path`` (a SentencePiece-vocabulary GGUF) to ``out_path``."""
    keys = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_space_prefix")
    spm_bpe_tokenizer(read_gguf_fields(gguf_path, keys)).save(str(out_path))
