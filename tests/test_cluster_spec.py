"""Cluster specs and the device catalogue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tts_sim.errors import TtsSimError
from tts_sim.sim.cluster import DEVICES, ClusterError, ClusterSpec, DeviceSpec, get_device, parse_cluster

BUILTIN = ("H100", "H200", "A100-80GB", "A100-40GB", "L4", "cpu")


def test_builtin_devices_follow_the_datasheets() -> None:
    assert {get_device(n).name for n in BUILTIN} == set(BUILTIN)
    h100, a100_40, cpu = get_device("H100"), get_device("A100-40GB"), get_device("cpu")
    assert (h100.peak_flops, h100.mem_bw, h100.mem_bytes, h100.kind) == (989e12, 3350e9, 80e9, "gpu")
    assert (a100_40.peak_flops, a100_40.mem_bw, a100_40.mem_bytes) == (312e12, 1555e9, 40e9)
    assert (cpu.kind, cpu.mem_bw, cpu.mem_bytes) == ("cpu", 33e9, 24 * 2**30)
    assert 1e11 <= cpu.peak_flops <= 4e11
    assert "h200" in DEVICES and get_device("h200").mem_bw == 4800e9


@pytest.mark.parametrize("name", ["h100", "H100", " a100-80gb ", "CPU", "l4"])
def test_device_names_are_case_insensitive(name: str) -> None:
    assert get_device(name).name.lower() == name.strip().lower()


def test_device_spec_rejects_nonsense() -> None:
    with pytest.raises(ClusterError, match="peak_flops"):
        DeviceSpec("bad", "gpu", 0.0, 1e9, 1e9)
    with pytest.raises(ClusterError, match="kind"):
        DeviceSpec("bad", "tpu", 1.0, 1e9, 1e9)


@pytest.mark.parametrize(("text", "canonical", "n"), [
    ("2xH100", "2xH100", 2),
    ("1xA100-80GB,2xL4", "1xA100-80GB,2xL4", 3),
    ("cpu", "1xcpu", 1),
    (" 2 x h100 , l4 ", "2xH100,1xL4", 3),
    ("1xH100,1xH100", "2xH100", 2),
    ("2XL4", "2xL4", 2),
])
def test_parse_valid_specs(text: str, canonical: str, n: int) -> None:
    spec = parse_cluster(text)
    assert len(spec.devices) == n
    assert str(spec) == canonical
    assert spec.text == text
    assert parse_cluster(str(spec)).devices == spec.devices


def test_labels_count_each_device_name() -> None:
    assert parse_cluster("1xA100-80GB,2xL4").labels == ("A100-80GB:0", "L4:0", "L4:1")


@pytest.mark.parametrize(("text", "fragment"), [
    ("0xH100", "positive integer"),
    ("2xFOO", "unknown device 'FOO'"),
    ("2x", "names no device"),
    ("", "empty cluster spec"),
    ("   ", "empty cluster spec"),
    ("-1xL4", "positive integer"),
    ("1.5xH100", "positive integer"),
    ("2xH100,", "empty item"),
    ("x", "unknown device"),
    ("100000xH100", "more than"),
])
def test_malformed_specs_give_one_line_cluster_errors(text: str, fragment: str) -> None:
    with pytest.raises(ClusterError) as info:
        parse_cluster(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_unknown_device_error_lists_the_known_ones() -> None:
    with pytest.raises(ClusterError, match="known: .*H100.*L4"):
        parse_cluster("2xFOO")


@given(st.lists(st.tuples(st.integers(1, 5), st.sampled_from(BUILTIN)), min_size=1, max_size=5))
def test_canonical_text_round_trips(items: list[tuple[int, str]]) -> None:
    text = ",".join(f"{n}x{name.swapcase()}" for n, name in items)
    spec = parse_cluster(text)
    assert [d.name for d in spec.devices] == [name for n, name in items for _ in range(n)]
    again = parse_cluster(str(spec))
    assert again.devices == spec.devices and str(again) == str(spec)
    assert isinstance(spec, ClusterSpec)


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_cluster_error(text: str) -> None:
    try:
        spec = parse_cluster(text)
    except TtsSimError as exc:
        assert isinstance(exc, ClusterError)
        assert "\n" not in str(exc)
    else:
        assert spec.devices
