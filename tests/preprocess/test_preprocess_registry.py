"""The phone sources a config may name are exactly those the registry can build."""

import typing

from sse_dist.config import PhoneConfig
from sse_dist.config.schema import PhoneSourceName
from sse_dist.preprocess.phones import SOURCES, PhoneSource, source_class


def test_config_choices_match_the_registry():
    assert set(typing.get_args(PhoneSourceName)) == set(SOURCES) | {""}
    assert typing.get_type_hints(PhoneConfig)["source"] is PhoneSourceName


def test_every_registered_source_names_a_phone_source_class():
    for name in SOURCES:
        assert issubclass(source_class(name), PhoneSource), name
