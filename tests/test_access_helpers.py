"""The access helpers answer 404 alike for "not yours" and "does not exist"."""

import pytest
from django.http import Http404

from hosting.access import get_customer_for_user, get_domain_for_user, get_pack_for_user
from mail.access import get_mailbox_for_user
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("helper, target", [
    (get_customer_for_user, lambda c: c.a.customer),
    (get_pack_for_user, lambda c: c.a.pack),
    (get_domain_for_user, lambda c: c.a.domain),
    (get_mailbox_for_user, lambda c: c.mailbox_user),
])
def test_outsider_and_missing_object_both_get_404(cast: Cast, helper, target) -> None:
    obj = target(cast)
    assert helper(cast.a.customer_user, obj.pk) == obj
    assert helper(cast.operator, obj.pk) == obj
    for outsider in (cast.b.customer_user, cast.b.reseller_staff, cast.b.postmaster):
        with pytest.raises(Http404):
            helper(outsider, obj.pk)
    with pytest.raises(Http404):
        helper(cast.operator, 10**9)
