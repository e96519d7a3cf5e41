"""Property: any strings posted to every profile field never give a 500, and whatever is saved
is a valid profile (the form accepts the stored values again, unchanged)."""

from __future__ import annotations

from helpers import csrf_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_profiles import valid
from werkzeug.datastructures import MultiDict

from blade.forms.profiles import ProfileForm, form_data
from blade.models import Profile
from server_manager_stub import db

FIELDS = [*list(valid().keys()), "prefer_mobile_network", "override_user_email", "copy_from"]
# Realistic values for each field, so that some examples get saved, mixed with anything at all.
GOOD = {key: [value] for key, value in valid().items()}
GOOD.update(
    {
        "use_teleworker": ["off"],
        "pbx_transport": ["tls", "tcp", "udp"],
        "pbx_srtp_mode": ["off", "mandatory", "optional"],
        "pbx_codec": ["PCMU", "G729"],
        "pbx_type": ["mivb", "mv5000", "mxone", "mvo400"],
        "pbx_video_tx": ["850", "99999", "1"],
        "pbx_dscp_sip": ["EF", "af11", "63"],
        "config_download_host": ["micollab_fqdn", "custom"],
        "config_download_host_custom": ["deploy.example.com"],
        "pbx_sip_host": ["default", "custom_srv"],
        "pbx_sip_host_custom": ["example.com"],
        "emergency_numbers": ["911", "112,999"],
        "tw_transport": ["tcp", "junk"],
        "tw_srtp_mode": ["mandatory", "junk"],
        "tw_video_tx": ["x"],
    }
)
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)


good_posts = st.fixed_dictionaries({key: st.sampled_from(GOOD.get(key, [""])) for key in FIELDS})
junk = st.dictionaries(st.sampled_from(FIELDS), text, max_size=4)
# Mostly-sensible forms with a few fields of junk (these often get saved), and pure junk.
posts = st.one_of(
    st.builds(lambda good, bad: {**good, **bad}, good_posts, junk),
    st.fixed_dictionaries({key: text for key in FIELDS}),
)


def _flat(data):
    return {
        k: ("y" if v is True else "" if v is None or v is False else str(v))
        for k, v in data.items()
        if v is not False
    }


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=posts)
def test_arbitrary_posts_never_500_and_never_store_an_invalid_profile(app, admin, data):
    url = "/client-deployment/profiles/new"
    response = admin.post(
        url, data={**data, "csrf_token": csrf_token(admin, url)}, content_type="multipart/form-data"
    )
    assert response.status_code in (303, 400, 422), response.status_code
    if response.status_code == 400:  # a NUL character: refused as a whole, before any form
        assert any("\x00" in v for v in data.values())
        assert "NUL character" in response.text
    if response.status_code != 303:
        return
    profile_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with app.test_request_context():
        profile = db.get_session().get(Profile, profile_id)
        stored = form_data(profile)
    with app.test_request_context(method="POST", data=MultiDict(_flat(stored))):
        s = db.get_session()
        profile = s.get(Profile, profile_id)
        form = ProfileForm(session=s, profile=profile, meta={"csrf": False})
        assert form.validate(), form.errors
        values = form.values()
        for key, value in values.items():
            assert value == getattr(profile, key), key
        # Keep the table small: each example starts from the shipped profile only.
        s.delete(profile)
        s.commit()
    with app.app_context():
        assert db.get_session().scalars(select(Profile.name)).all() == ["Default"]
