"""MATH answers: last ``\\boxed{}`` extraction, the MATH string normaliser, and bounded sympy equivalence.

Two answers are equivalent when their *canonical keys* are equal. A key is built in three steps:

1. ``normalize_answer``: the usual MATH string clean-up (``\\left``/``\\right``, ``\\dfrac``, spaces,
   units, ``\\text{}``, degrees, ``$``, thousands separators, ``\\frac12``, ``x = 5`` -> ``5``, mixed
   numbers ``1\\frac{4}{5}``...).
2. ``parse_structure``: tuples and intervals (ordered, bracket kinds kept), bare comma lists, sets and
   ``\\pm`` (unordered), unions of intervals, matrices, equations, scalars.
3. Each scalar is turned into a sympy expression through a small whitelisted LaTeX subset and keyed by
   its value: numbers by their value to 12 significant digits (so ``0.5``, ``\\frac12`` and ``2/4``
   agree), expressions with free symbols by their values at fixed rational points, equations by the
   values of ``lhs - rhs`` up to a constant factor. Anything outside the subset is keyed by its
   normalised text.

sympy runs in a separate worker process with a time limit per scalar and a memory limit, restarted
when killed, so pathological inputs (``10^{10^{10}}``) cannot hang or exhaust the caller; a scalar
that times out falls back to its text key.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from tts_sim.errors import ConfigError
from tts_sim.tasks.question import Question, json_rows, require_file, required_field

SYMPY_TIMEOUT_S = 3.0  # per scalar
SYMPY_MEMORY_MB = 2048
SIG_DIGITS = 12

# ----------------------------------------------------------------------------------------------
# extraction


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in ``text``."""
    starts = [m for m in re.finditer(r"\\(?:boxed|fbox)\b", text)]
    for m in reversed(starts):
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            content = _braced(text, i)
            if content is not None:
                return content.strip()
        elif m.group(0) == "\\boxed" and i > m.end():  # "\boxed 5"
            word = re.match(r"[^\s$]+", text[i:])
            if word:
                return word.group(0).rstrip(".,")
    return None


