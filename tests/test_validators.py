"""Shared validators: the fast e-mail path never accepts what email-validator refuses."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from server_manager_stub.validators import check_email

ATOM = st.text(alphabet="abcXYZ019._-+'=&`|{}~", min_size=1, max_size=12)
LABEL = st.text(alphabet="abcxyz09-", min_size=1, max_size=8)
addresses = st.one_of(
    st.builds(
        lambda local, d, t: f"{local}@{d}.{t}",
        ATOM,
        LABEL,
        st.sampled_from(["com", "COM", "de", "test", "local", "c0m", "x", "onion"]),
    ),
    st.text(max_size=40),
    st.emails(),
)


@settings(max_examples=400, deadline=None)
@given(addresses)
def test_check_email_agrees_with_email_validator(value):
    try:
        expected = validate_email(
            value, check_deliverability=False, allow_smtputf8=False
        ).normalized
    except EmailNotValidError:
        expected = None
    normalised, problem = check_email(value)
    assert normalised == expected
    assert (problem is None) == (expected is not None)
