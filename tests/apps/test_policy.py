import pytest

from apps.policy import Policy


def test_parse_forms():
    assert Policy.parse("any of [a, b]").threshold == 1
    assert Policy.parse("2 of [court, notary, police]").threshold == 2
    assert Policy.parse("all of [a,b,c]").threshold == 3
    assert Policy.parse("any of [a, b]").orgs == {"a", "b"}


@pytest.mark.parametrize("text", ["some of [a]", "3 of [a, b]", "any of []", "any [a]", 7])
def test_bad_policies(text):
    with pytest.raises(ValueError):
        Policy.parse(text)