def _braced(text: str, i: int) -> str | None:
    """Content of the brace group opening at ``text[i] == '{'`` (None if unbalanced)."""
    depth = 0
    for j in range(i, len(text)):
        c = text[j]
        if c == "\\":  # skip escaped braces \{ \}
            continue
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and (j == 0 or text[j - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


# ----------------------------------------------------------------------------------------------
# string normalisation

_UNIT_WORDS = (
    "degrees?|cm|centimeters?|meters?|m|km|kilometers?|mm|miles?|inch(?:es)?|feet|foot|ft|yards?|"
    "seconds?|minutes?|hours?|days?|weeks?|months?|years?|cents?|dollars?|units?|square|sq|cubic|"
    "pounds?|ounces?|grams?|kg|liters?|gallons?|mph|percent|points?|ways?|students?|people|times"
)
_TEXT_CMD = r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|textit|operatorname)"


def normalize_answer(answer: str) -> str:
    """The MATH string normaliser (Hendrycks et al.'s rules, extended); deterministic, no sympy."""
    s = answer.strip()
    s = s.replace("\n", " ").replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\:", "")
    s = re.sub(r"(?<!\\)\\ ", " ", s).replace("~", " ").replace("{,}", ",")
    s = re.sub(r"\\[td]frac", r"\\frac", s)
    s = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)\b\s*", "", s)
    s = s.replace("\\displaystyle", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\circ|\\degree", "", s)
    # trailing units: "5 \text{ cm}^2", "864 \mbox{ inches}^2", "5.4 cents"
    s = re.sub(_TEXT_CMD + r"\{\s*(?:" + _UNIT_WORDS + r")(?:\s+\w+)?\s*\}(?:\s*\^\s*\{?\d\}?)?\s*$", "", s).strip()
    s = re.sub(r"(?<=[\d}])\s+(?:" + _UNIT_WORDS + r")(?:\s*\^\s*\{?\d\}?)?\s*$", "", s).strip()
    # \text{...} around the whole answer, or inside it
    while True:
        t = re.sub(_TEXT_CMD + r"\{([^{}]*)\}", r"\1", s)
        if t == s:
            break
        s = t
    s = s.strip().rstrip(".").strip()
    if s.startswith("{") and s.endswith("}") and _braced(s, 0) == s[1:-1]:
        s = s[1:-1].strip()
    # "x = 5", "k=3", "x \in [-2,7]"  -> right-hand side
    m = re.fullmatch(r"\s*[a-zA-Z](?:_\{?\w+\}?)?\s*(?:=|\\in)\s*(.+)", s)
    if m and "=" not in m.group(1):
        s = m.group(1)
    # answer-choice letters: "(C)" -> "C"
    m = re.fullmatch(r"\(\s*([A-Ea-e])\s*\)", s)
    if m:
        s = m.group(1).upper()
    s = _fix_sqrt(_fix_fracs(s))
    s = re.sub(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])", "\\1\x01", s)  # keep "\cot x" apart
    s = re.sub(r"\s+", "", s).replace("\x01", " ")
    s = re.sub(r"_\{(\w+)\}", r"_\1", s)  # 52_{8} -> 52_8
    # thousands separators in a lone number: 10,080 / 11,111,111,100
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    # decimals: ".35" -> "0.35", "5.00" -> "5", "-0" -> "0"
    s = re.sub(r"(?<![\d.])\.(\d)", r"0.\1", s)
    s = re.sub(r"(?<![\d.])(\d+)\.(\d*?)0+(?![\d.])", lambda m: m.group(1) + ("." + m.group(2)) * bool(m.group(2)), s)
    # integer fractions a/b -> \frac{a}{b}; mixed numbers 1\frac{4}{5} -> \frac{9}{5}
    m = re.fullmatch(r"(-?)(\d+)/(\d+)", s)
    if m:
        s = f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    m = re.fullmatch(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}", s)
    if m and int(m.group(4)) != 0:
        value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        s = f"{m.group(1)}\\frac{{{value.numerator}}}{{{value.denominator}}}"
    if s == "-0":
        s = "0"
    if re.fullmatch(r"[A-Za-z][A-Za-z ]+", s):  # plain words: case-insensitive
        s = s.lower()
    return s


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac{270}7`` -> ``\\frac{270}{7}``, ``\\frac 59``."""
    out, i = [], 0
    while True:
        j = s.find("\\frac", i)
        if j < 0:
            out.append(s[i:])
            return "".join(out)
        out.append(s[i:j + 5])
        k = j + 5
        args = []
        for _ in range(2):
            while k < len(s) and s[k] == " ":
                k += 1
            if k < len(s) and s[k] == "{":
                content = _braced(s, k)
                if content is None:
                    break
                args.append(content)
                k += len(content) + 2
            elif k < len(s) and s[k] == "\\":
                m = re.match(r"\\[a-zA-Z]+", s[k:])
                if m is None:  # a backslash not followed by a letter: malformed, left as it is
                    break
                args.append(m.group(0))
                k += len(m.group(0))
            elif k < len(s):
                args.append(s[k])
                k += 1
        if len(args) < 2:
            out.append(s[j + 5:k])
        else:
            out.append("".join("{" + a + "}" for a in args))
        i = k


def _fix_sqrt(s: str) -> str:
    """``\\sqrt2`` -> ``\\sqrt{2}``, ``\\sqrt 3x`` -> ``\\sqrt{3}x``."""
    return re.sub(r"\\sqrt\s*([0-9a-zA-Z])", r"\\sqrt{\1}", s)


# ----------------------------------------------------------------------------------------------
# structure: tuples, intervals, lists, sets, unions, matrices, equations, scalars


def _split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` outside (), [], {}."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(s):
        if s.startswith("\\{", i) or s.startswith("\\}", i):
            depth += 1 if s[i + 1] == "{" else -1
            cur.append(s[i:i + 2])
            i += 2
            continue
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 0 and s.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _enclosed(s: str, opens: str, closes: str) -> bool:
    """True if ``s`` is one bracket group: opens at 0 and its match closes at the end."""
    if len(s) < 2 or s[0] not in opens or s[-1] not in closes:
        return False
    depth = 0
    for i, c in enumerate(s):
        depth += c in "([{"
        depth -= c in ")]}"
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0


def canonical_key(answer: str) -> str:
    """Canonical key of a MATH answer: equal keys <=> equivalent answers (see module docstring)."""
    return _key_normalized(normalize_answer(answer))


@lru_cache(maxsize=65536)
def _key_normalized(s: str) -> str:
    if not s:
        return "t:"
    matrix = re.fullmatch(r"\\begin\{[pbv]?matrix\}(.*)\\end\{[pbv]?matrix\}", s)
    if matrix:
        rows = [r for r in matrix.group(1).split("\\\\") if r]
        return "M[" + ";".join(",".join(_key_normalized(c) for c in r.split("&")) for r in rows) + "]"
    if "\\cup" in s:
        parts = _split_top(s, "\\cup")
        if len(parts) > 1:
            return "U[" + ",".join(sorted(_key_normalized(p) for p in parts)) + "]"
    if s.startswith("\\{") and s.endswith("\\}"):
        return _unordered(_split_top(s[2:-2], ","))
    if _enclosed(s, "([", ")]") and len(_split_top(s[1:-1], ",")) > 1:
        return s[0] + ",".join(_key_normalized(p) for p in _split_top(s[1:-1], ",")) + s[-1]
    items = _split_top(s, ",")
    if len(items) > 1:
        return _unordered(items)
    if "\\pm" in s or "\\mp" in s:
        return _unordered([s])
    sides = _split_top(s, "=")
    if len(sides) == 2:
        return _scalar_key(sides[0] + "-(" + sides[1] + ")", equation=True, text=s)
    return _scalar_key(s, text=s)


def _unordered(items: list[str]) -> str:
    expanded: list[str] = []
    for item in items:
        if "\\pm" in item or "\\mp" in item:
            expanded += [item.replace("\\pm", "+").replace("\\mp", "-"), item.replace("\\pm", "-").replace("\\mp", "+")]
        else:
            expanded.append(item)
    return "{" + ",".join(sorted(_key_normalized(i) for i in expanded if i)) + "}"


# ----------------------------------------------------------------------------------------------
# scalars: LaTeX subset -> Python expression for sympy's parser

# LaTeX function name -> sympy function name
_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "cot": "cot", "sec": "sec", "csc": "csc", "arcsin": "asin",
          "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "log": "log",
          "ln": "log", "exp": "exp", "sqrt": "sqrt"}
_SYMBOL_COMMANDS = {"pi": "pi", "infty": "oo", "infinity": "oo", "cdot": "*", "times": "*", "div": "/",
                    "alpha": "alpha", "beta": "beta", "gamma": "gamma", "theta": "theta", "phi": "phi"}
_PY_OK = re.compile(r"[0-9A-Za-z_+\-*/(). ^,]*")


def latex_to_python(s: str) -> str | None:
    """A whitelisted LaTeX subset as a Python expression for ``sympy.parse_expr`` (None if outside it)."""
    try:
        out = _convert(s)
    except ValueError:
        return None
    if not _PY_OK.fullmatch(out) or "__" in out:
        return None
    for word in re.findall(r"[A-Za-z_]+", out):
        if len(word) > 1 and word not in _FUNCS.values() and word not in _SYMBOL_COMMANDS.values():
            return None  # multi-letter words are text, not a product of symbols
    return out


def _convert(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([a-zA-Z]+)", s[i:])
            if not m:
                raise ValueError(s)
            name = m.group(1)
            i += len(m.group(0))
            if name == "frac" or name == "binom":
                a, i = _group(s, i)
                b, i = _group(s, i)
                out.append(f"(({_convert(a)})/({_convert(b)}))" if name == "frac"
                           else f"binomial({_convert(a)},{_convert(b)})")
            elif name == "sqrt":
                if i < len(s) and s[i] == "[":
                    j = s.index("]", i)
                    n = _convert(s[i + 1:j])
                    a, i = _group(s, j + 1)
                    out.append(f"(({_convert(a)})**(1/({n})))")
                else:
                    a, i = _group(s, i)
                    out.append(f"sqrt({_convert(a)})")
            elif name in _FUNCS:
                out.append(f" {_FUNCS[name]}")
                if i < len(s) and s[i] == "^":  # \sin^2 x: not in the subset
                    raise ValueError(s)
                out.append(" ")
            elif name in _SYMBOL_COMMANDS:
                out.append(f" {_SYMBOL_COMMANDS[name]} ")
            else:
                raise ValueError(name)
        elif c == "{":
            a, i = _group(s, i)
            out.append(f"({_convert(a)})")
        elif c in "}":
            raise ValueError(s)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _group(s: str, i: int) -> tuple[str, int]:
    """The argument starting at ``s[i]``: a brace group or a single character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        raise ValueError(s)
    if s[i] == "{":
        content = _braced(s, i)
        if content is None:
            raise ValueError(s)
        return content, i + len(content) + 2
    return s[i], i + 1


