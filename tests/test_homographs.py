"""Look-alike (homograph) domain names are refused with a message; genuine IDN names pass."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from hosting.models import Domain, Plan
from hosting.validators import normalize_domain
from provisioning.domains import domain_create

CYRILLIC_A = "\u0430"


def refusal(name: str) -> list[str]:
    """The messages (in English) of normalize_domain's refusal of `name` as a homograph."""
    with translation.override("en"), pytest.raises(ValidationError) as excinfo:
        normalize_domain(name)
    assert excinfo.value.code == "homograph"
    with translation.override("en"):
        return excinfo.value.messages


@pytest.mark.parametrize("name,label", [
    (f"{CYRILLIC_A}pple.fr", f"{CYRILLIC_A}pple"),  # one Cyrillic "а" among Latin letters
    ("раураl.fr", "раураl"),  # Cyrillic "раура" and a Latin "l"
    ("xn--pple-43d.fr", f"{CYRILLIC_A}pple"),  # the same, typed as punycode
    ("www.gοogle.com", "gοogle"),  # a Greek omicron
])
def test_a_label_mixing_alphabets_is_refused(name, label):
    assert refusal(name) == [
        f"“{name}” mixes letters of different alphabets in “{label}”, as look-alike domain names do: "
        "type it in one alphabet."
    ]


@pytest.mark.parametrize("name,reads_as", [
    ("рау.fr", "pay"),  # all Cyrillic
    ("ѕсоре.com", "scope"),
    ("ραυ.com", "pau"),  # all Greek
])
def test_a_label_of_another_alphabet_that_reads_as_latin_is_refused(name, reads_as):
    assert refusal(name) == [
        f"“{name}” is written in letters of another alphabet that look like Latin ones (it reads as "
        f"“{reads_as}”): type the Latin name instead."
    ]


@pytest.mark.parametrize("name,ascii_name", [
    ("café.fr", "xn--caf-dma.fr"),
    ("élysée.fr", "xn--lyse-9oad.fr"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),  # Cyrillic, not all look-alikes
    ("сосо.рф", "xn--n1aahb.xn--p1ai"),  # look-alikes, but under a Cyrillic top-level domain
    ("παπα.gr", "xn--mxaa7bb.gr"),
    ("日本語ドメイン.jp", "xn--eckwd4c7c5976acvb2w6i.jp"),  # Han and Katakana mix in Japanese
    ("example.com", "example.com"),
    ("2026.fr", "2026.fr"),  # a label of digits only: no script at all, nothing to look like
    ("boutique.рф", "boutique.xn--p1ai"),  # a Latin label under a Cyrillic top-level domain
    ("123-456.пример.рф", "123-456.xn--e1afmkfd.xn--p1ai"),
])
def test_genuine_names_are_accepted(name, ascii_name):
    assert normalize_domain(name) == ascii_name


def test_domain_create_refuses_a_homograph_in_french_and_writes_nothing(cast):
    Plan.objects.filter(pk=cast.a.plan.pk).update(max_domains=5)
    before = Domain.objects.count()

    with translation.override("fr"), pytest.raises(ValidationError) as excinfo:
        domain_create(pack=cast.a.pack, name="рау.fr", acting_user=cast.operator)

    with translation.override("fr"):
        messages = excinfo.value.messages
    assert messages == [
        "« рау.fr » est écrit avec des lettres d'un autre alphabet qui ressemblent à des lettres latines "
        "(il se lit « pay ») : saisissez plutôt le nom en lettres latines."
    ]
    assert Domain.objects.count() == before


def test_a_forward_to_a_homograph_address_is_refused(cast):
    from mail.validators import normalize_address

    with pytest.raises(ValidationError):
        normalize_address(f"boss@{CYRILLIC_A}pple.fr")
