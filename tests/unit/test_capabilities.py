"""Capability flags: the exact spec values and the helpers built on them."""

from __future__ import annotations

import pytest

from glancelite.store.capabilities import Capability, contains, names_of, without

SPEC = {
    "NONE": 0,
    "ALL": 255,
    "READ_ACCESS": 1,
    "READ_OFFSET": 3,
    "READ_CHUNK": 5,
    "READ_RANDOM": 7,
    "WRITE_ACCESS": 8,
    "WRITE_OFFSET": 24,
    "WRITE_CHUNK": 40,
    "WRITE_RANDOM": 56,
    "RW_ACCESS": 9,
    "RW_OFFSET": 27,
    "RW_CHUNK": 45,
    "RW_RANDOM": 63,
    "DRIVER_REUSABLE": 64,
}


@pytest.mark.parametrize(("name", "value"), sorted(SPEC.items()))
def test_values_match_the_spec(name, value):
    assert int(Capability[name]) == value


def test_no_extra_members():
    assert {m.name for m in Capability.__members__.values()} == set(SPEC)


def test_composites_are_unions_of_their_parts():
    C = Capability
    assert C.READ_RANDOM == C.READ_OFFSET | C.READ_CHUNK
    assert C.WRITE_RANDOM == C.WRITE_OFFSET | C.WRITE_CHUNK
    assert C.RW_ACCESS == C.READ_ACCESS | C.WRITE_ACCESS
    assert C.RW_RANDOM == C.READ_RANDOM | C.WRITE_RANDOM


def test_contains_checks_every_bit():
    file_caps = Capability.READ_RANDOM | Capability.WRITE_ACCESS | Capability.DRIVER_REUSABLE
    assert int(file_caps) == 79
    assert contains(file_caps, Capability.READ_OFFSET)
    assert not contains(file_caps, Capability.WRITE_OFFSET)
    assert not contains(Capability.READ_CHUNK, Capability.READ_OFFSET)


def test_names_of_lists_single_purpose_flags():
    assert names_of(Capability.READ_ACCESS | Capability.DRIVER_REUSABLE) == ["READ_ACCESS", "DRIVER_REUSABLE"]
    assert names_of(Capability.RW_ACCESS) == ["READ_ACCESS", "WRITE_ACCESS"]
    assert names_of(Capability.NONE) == []


def test_without_drops_the_whole_family():
    caps = without(Capability.READ_RANDOM | Capability.WRITE_ACCESS, Capability.READ_ACCESS)
    assert caps == Capability.WRITE_ACCESS
    assert without(Capability.RW_RANDOM, Capability.WRITE_ACCESS) == Capability.READ_RANDOM