_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _scalar_key(s: str, *, text: str, equation: bool = False) -> str:
    if not equation and _PLAIN_NUMBER.fullmatch(s):
        return "n:" + format_number(Fraction(s))
    if re.search(r"\d_\w", s):  # numbers in a base: 52_8
        return "t:" + text
    expr = latex_to_python(s)
    if expr is None:
        return "t:" + text
    key = _WORKER.call("eq" if equation else "key", expr)
    return key if key is not None else "t:" + text


def format_number(value: Fraction) -> str:
    """Key of an exact rational: ``p`` or ``p/q`` in lowest terms."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


# ----------------------------------------------------------------------------------------------
# sympy, in the worker process


def _sympy_key(expr: str, equation: bool) -> str | None:
    import mpmath
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        rationalize,
        standard_transformations,
    )

    names = {n: getattr(sympy, n) for n in _FUNCS.values()}
    names.update(pi=sympy.pi, oo=sympy.oo, E=sympy.E, e=sympy.E, i=sympy.I, I=sympy.I, binomial=sympy.binomial,
                 Integer=sympy.Integer, Rational=sympy.Rational, Float=sympy.Float, Symbol=sympy.Symbol)
    for letter in "abcdfghjklmnopqrstuvwxyzABCDFGHJKLMNOPQRSTUVWXYZ":
        names[letter] = sympy.Symbol(letter)
    for greek in ("alpha", "beta", "gamma", "theta", "phi"):
        names[greek] = sympy.Symbol(greek)
    transformations = standard_transformations + (implicit_multiplication_application, convert_xor, rationalize)
    value = parse_expr(expr, local_dict={}, global_dict={"__builtins__": {}, **names},
                       transformations=transformations, evaluate=True)
    if not isinstance(value, sympy.Expr):
        return None
    symbols = sorted(value.free_symbols, key=lambda x: x.name)

    def real(x: sympy.Expr) -> str | None:
        if x.is_Rational:
            return format_number(Fraction(int(x.p), int(x.q)))
        f = sympy.N(x, 40)
        if f in (sympy.oo, -sympy.oo):
            return str(f)
        if not f.is_Float:
            return None
        with mpmath.workdps(40):
            m = mpmath.mpf(f._mpf_)
            if abs(m) < mpmath.mpf(10) ** -30:
                return "0"
            # equal to a simple rational to 25 digits (e.g. (1+sqrt(3))^2 - 2 sqrt(3)): that rational
            q = Fraction(mpmath.nstr(m, 40, strip_zeros=False)).limit_denominator(10**6)
            if abs(m - mpmath.mpf(q.numerator) / q.denominator) <= mpmath.mpf(10) ** -25 * max(1, abs(m)):
                return format_number(q)
            return "~" + mpmath.nstr(m, SIG_DIGITS)

    def number(v: sympy.Expr) -> str | None:
        if v.has(sympy.nan, sympy.zoo) or not v.is_number:
            return None
        if v in (sympy.oo, -sympy.oo):
            return str(v)
        re_, im_ = (sympy.nsimplify(p) if p.is_Float else p for p in v.as_real_imag())
        r, i = real(re_), real(im_)
        if r is None or i is None:
            return None
        if i == "0":
            return r
        return f"{i}i" if r == "0" else f"{r}{'' if i.startswith('-') else '+'}{i}i"

    if not symbols:
        if equation:
            return None
        key = number(value)
        return None if key is None else "n:" + key
    points = [[sympy.Rational(7 + 4 * k + 2 * j, 13 + 3 * k + j) for j in range(len(symbols))] for k in range(6)]
    values: list[str] = []
    first = None
    for point in points:
        v = value.subs(dict(zip(symbols, point, strict=True)))
        if equation:  # lhs - rhs up to a constant factor: divide by its value at the first usable point
            if first is None:
                if number(v) in (None, "0"):
                    continue
                first, values = v, ["1"]
                continue
            v = v / first
        key = number(v)
        if key is not None:
            values.append(key)
        if len(values) == 3:
            break
    if len(values) < 3:
        return None
    prefix = "eq" if equation else "f"
    return f"{prefix}({','.join(s.name for s in symbols)}):" + "|".join(values)


def _serve() -> None:
    """Worker loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    import resource

    limit = SYMPY_MEMORY_MB * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import sympy  # noqa: F401  (import once, before the first request)

    for line in sys.stdin:
        op, expr = json.loads(line)
        try:
            key = _sympy_key(expr, equation=(op == "eq"))
        except Exception:  # noqa: BLE001  (any parse or evaluation failure: no key)
            key = None
        sys.stdout.write(json.dumps(key) + "\n")
        sys.stdout.flush()


class _Worker:
    """A persistent sympy process; a call that runs past its time limit kills it (restarted lazily)."""

    STARTUP_S = 30.0  # extra time for the first call of a new worker (it imports sympy)

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._owner = 0  # pid of the process that started the worker (a forked child starts its own)
        self._warm = False
        self._lock = threading.Lock()
        self.timeouts = 0

    def _ensure(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None or self._owner != os.getpid():
            root = str(Path(__file__).resolve().parents[2])
            code = (f"import sys; sys.path.insert(0, {root!r}); "
                    "from tts_sim.tasks.math_answers import _serve; _serve()")
            self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
            self._owner, self._warm = os.getpid(), False
        return self._proc

    def call(self, op: str, expr: str, timeout_s: float = SYMPY_TIMEOUT_S) -> str | None:
        """The worker's answer to ``(op, expr)``; None on failure or timeout (the worker is then killed)."""
        with self._lock:
            proc = self._ensure()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps([op, expr]) + "\n")
                proc.stdin.flush()
            except OSError:
                self.close()
                return None
            ready, _, _ = select.select([proc.stdout], [], [], timeout_s + (0 if self._warm else self.STARTUP_S))
            line = proc.stdout.readline() if ready else ""
            if not line:
                self.timeouts += not ready
                self.close()
                return None
            self._warm = True
            return json.loads(line)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and self._owner == os.getpid():
            proc.kill()
            proc.wait()


_WORKER = _Worker()
atexit.register(_WORKER.close)


# ----------------------------------------------------------------------------------------------
# the grader


class MathGrader:
    """MATH / MATH-500: the final answer is the last ``\\boxed{}``."""

    task = "math"
    instructions = "Put the final answer in \\boxed{}."

    def extract(self, text: str) -> str | None:
        return last_boxed(text)

    def canonical(self, extracted: str) -> str:
        return canonical_key(extracted)

    def is_correct(self, extracted: str | None, question: Question) -> bool:
        if extracted is None or not extracted.strip():
            return False
        return canonical_key(extracted) == canonical_key(question.reference)


def load_math(path: Path | None) -> Iterator[Question]:
    """MATH / MATH-500 JSON lines: ``problem``, ``answer`` (or ``solution`` with a boxed answer)."""
    file = require_file(path, "math", "math500.jsonl with fields problem, answer, solution, subject, level")
    for n, row in json_rows(file):
        problem = required_field(row, file, n, "problem", "question")
        answer = row.get("answer")
        if answer is None:
            answer = last_boxed(str(required_field(row, file, n, "answer", "solution")))
            if answer is None:
                raise ConfigError(f"{file}:{n}: no 'answer' and no \\boxed{{}} answer in 'solution'")
        meta: dict[str, Any] = {k: row[k] for k in ("subject", "level", "solution") if k in row}
        yield Question(str(row.get("unique_id", f"math/{n}")), "math", str(problem), str(answer), metadata=meta)
